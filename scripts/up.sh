#!/usr/bin/env bash
# make up: a running mediaflow with an example Workflow processing a sample
# upload, on the local stack's real node (no Docker needed):
#   1. the local stack (Kubernetes + one node, started by `make stack-up`)
#   2. helm install of charts/mediaflow with the images `make images` built
#      (bundled MinIO and NATS JetStream)
#   3. the buckets and the watermark asset of examples/transcode.yaml
#   4. the example Workflow, awaited Ready
#   5. a sample clip uploaded, its Job awaited, the outputs listed
# Each step prints a line; a failure names its step. `make down` removes it all.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
state="${MEDIAFLOW_STATE_DIR:-$repo/.mediaflow}"
release=mediaflow
system=mediaflow-system
media=media
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo/api/mediaflow_api/__init__.py")"
current=""
step() { current="$1"; printf '[up] %-10s %s\n' "$1" "$2"; }
trap 'echo "[up] FAILED in step \"$current\"; the stack stays up for a look (make down removes it)" >&2' ERR

if [[ "${1:-}" == "--kind" ]]; then
  # Where Docker runs: the same story on kind (kind-config.yaml). The images
  # are the archives `make images` wrote, loaded into kind's node. (Written
  # for machines with Docker; the development machines have none, so this
  # path has not run in this project's CI.)
  step kind "kind create cluster --config kind-config.yaml"
  kind get clusters 2>/dev/null | grep -qx mediaflow || kind create cluster --config "$repo/kind-config.yaml"
  mkdir -p "$state"
  kind get kubeconfig --name mediaflow >"$state/kind.kubeconfig"
  echo "export KUBECONFIG=$state/kind.kubeconfig" >"$state/stack.env"
  archives="${MEDIAFLOW_CACHE:-$HOME/.cache/mediaflow}/images"
  while read -r ref; do
    # kind's node has its own pause image; the fake worker is for tests only.
    case "$ref" in registry.k8s.io/pause:*|localhost/*) continue ;; esac
    kind load image-archive "$archives/$(echo "$ref" | tr '/:' '__').tar" --name mediaflow >/dev/null
  done <"$archives/node-images.txt"
fi

step stack "KUBECONFIG from $state/stack.env"
# shellcheck disable=SC1091
source "$state/stack.env"
kubectl get nodes --no-headers | grep -q ' Ready ' || { echo "[up] the node is not Ready" >&2; false; }

step chart "helm upgrade --install $release charts/mediaflow -n $system"
for ns in "$system" "$media"; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label --overwrite namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
done
# Default values: the bundled servers' claims bind to the volumes of the node's
# default StorageClass (kind brings one too).
# The example Workflows in $media have no storage Secret of their own: the
# chart's default Secret is shared with that namespace (docs/security.md).
helm upgrade --install "$release" "$repo/charts/mediaflow" -n "$system" \
  --set "storage.shareWithNamespaces={$media}" --wait --timeout 5m >/dev/null
kubectl -n "$system" get pods --no-headers | sed 's/^/           /'

# One pod of the worker image per storage step, in the release namespace where
# the storage Secret is.
kubectl -n "$system" create configmap mediaflow-up \
  --from-file=up_storage.py="$here/up_storage.py" \
  --from-file=logo.png="$repo/examples/assets/media-assets/brand/logo.png" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
storage() {
  local name="up-$1"; shift
  local args; args="$(printf '"%s",' "$@")"
  kubectl -n "$system" delete pod "$name" --ignore-not-found >/dev/null
  kubectl -n "$system" apply -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: storage
      image: ghcr.io/mediaflow/worker:$version
      command: ["python", "/up/up_storage.py", ${args%,}]
      env:
        - {name: MEDIAFLOW_S3_ENDPOINT, valueFrom: {secretKeyRef: {name: $release-storage, key: endpoint}}}
        - {name: MEDIAFLOW_S3_ACCESS_KEY, valueFrom: {secretKeyRef: {name: $release-storage, key: accessKey}}}
        - {name: MEDIAFLOW_S3_SECRET_KEY, valueFrom: {secretKeyRef: {name: $release-storage, key: secretKey}}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts: [{name: up, mountPath: /up}, {name: scratch, mountPath: /scratch}]
  volumes:
    - {name: up, configMap: {name: mediaflow-up}}
    - {name: scratch, emptyDir: {}}
POD
  kubectl -n "$system" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$name" --timeout=180s >/dev/null \
    || { kubectl -n "$system" logs "$name" >&2 || true; false; }
  kubectl -n "$system" logs "$name" | sed 's/^/           /'
  kubectl -n "$system" delete pod "$name" --wait=false >/dev/null
}

step buckets "uploads, media, media-assets (+ the watermark logo)"
storage buckets buckets uploads media media-assets
storage logo put media-assets brand/logo.png /up/logo.png

step workflow "kubectl apply -f examples/transcode.yaml"
kubectl apply -f "$repo/examples/transcode.yaml" >/dev/null
kubectl -n "$media" wait --for=condition=Ready workflow/web-mp4 --timeout=120s >/dev/null

step upload "a 4-second 720p clip to uploads/incoming/sample.mp4"
storage clip clip uploads incoming/sample.mp4

step job "waiting for the Workflow's Job"
deadline=$((SECONDS + 300))
counter() { kubectl -n "$media" get workflow web-mp4 -o jsonpath="{.status.$1}"; }
while (( $(counter succeeded || echo 0)0 / 10 + $(counter failed || echo 0)0 / 10 == 0 )); do
  (( SECONDS < deadline )) || { echo "[up] no result after 300 s" >&2; false; }
  sleep 2
done
kubectl -n "$media" get workflow web-mp4 | sed 's/^/           /'
if (( $(counter failed)0 / 10 > 0 )); then
  kubectl -n "$media" get workflow web-mp4 -o jsonpath='{.status.lastFailures}' >&2; echo >&2; false
fi

step outputs "media/processed/ (written by the worker)"
storage list list media processed/

cat <<DONE
[up] done: mediaflow is running on the local node.
  source $state/stack.env                        # KUBECONFIG for kubectl and helm
  kubectl -n $media get mfw                       # counters, conditions
  kubectl -n $media get jobs,pods                 # the worker Jobs
  kubectl -n $system port-forward svc/$release-minio 9000:9000   # then any S3 client on localhost:9000
  kubectl -n $system get secret $release-storage -o jsonpath='{.data.accessKey}' | base64 -d
  make down                                       # removes it all
DONE

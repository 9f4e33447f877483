#!/usr/bin/env bash
# Builds or installs the pinned tool binaries of the local stack into a cache
# outside the repository, keyed by version, and links them into
# $MEDIAFLOW_CACHE/bin. A second run only checks that each binary exists.
#
#   scripts/tools.sh            build everything missing
#   MEDIAFLOW_CACHE=...         cache root (default ~/.cache/mediaflow)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${MEDIAFLOW_CACHE:-$HOME/.cache/mediaflow}"
bin="$cache/bin"
mkdir -p "$bin" "$cache/logs"
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -trimpath"

step() { printf '[tools] %-26s %s\n' "$1" "$2"; }

# build_go NAME VERSION LOG COMMAND...: runs COMMAND with GOBIN set to the
# versioned directory unless the binary is already there.
build_go() {
  local name="$1" version="$2" target="$cache/$1-$2"; shift 2
  if [[ -x "$target/$name" ]]; then
    step "$name $version" "cached ($target/$name)"
  else
    step "$name $version" "building (first time only; log: $cache/logs/$name-$version.log)"
    local start=$SECONDS
    mkdir -p "$target.tmp"
    if ! GOBIN="$target.tmp" "$@" >"$cache/logs/$name-$version.log" 2>&1; then
      tail -30 "$cache/logs/$name-$version.log" >&2
      echo "[tools] building $name $version failed; full log above" >&2
      exit 1
    fi
    rm -rf "$target" && mv "$target.tmp" "$target"
    step "$name $version" "built in $((SECONDS - start))s"
  fi
  ln -sfn "$target/$name" "$bin/$name"
}

build_kubestack() {
  local out="$GOBIN/kubestack" major minor
  major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  (cd "$repo/tools/kubestack" && go build -o "$out" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
      -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION \
      -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean" .)
}

# The wrapper's own sources are part of the key: adding a command to it must
# rebuild the binary even when the Kubernetes version stays the same.
kubestack_key="$KUBERNETES_VERSION-$(cat "$repo"/tools/kubestack/{main.go,go.mod,go.sum} | sha256sum | cut -c1-12)"
build_go kubestack "$kubestack_key" build_kubestack
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do
  ln -sfn "$cache/kubestack-$kubestack_key/kubestack" "$bin/$cmd"
done
build_go nats-server "$NATS_SERVER_VERSION" go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
# helm reads its version from ldflags, like its release builds.
build_go helm "$HELM_VERSION" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
build_go coredns "$COREDNS_VERSION" go install "github.com/coredns/coredns@$COREDNS_VERSION"
build_go minio "$MINIO_VERSION" go install "github.com/minio/minio@$MINIO_VERSION"

# From Debian: FFmpeg (as in the worker image), the image builders, and the
# node's container runtime and network plugins (no kubelet or crictl is
# packaged; those come from the Kubernetes build above).
declare -A debian_packages=(
  [ffmpeg]=ffmpeg [ffprobe]=ffmpeg
  [buildah]=buildah [podman]=podman [mmdebstrap]=mmdebstrap
  [containerd]=containerd [ctr]=containerd [runc]=runc [conmon]=conmon
  [/usr/lib/cni/bridge]=containernetworking-plugins [/usr/bin/catatonit]=catatonit
  [iptables]=iptables [nsenter]=util-linux [newuidmap]=uidmap [fuse-overlayfs]=fuse-overlayfs
  [/usr/share/containers/containers.conf]=golang-github-containers-common
  # the fonts of text watermarks, as in the worker image (worker/mediaflow_worker/fonts.py)
  [/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf]=fonts-dejavu-core
  [/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc]=fonts-noto-cjk
  # known speech for the speech-to-text tests and benchmark (docs/understanding.md)
  [espeak-ng]=espeak-ng
)
missing=()
for probe in "${!debian_packages[@]}"; do
  if [[ $probe == /* ]]; then [[ -e $probe ]] && continue; else command -v "$probe" >/dev/null && continue; fi
  missing+=("${debian_packages[$probe]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  step "debian packages" "present (ffmpeg $(ffmpeg -version | head -1 | cut -d' ' -f3), containerd, buildah)"
else
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  step "debian packages" "installing: ${missing[*]} (log: $cache/logs/apt.log)"
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}" >"$cache/logs/apt.log" 2>&1 \
    || { $sudo_cmd apt-get update >/dev/null 2>&1 && $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}" >"$cache/logs/apt.log" 2>&1; } \
    || { tail -20 "$cache/logs/apt.log" >&2; echo "[tools] apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
step "done" "binaries in $bin"

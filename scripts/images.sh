#!/usr/bin/env bash
# Builds the operator, worker and worker-ml images from operator/Dockerfile,
# worker/Dockerfile and worker/Dockerfile.ml with buildah (daemonless, from Debian), exactly as a user
# would build them with Docker.
#
# No container registry is reachable on the machines mediaflow is developed
# on, so the base images the Dockerfiles name in FROM are bootstrapped first
# from Debian packages (mmdebstrap) and stored under those very references:
#   docker.io/library/debian:bookworm-slim    (mmdebstrap minbase, slimmed like the official image)
#   docker.io/library/python:3.11-slim-bookworm (scripts/base-images/python-slim.Containerfile)
# Each is built once and kept in the image store under $MEDIAFLOW_CACHE/containers.
#
#   scripts/images.sh            build what is missing or out of date, and leave a
#                                docker-archive of each image the local node runs in
#                                $MEDIAFLOW_CACHE/images/ (imported into its containerd)
#
# Prints the references and sizes at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=container-env.sh
source "$here/container-env.sh"

step() { printf '[images] %-34s %s\n' "$1" "$2"; }
mkdir -p "$cache/logs" "$cache/images"
host_ca=/etc/ssl/certs/ca-certificates.crt
# Builds may cross an HTTPS-intercepting proxy whose CA only the host trusts:
# lend them the host's bundle read-only (never copied into an image). The
# Python base gets it aside (its own ca-certificates must configure); the
# project's builds see it where OpenSSL (and so pip's truststore) looks.
base_ca_mount=() ca_mount=()
if [[ -f $host_ca ]]; then
  base_ca_mount=(--volume "$host_ca:/run/host-ca.crt:ro")
  ca_mount=(--volume "$host_ca:$host_ca:ro")
fi

image_id() { buildah images --noheading --format '{{.ID}}' "$1" 2>/dev/null | head -1; }

# -- Debian base -------------------------------------------------------------------------
debian_ref=docker.io/library/debian:bookworm-slim
if [[ -n "$(image_id "$debian_ref")" ]]; then
  step "$debian_ref" "present"
else
  step "$debian_ref" "bootstrapping with mmdebstrap (log: $cache/logs/mmdebstrap.log)"
  start=$SECONDS
  rootfs="$(mktemp -d)/rootfs.tar"
  # The official slim image leaves out documentation, man pages and locales of
  # every package installed later too (dpkg path-exclude, kept in the image),
  # and satisfies init-system-helpers with usr-is-merged, not usrmerge (which
  # drags in perl): the tree is merged already.
  mmdebstrap --variant=minbase --components=main --mode=root --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --aptopt='APT::Install-Recommends "false"' \
    --include=usr-is-merged \
    --customize-hook='chroot "$1" dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl perl-modules-5.36 libperl5.36' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/*.log "$1"/var/log/apt/*' \
    bookworm "$rootfs" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    >"$cache/logs/mmdebstrap.log" 2>&1 || { tail -20 "$cache/logs/mmdebstrap.log" >&2; exit 1; }
  podman import --change 'CMD ["bash"]' "$rootfs" "$debian_ref" >/dev/null
  rm -rf "$(dirname "$rootfs")"
  step "$debian_ref" "bootstrapped in $((SECONDS - start))s"
fi

build_args=()
# build REF CONTAINERFILE [IGNOREFILE [MOUNT...]]: buildah bud from the
# repository root, never pulling (the bases are local), with the host network
# for apt and pip.
build() {
  local ref="$1" file="$2" ignore="${3:-}" name log start
  shift 2; shift || true
  local mounts=("$@")
  [[ ${#mounts[@]} -eq 0 ]] && mounts=("${ca_mount[@]}")
  name="$(basename "$(dirname "$file")")-$(basename "$file")"
  log="$cache/logs/build-${name//\//-}.log"
  start=$SECONDS
  local args=(bud --pull=never --network=host --layers "${mounts[@]}" "${build_args[@]}" -f "$file" -t "$ref")
  [[ -n $ignore ]] && args+=(--ignorefile "$ignore")
  step "$ref" "building from ${file#"$repo"/} (log: $log)"
  if ! buildah "${args[@]}" "$repo" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "[images] building $ref failed; log: $log" >&2
    exit 1
  fi
  step "$ref" "built in $((SECONDS - start))s"
}

python_ref=docker.io/library/python:3.11-slim-bookworm
# A bootstrapped base is current while the image built from this recipe (and
# this Debian base) is still the one under the reference: a stamp file holds
# the recipe's hash and the resulting image id.
python_key="$(cat "$here/base-images/python-slim.Containerfile" | sha256sum | cut -c1-12)-$(image_id "$debian_ref")"
python_stamp="$containers_dir/python-base.stamp"
if [[ -n "$(image_id "$python_ref")" && "$(cat "$python_stamp" 2>/dev/null)" == "$python_key $(image_id "$python_ref")" ]]; then
  step "$python_ref" "present"
else
  build "$python_ref" "$here/base-images/python-slim.Containerfile" "" "${base_ca_mount[@]}"
  echo "$python_key $(image_id "$python_ref")" >"$python_stamp"
fi

# -- the project's images, from its Dockerfiles unchanged --------------------------------
# The project's one version source (setuptools reads the same attribute).
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo/api/mediaflow_api/__init__.py")"
[[ -n $version ]] || { echo "[images] no __version__ in api/mediaflow_api/__init__.py" >&2; exit 1; }
operator_ref="${MEDIAFLOW_OPERATOR_IMAGE:-ghcr.io/mediaflow/operator:$version}"
worker_ref="${MEDIAFLOW_WORKER_IMAGE:-ghcr.io/mediaflow/worker:$version}"
build "$operator_ref" "$repo/operator/Dockerfile" "$repo/operator/Dockerfile.dockerignore"
build "$worker_ref" "$repo/worker/Dockerfile" "$repo/worker/Dockerfile.dockerignore"
# The worker-ml image (the understanding tasks): the worker image plus the
# `ml` extra and the silero-vad wheel, whose version scripts/versions.env pins
# for the Makefile's venv too.
# shellcheck source=versions.env
source "$here/versions.env"
worker_ml_ref="${MEDIAFLOW_WORKER_ML_IMAGE:-ghcr.io/mediaflow/worker-ml:$version}"
build_args=(--build-arg "WORKER_IMAGE=$worker_ref" --build-arg "SILERO_VAD_VERSION=$SILERO_VAD_VERSION")
build "$worker_ml_ref" "$repo/worker/Dockerfile.ml" "$repo/worker/Dockerfile.ml.dockerignore"
build_args=()
buildah rmi --prune >/dev/null 2>&1 || true

# A test-only image: the real worker image plus the stand-in worker the
# operator's end-to-end tests use where FFmpeg would only cost time. Never
# published; built here so the local node can run it like any image.
fake_worker_ref=localhost/mediaflow-fake-worker:test
build_args=(--build-arg "WORKER_IMAGE=$worker_ref")
build "$fake_worker_ref" "$repo/tests/e2e/fake-worker.Containerfile" "$repo/tests/e2e/fake-worker.Containerfile.dockerignore"
build_args=()

# -- the servers the chart bundles ----------------------------------------------------------
# MinIO and NATS from the pinned binaries of scripts/tools.sh (versions.env,
# sourced above), under the references the chart's values name (each build
# context holds only its binary).
bundled_refs=()
for bundled in minio:minio:"$MINIO_VERSION" nats:nats-server:"$NATS_SERVER_VERSION"; do
  IFS=: read -r image binary tag <<<"$bundled"
  context="$(mktemp -d)"
  cp "$cache/bin/$binary" "$context/$binary"
  ref="ghcr.io/mediaflow/$image:$tag"
  if ! buildah bud --pull=never --layers -f "$here/bundled-images/$image.Containerfile" -t "$ref" "$context" \
      >"$cache/logs/build-$image.log" 2>&1; then
    tail -20 "$cache/logs/build-$image.log" >&2; echo "[images] building $ref failed" >&2; exit 1
  fi
  rm -rf "$context"
  step "$ref" "built from $cache/bin/$binary"
  bundled_refs+=("$ref")
done

# -- the pod sandbox image ----------------------------------------------------------------
# The local node's containerd needs a pause image and cannot pull one: Debian's
# static catatonit has a pause mode (-P) and is all such an image holds.
pause_ref=registry.k8s.io/pause:3.10
pause_key="$(sha256sum /usr/bin/catatonit | cut -c1-12)"
pause_stamp="$containers_dir/pause.stamp"
if [[ -n "$(image_id "$pause_ref")" && "$(cat "$pause_stamp" 2>/dev/null)" == "$pause_key $(image_id "$pause_ref")" ]]; then
  step "$pause_ref" "present"
else
  ctr="$(buildah from scratch)"
  buildah copy --quiet "$ctr" /usr/bin/catatonit /pause >/dev/null
  buildah config --entrypoint '["/pause", "-P"]' --user 65535:65535 "$ctr" >/dev/null
  buildah commit --quiet --rm "$ctr" "$pause_ref" >/dev/null
  echo "$pause_key $(image_id "$pause_ref")" >"$pause_stamp"
  step "$pause_ref" "built from /usr/bin/catatonit"
fi

# -- archives for the local node's containerd ---------------------------------------------
# One docker-archive per image, rewritten only when the image changed.
archives="$cache/images"
for ref in "$pause_ref" "$operator_ref" "$worker_ref" "$worker_ml_ref" "$fake_worker_ref" "${bundled_refs[@]}"; do
  out="$archives/$(echo "$ref" | tr '/:' '__').tar"
  id="$(image_id "$ref")"
  if [[ -f $out && "$(cat "$out.id" 2>/dev/null)" == "$id" ]]; then
    continue
  fi
  rm -f "$out" "$out.id"
  buildah push --quiet "$ref" "docker-archive:$out:$ref" >/dev/null
  echo "$id" >"$out.id"
  step "$ref" "archived for containerd ($out)"
done
printf '%s\n' "$pause_ref" "$operator_ref" "$worker_ref" "$worker_ml_ref" "$fake_worker_ref" "${bundled_refs[@]}" >"$archives/node-images.txt"

for ref in "$debian_ref" "$python_ref" "$operator_ref" "$worker_ref" "$worker_ml_ref" "${bundled_refs[@]}"; do
  step "$ref" "$(buildah images --noheading --format '{{.Size}}' "$ref" | head -1)"
done

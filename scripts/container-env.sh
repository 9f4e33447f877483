# Sourced by the scripts that build or run containers: a private configuration
# and image store for buildah/podman under the cache, so nothing in /etc is
# changed and the machine's own containers (if any) are untouched.
# shellcheck shell=bash
cache="${MEDIAFLOW_CACHE:-$HOME/.cache/mediaflow}"
containers_dir="$cache/containers"
mkdir -p "$containers_dir"
hard_nofile="$(ulimit -Hn)"; hard_nproc="$(ulimit -Hu)"
[[ $hard_nofile == unlimited ]] && hard_nofile=1048576
[[ $hard_nproc == unlimited ]] && hard_nproc=1048576
# runc, not crun: crun 1.8 refuses the hybrid cgroup layout of these machines.
# Ulimits no higher than the hard limits: the sandbox lacks CAP_SYS_RESOURCE.
cat >"$containers_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$((hard_nofile < 65536 ? hard_nofile : 65536)):$((hard_nofile < 65536 ? hard_nofile : 65536))", "nproc=$((hard_nproc < 32768 ? hard_nproc : 32768)):$((hard_nproc < 32768 ? hard_nproc : 32768))"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$containers_dir/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$containers_dir/storage"
runroot = "$containers_dir/run"
CONF
# Short names in FROM (python:3.11-slim-bookworm) mean Docker Hub, as with Docker.
cat >"$containers_dir/registries.conf" <<CONF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
CONF
export CONTAINERS_CONF="$containers_dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$containers_dir/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$containers_dir/registries.conf"
export BUILDAH_ISOLATION=oci
export BUILDAH_FORMAT=docker

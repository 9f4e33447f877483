#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the kubestack wrapper for a Kubernetes release.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and fixes that with
# replace directives that Go ignores outside the main module; we map each one
# to its published v0.<minor>.<patch> instead. Usage: gen-gomod.sh v1.34.4
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local CGO_ENABLED=0
version="$1"
staging_version="v0.${version#v1.}"
gomod="$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
rm -f go.mod go.sum
go mod init mediaflow.dev/tools/kubestack >/dev/null 2>&1
go mod edit -go=1.24.0
grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk '{print $1}' | while read -r mod; do
  go mod edit -replace "${mod}=${mod}@${staging_version}"
done
go get "k8s.io/kubernetes@${version}"
go mod tidy

#!/usr/bin/env bash
# Runs a command with the local stack's environment (.mediaflow/stack.env from
# `make stack-up`) unless the caller already points KUBECONFIG somewhere, so
# `make install`/`make run` work against either the local stack or the
# cluster of the current kubeconfig.
set -euo pipefail
state="${MEDIAFLOW_STATE_DIR:-.mediaflow}"
if [[ -z "${KUBECONFIG:-}" && -f "$state/stack.env" ]]; then
  # shellcheck disable=SC1091
  source "$state/stack.env"
  echo "[mediaflow] using the local stack ($state/stack.env)" >&2
fi
exec "$@"

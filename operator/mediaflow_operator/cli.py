"""``mediaflow``: a small CLI for users of the operator.

mediaflow process -n NAMESPACE WORKFLOW KEY [--wait SECONDS]
    Ask the operator to process an existing object now (manual trigger).
mediaflow crd
    Print mediaflow's CRDs: Workflow, MediaTemplate, ClusterMediaTemplate (the same
    YAML as crds/, as one multi-document stream for `kubectl apply -f -`).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from kubernetes.client.exceptions import ApiException

from mediaflow_api.workflow import GROUP, PLURAL, VERSION
from mediaflow_operator import naming


def _process(args: argparse.Namespace) -> int:
    from kubernetes import client

    from mediaflow_operator.kube import load_config

    api = client.CustomObjectsApi(load_config(connections=1))
    request = uuid.uuid4().hex[:12]
    body = {
        "metadata": {
            "annotations": {
                naming.ANNOTATION_PROCESS: args.key,
                naming.ANNOTATION_PROCESS_REQUEST: request,
            }
        }
    }
    try:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            args.namespace,
            PLURAL,
            args.workflow,
            body,
            _content_type="application/merge-patch+json",
        )
    except ApiException as exc:
        print(f"error: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    print(f"requested processing of {args.key!r} (request {request})")
    if args.wait <= 0:
        return 0
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        wf: Any = api.get_namespaced_custom_object(
            GROUP, VERSION, args.namespace, PLURAL, args.workflow
        )
        annotations = wf["metadata"].get("annotations") or {}
        if annotations.get(naming.ANNOTATION_PROCESS_REQUEST) != request:
            print("accepted by the operator (see `kubectl describe workflow` for the Job)")
            return 0
        time.sleep(0.5)
    print("the operator did not pick up the request in time", file=sys.stderr)
    return 2


def _crd(_: argparse.Namespace) -> int:
    from mediaflow_api.crd import render_all

    sys.stdout.write("---\n".join(render_all().values()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mediaflow", description="mediaflow command line")
    sub = parser.add_subparsers(dest="command", required=True)
    process = sub.add_parser("process", help="process an existing object now (manual trigger)")
    process.add_argument("-n", "--namespace", default="default")
    process.add_argument("workflow")
    process.add_argument("key", help="object key in the Workflow's trigger bucket")
    process.add_argument("--wait", type=float, default=30, help="seconds to wait for pickup")
    process.set_defaults(func=_process)
    crd = sub.add_parser("crd", help="print the CRDs (Workflow and templates)")
    crd.set_defaults(func=_crd)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

"""``mediaflow-operator`` / ``python -m mediaflow_operator``: run the operator."""

from __future__ import annotations

import logging
import os
import sys

import kopf


def main() -> int:
    from mediaflow_operator import handlers  # registers the handlers

    settings = handlers.SETTINGS
    log_format = (
        kopf.LogFormat.JSON
        if os.environ.get("MEDIAFLOW_LOG_FORMAT") == "json"
        else kopf.LogFormat.FULL
    )
    kopf.configure(verbose=os.environ.get("MEDIAFLOW_DEBUG") == "1", log_format=log_format)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint or None,
        standalone=not settings.peering_name,
        peering_name=settings.peering_name or None,
        priority=settings.peering_priority,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

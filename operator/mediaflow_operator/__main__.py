"""``mediaflow-operator`` / ``python -m mediaflow_operator``: run the operator.

Configuration comes from ``MEDIAFLOW_*`` environment variables only
(``settings.Settings``); the command line just offers ``--help`` (which lists
them, generated from the Settings model) and ``--version``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap

import kopf

from mediaflow_api import __version__
from mediaflow_operator.settings import Settings

EXTRA_ENV = [
    ("MEDIAFLOW_LOG_FORMAT", "json: one JSON object per log line (default: kopf's full format)"),
    ("MEDIAFLOW_DEBUG", "1: verbose logging"),
]


def parser() -> argparse.ArgumentParser:
    """The command line: no options besides --help and --version."""
    width = max(len(name) for name, _ in [*Settings.env_help(), *EXTRA_ENV]) + 2
    lines = []
    for name, text in [*Settings.env_help(), *EXTRA_ENV]:
        wrapped = textwrap.wrap(text, 100 - width) or [""]
        lines.append(f"  {name.ljust(width)}{wrapped[0]}")
        lines.extend(f"  {' ' * width}{more}" for more in wrapped[1:])
    epilog = "settings (environment variables):\n" + "\n".join(lines)
    result = argparse.ArgumentParser(
        prog="mediaflow-operator",
        description=(
            "The mediaflow Kubernetes operator: turns uploads to MinIO into worker Jobs. "
            "It is configured by environment variables only."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(argv)  # --help / --version print and exit 0 here

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

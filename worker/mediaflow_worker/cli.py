"""Command line: ``mediaflow-worker job`` (in a Pod) and ``run`` (locally).

Exit codes (a contract with the Job's podFailurePolicy): 0 done (or
superseded: the input changed while the Job ran; the termination summary says
``Superseded``), 2 the input is unusable (do not retry), 1 anything else. The
last line on stderr says why.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from mediaflow_api.job import (
    EXIT_FAILED,
    EXIT_OK,
    JOB_ENV,
    REASON_SUCCEEDED,
    REASON_UP_TO_DATE,
    TRACEPARENT_ENV,
    Limits,
    TerminationSummary,
    WorkerJob,
)
from mediaflow_worker import termination
from mediaflow_worker.config import storage_from_env, termination_path
from mediaflow_worker.errors import SpecError, WorkerError
from mediaflow_worker.process import handle_stop_signal
from mediaflow_worker.understanding.moderation import DEFAULT_MODELS_DIR, MODELS_DIR_ENV

log = logging.getLogger("mediaflow_worker")


def _one_line(text: str, limit: int = 400) -> str:
    return " ".join(text.split())[:limit]


def _setup_logging(verbose: bool) -> None:
    # Logs (with progress) go to stdout; stderr carries only the final reason.
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )


def _load_job() -> WorkerJob:
    raw = os.environ.get(JOB_ENV)
    if not raw:
        raise SpecError(f"{JOB_ENV} is not set")
    try:
        job = WorkerJob.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"{JOB_ENV} is invalid: {loc}: {first['msg']}") from exc
    return job


def cmd_job(args: argparse.Namespace) -> int:
    """Run the Job described by ``MEDIAFLOW_JOB``."""
    from mediaflow_worker.job_mode import run_job
    from mediaflow_worker.storage import Storage, make_client

    path = termination_path()
    try:
        job = _load_job()
        if os.environ.get(TRACEPARENT_ENV):
            log.info("traceparent %s", os.environ[TRACEPARENT_ENV])
        storage = Storage(make_client(storage_from_env()))
        outcome = run_job(job, storage)
    except KeyboardInterrupt:
        # SIGTERM (Pod deleted, activeDeadlineSeconds) or SIGINT: run_job has
        # already removed partial outputs; say so before exiting.
        termination.write(
            path,
            TerminationSummary(
                ok=False,
                exitCode=EXIT_FAILED,
                reason="Interrupted",
                message="stopped by a signal before the work was done",
            ),
        )
        raise
    except WorkerError as exc:
        termination.write(
            path,
            TerminationSummary(
                ok=False,
                exitCode=exc.exit_code,
                reason=exc.reason,
                message=_one_line(exc.message, 3000),
            ),
        )
        print(f"mediaflow-worker: {exc.reason}: {_one_line(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: main() logs it; the Job still gets a reason
        termination.write(
            path,
            TerminationSummary(
                ok=False,
                exitCode=EXIT_FAILED,
                reason="InternalError",
                message=_one_line(repr(exc), 3000),
            ),
        )
        raise
    if outcome.superseded is not None:
        # Not a failure: exit 0 so that Kubernetes does not retry (see
        # mediaflow_api.job); the operator counts it by the reason.
        superseded = outcome.superseded
        termination.write(
            path,
            TerminationSummary(
                ok=True,
                exitCode=EXIT_OK,
                reason=superseded.reason,
                message=_one_line(superseded.message, 3000),
            ),
        )
        print(
            f"mediaflow-worker: {superseded.reason}: {_one_line(superseded.message)}",
            file=sys.stderr,
        )
        return EXIT_OK
    termination.write(
        path,
        TerminationSummary(
            ok=True,
            exitCode=EXIT_OK,
            reason=REASON_UP_TO_DATE if outcome.skipped else REASON_SUCCEEDED,
            manifest=outcome.manifest_key,
            outputs=outcome.outputs,
            skipped=outcome.skipped,
        ),
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run a Workflow file's tasks on a local file."""
    from mediaflow_worker.local_mode import run_local

    limits = Limits()
    if args.timeout:
        limits = limits.model_copy(update={"timeout_seconds": args.timeout})
    if args.models_dir is not None:
        # The models directory is the environment a Job's pod has (the
        # operator mounts a volume at MEDIAFLOW_MODELS_DIR): the same here.
        os.environ[MODELS_DIR_ENV] = str(args.models_dir.expanduser().resolve())
    try:
        doc = run_local(
            Path(args.file),
            Path(args.input),
            Path(args.output),
            assets_dir=args.assets,
            assets=dict(args.asset),
            limits=limits,
            template_files=list(args.template),
            secret_dir=args.secret_dir,
        )
    except WorkerError as exc:
        print(f"mediaflow-worker: {exc.reason}: {_one_line(exc.message)}", file=sys.stderr)
        return exc.exit_code
    log.info("wrote %d output(s) and manifest.json to %s", doc["outputCount"], args.output)
    return EXIT_OK


def asset_mapping(text: str) -> tuple[tuple[str, str], Path]:
    """``--asset BUCKET/KEY=FILE`` as ((bucket, key), file)."""
    ref, sep, file = text.partition("=")
    bucket, slash, key = ref.partition("/")
    if not (sep and slash and bucket and key and file):
        raise argparse.ArgumentTypeError(f"expected BUCKET/KEY=FILE, not {text!r}")
    return (bucket, key), Path(file).expanduser()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (two subcommands)."""
    parser = argparse.ArgumentParser(
        prog="mediaflow-worker",
        description="Run a mediaflow Workflow's FFmpeg tasks: 'job' inside a Kubernetes Job, "
        "'run' on a local file. Exit codes: 0 done (or superseded by a newer version of "
        "the input), 2 unusable input, 1 other failure.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log ffmpeg commands")
    sub = parser.add_subparsers(dest="command", required=True)
    job = sub.add_parser("job", help=f"process the input described by ${JOB_ENV} (in a Job)")
    job.set_defaults(func=cmd_job)
    run = sub.add_parser("run", help="run a Workflow's tasks on a local file")
    run.add_argument("-f", "--file", required=True, help="Workflow manifest (YAML)")
    run.add_argument(
        "-t",
        "--template",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="YAML file with MediaTemplate/ClusterMediaTemplate documents the tasks refer to "
        "(repeatable; templates in the Workflow file itself are found too)",
    )
    run.add_argument("input", help="input media file")
    run.add_argument("-o", "--output", required=True, help="output directory")
    run.add_argument(
        "--assets",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory holding watermark images as DIR/<bucket>/<key> "
        "(default: the Workflow file's directory; the examples' are in examples/assets)",
    )
    run.add_argument(
        "--asset",
        action="append",
        default=[],
        type=asset_mapping,
        metavar="BUCKET/KEY=FILE",
        help="use FILE for the watermark image object BUCKET/KEY (repeatable; "
        "takes precedence over --assets)",
    )
    run.add_argument(
        "--secret-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory holding the Secret keys the tasks name (an HLS encryption key) as "
        "DIR/<secret name>/<key>, as a Job's pod has them mounted (default: secrets/ beside "
        "the Workflow file)",
    )
    run.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"directory of the models tasks name by path (a moderation classifier's "
        f"model.path), as a Job has them mounted (default: ${MODELS_DIR_ENV}, else "
        f"{DEFAULT_MODELS_DIR})",
    )
    run.add_argument("--timeout", type=int, default=0, help="wall-time limit in seconds")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mediaflow-worker`` console script."""
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: ffmpeg (in its own session, so the signal
    # does not reach it) is killed, partial outputs and scratch files removed.
    signal.signal(signal.SIGTERM, handle_stop_signal)
    signal.signal(signal.SIGINT, handle_stop_signal)
    _setup_logging(args.verbose)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("mediaflow-worker: Interrupted: stopped by a signal", file=sys.stderr)
        code = EXIT_FAILED
    except Exception as exc:  # a bug: still exit 1 with one line, after the traceback
        log.exception("unexpected error")
        print(f"mediaflow-worker: InternalError: {_one_line(repr(exc))}", file=sys.stderr)
        code = EXIT_FAILED
    return code


if __name__ == "__main__":
    raise SystemExit(main())

"""Settings read from the environment (the Job's container env)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mediaflow_api.job import TERMINATION_MESSAGE_PATH
from mediaflow_worker.errors import SpecError
from mediaflow_worker.ffmpeg.common import DEFAULT_FONT

ENDPOINT_ENV = "MEDIAFLOW_S3_ENDPOINT"
ACCESS_KEY_ENV = "MEDIAFLOW_S3_ACCESS_KEY"
SECRET_KEY_ENV = "MEDIAFLOW_S3_SECRET_KEY"  # noqa: S105 - a variable name, not a secret
REGION_ENV = "MEDIAFLOW_S3_REGION"
SECURE_ENV = "MEDIAFLOW_S3_SECURE"
SCRATCH_ENV = "MEDIAFLOW_SCRATCH_DIR"
TERMINATION_ENV = "MEDIAFLOW_TERMINATION_MESSAGE_PATH"
FONT_ENV = "MEDIAFLOW_FONT_FILE"
MEMORY_ENV = "MEDIAFLOW_FFMPEG_MAX_MEMORY_BYTES"


@dataclass(frozen=True)
class StorageSettings:
    """Where the objects live. ``secret_key`` must never be logged."""

    endpoint: str  # host:port, no scheme
    access_key: str
    secret_key: str
    secure: bool
    region: str | None

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"StorageSettings(endpoint={self.endpoint!r}, secure={self.secure})"


def parse_endpoint(value: str, secure: str | None) -> tuple[str, bool]:
    """``host:port`` and TLS on/off from an endpoint that may carry a scheme.

    A scheme decides TLS; without one, ``MEDIAFLOW_S3_SECURE`` does (default
    off, the in-cluster MinIO case)."""
    value = value.strip()
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SpecError(f"{ENDPOINT_ENV} must be host:port or an http(s) URL")
        scheme_secure = parts.scheme == "https"
        if secure is not None and secure.strip():
            scheme_secure = secure.strip().lower() in ("1", "true", "yes")
        return parts.netloc, scheme_secure
    if not value:
        raise SpecError(f"{ENDPOINT_ENV} is empty")
    return value, (secure or "").strip().lower() in ("1", "true", "yes")


def storage_from_env(env: dict[str, str] | None = None) -> StorageSettings:
    """Storage settings from the ``MEDIAFLOW_S3_*`` variables."""
    env = dict(os.environ) if env is None else env
    missing = [n for n in (ENDPOINT_ENV, ACCESS_KEY_ENV, SECRET_KEY_ENV) if not env.get(n)]
    if missing:
        raise SpecError(f"missing environment variables: {', '.join(missing)}")
    endpoint, secure = parse_endpoint(env[ENDPOINT_ENV], env.get(SECURE_ENV))
    return StorageSettings(
        endpoint=endpoint,
        access_key=env[ACCESS_KEY_ENV],
        secret_key=env[SECRET_KEY_ENV],
        secure=secure,
        region=env.get(REGION_ENV) or None,
    )


def scratch_root() -> Path:
    """The only place the worker writes files (a mounted emptyDir in a Pod)."""
    return Path(os.environ.get(SCRATCH_ENV) or tempfile.gettempdir())


def termination_path() -> Path:
    """Where the Job's termination summary goes."""
    return Path(os.environ.get(TERMINATION_ENV) or TERMINATION_MESSAGE_PATH)


def font_file() -> str:
    """The TrueType font for text watermarks."""
    return os.environ.get(FONT_ENV) or DEFAULT_FONT


def ffmpeg_memory_limit() -> int | None:
    """The address-space limit (RLIMIT_AS) for every ffmpeg/ffprobe process,
    from ``MEDIAFLOW_FFMPEG_MAX_MEMORY_BYTES``; None (the default) for none.

    Off by default: it bounds *reserved* address space, not memory in use,
    and encoders reserve far more than they touch (SVT-AV1 at 1080p on two
    cores: 2.7 GiB reserved for 0.5 GiB resident, and it hangs rather than
    fails when refused). The Job's memory limit (a cgroup) is the real bound;
    this is a second fence for deployments that want one."""
    raw = (os.environ.get(MEMORY_ENV) or "").strip()
    if not raw or raw == "0":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise SpecError(f"{MEMORY_ENV} must be a number of bytes, not {raw!r}") from exc
    if value < 0:
        raise SpecError(f"{MEMORY_ENV} must not be negative")
    return value

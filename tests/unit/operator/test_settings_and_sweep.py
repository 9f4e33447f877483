from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediaflow_operator.settings import Settings
from mediaflow_operator.sweep import EPOCH, OVERLAP, window_start

pytestmark = pytest.mark.unit


def test_settings_come_from_prefixed_env_vars() -> None:
    settings = Settings.from_env(
        {
            "MEDIAFLOW_NATS_URL": "nats://n:4222",
            "MEDIAFLOW_MINIO_NOTIFY_TARGET_ID": "MEDIAFLOW",
            "MEDIAFLOW_S3_SECRET_KEY": "hunter2",
            "MEDIAFLOW_WORKER_COMMAND": "python worker.py --sleep 1",
            "MEDIAFLOW_DEFAULT_STORAGE_SECRET": "mediaflow-system/storage",
            "MEDIAFLOW_SWEEP_INTERVAL_SECONDS": "30",
            "UNRELATED": "x",
        }
    )
    assert settings.nats_url == "nats://n:4222"
    assert settings.notify_arn == "arn:minio:sqs::MEDIAFLOW:nats"
    assert settings.worker_command == ("python", "worker.py", "--sleep", "1")
    assert settings.default_storage_secret_ref == ("mediaflow-system", "storage")
    assert settings.sweep_interval_seconds == 30
    assert "hunter2" not in repr(settings)


def test_explicit_arn_wins() -> None:
    assert (
        Settings(minio_notify_arn="arn:minio:sqs:r:X:nats").notify_arn == "arn:minio:sqs:r:X:nats"
    )


def test_the_fast_target_is_off_unless_its_id_or_arn_is_set() -> None:
    assert Settings().notify_fast_arn == ""
    assert Settings().notify_arns == ("arn:minio:sqs::MEDIAFLOW:nats",)
    fast = Settings.from_env({"MEDIAFLOW_MINIO_NOTIFY_FAST_TARGET_ID": "MEDIAFLOW_FAST"})
    assert fast.notify_fast_arn == "arn:minio:sqs::MEDIAFLOW_FAST:nats"
    assert fast.notify_arns == (
        "arn:minio:sqs::MEDIAFLOW:nats",
        "arn:minio:sqs::MEDIAFLOW_FAST:nats",
    )
    explicit = Settings(minio_notify_fast_arn="arn:minio:sqs:r:F:nats")
    assert explicit.notify_arns[1] == "arn:minio:sqs:r:F:nats"


@pytest.mark.parametrize(
    "env",
    [
        {"MEDIAFLOW_MINIO_NOTIFY_FAST_TARGET_ID": "MEDIAFLOW"},
        {
            "MEDIAFLOW_MINIO_NOTIFY_ARN": "arn:minio:sqs:r:X:nats",
            "MEDIAFLOW_MINIO_NOTIFY_FAST_ARN": "arn:minio:sqs:r:X:nats",
        },
    ],
)
def test_the_fast_target_must_not_be_the_durable_one(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="fast notification target"):
        Settings.from_env(env)


def test_sweep_window_never_starts_before_activation_unless_asked() -> None:
    active = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert window_start(None, active, False) == active
    assert window_start(None, active, True) == EPOCH
    just_after = active + timedelta(seconds=2)
    assert window_start(just_after, active, False) == active
    later = active + timedelta(hours=1)
    assert window_start(later, active, False) == later - OVERLAP
    assert window_start(later, active, True) == later - OVERLAP

"""The ``analysis`` task: media metadata and content detectors as JSON."""

from __future__ import annotations

from pydantic import Field

from mediaflow_api.tasks.common import SpecModel


class AnalysisTask(SpecModel):
    """ffprobe metadata (always) plus optional detectors, written as JSON."""

    scene_changes: bool = Field(
        default=False, alias="sceneChanges", description="Detect scene changes (scdet)."
    )
    scene_threshold: float = Field(
        default=10.0,
        alias="sceneThreshold",
        ge=0,
        le=100,
        description="scdet threshold (0-100); higher finds fewer changes.",
    )
    black: bool = Field(default=False, description="Detect black segments (blackdetect).")
    black_min_seconds: float = Field(
        default=0.5,
        alias="blackMinSeconds",
        ge=0.001,
        le=3600,
        description="Shortest black segment (s).",
    )
    silence: bool = Field(default=False, description="Detect silent segments (silencedetect).")
    silence_threshold_db: float = Field(
        default=-50, alias="silenceThresholdDb", ge=-120, le=0, description="Silence level in dB."
    )
    silence_min_seconds: float = Field(
        default=1.0,
        alias="silenceMinSeconds",
        ge=0.001,
        le=3600,
        description="Shortest silence segment.",
    )
    loudness: bool = Field(
        default=False, description="Measure EBU R128 integrated loudness, range and true peak."
    )

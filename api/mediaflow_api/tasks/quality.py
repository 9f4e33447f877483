"""The ``quality`` task: media quality inspection without a model.

One decode runs FFmpeg's detectors over the video and the audio (black and
frozen pictures, blur, blockiness, luma, black edges, interlacing, duplicated
and dropped frames, mid-stream format changes, silence, loudness, phase); a
packet listing checks the timestamps; a second, sparse decode looks for QR
codes and barcodes with OpenCV. Every problem is a finding with a type, a time
range, a confidence and, where it applies to part of the picture, an area.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from mediaflow_api.tasks.common import SpecModel

# Every kind of finding, in the order quality.json lists them.
FindingType = Literal[
    "black",
    "solidColor",
    "freeze",
    "blur",
    "blockiness",
    "dark",
    "bright",
    "blackEdges",
    "interlaced",
    "duplicateFrames",
    "droppedFrames",
    "resolutionChange",
    "timestamps",
    "noAudio",
    "silence",
    "quiet",
    "loud",
    "outOfPhase",
    "sampleRateChange",
    "channelLayoutChange",
    "qrCode",
    "barcode",
]
FINDING_TYPES: tuple[str, ...] = FindingType.__args__  # type: ignore[attr-defined]


class QualityTask(SpecModel):
    """Inspect the input for technical problems and write ``quality.json``."""

    needs_ml: ClassVar[bool] = True  # OpenCV (QR codes, barcodes): the worker-ml image

    checks: list[FindingType] | None = Field(
        default=None,
        max_length=len(FINDING_TYPES),
        description=(
            "The kinds of finding to look for; all of them when unset (the kinds failOn names "
            "are always looked for). Leaving out qrCode and barcode skips the second (OpenCV) "
            "decode; leaving out timestamps skips the packet listing."
        ),
    )
    fail_on: list[FindingType] | None = Field(
        default=None,
        alias="failOn",
        max_length=len(FINDING_TYPES),
        description=(
            "Fail the object (exit code 2, reason QualityRejected, the findings in the "
            "message) when a finding of one of these kinds is present: reject bad input "
            "early. Put the quality task first in the Workflow so that nothing else runs "
            "on a rejected input."
        ),
    )
    sample_seconds: float = Field(
        default=0.2,
        alias="sampleSeconds",
        ge=0.04,
        le=10,
        description=(
            "Step of the per-picture statistics (luma, solid colour, blur, blockiness, "
            "black edges), in seconds."
        ),
    )
    min_seconds: float = Field(
        default=1.0,
        alias="minSeconds",
        ge=0.04,
        le=3600,
        description="Shortest dark, bright, blurred, blocky or black-edged stretch reported (s).",
    )
    black_min_seconds: float = Field(
        default=1.0,
        alias="blackMinSeconds",
        ge=0.04,
        le=3600,
        description="Shortest black or solid-colour screen reported (s).",
    )
    black_pixel_threshold: float = Field(
        default=0.1,
        alias="blackPixelThreshold",
        ge=0,
        le=1,
        description="Luma (0-1) at or below which a pixel counts as black (blackdetect pix_th).",
    )
    freeze_min_seconds: float = Field(
        default=2.0,
        alias="freezeMinSeconds",
        ge=0.1,
        le=3600,
        description="Shortest frozen picture reported (s); shorter repeats are duplicateFrames.",
    )
    freeze_noise_db: float = Field(
        default=-60,
        alias="freezeNoiseDb",
        ge=-90,
        le=0,
        description="Difference (dB) below which two pictures are the same (freezedetect).",
    )
    blur_threshold: float = Field(
        default=12.0,
        alias="blurThreshold",
        ge=0,
        le=1000,
        description=(
            "blurdetect value above which a picture is blurred (about the width of its "
            "edges in pixels, measured at most 640 pixels wide: sharp video is 3-6, soft "
            "camera footage up to 10)."
        ),
    )
    block_threshold: float = Field(
        default=40.0,
        alias="blockThreshold",
        ge=0,
        le=1000,
        description="blockdetect value above which a picture is blocky (clean video is under 20).",
    )
    dark_luma: float = Field(
        default=30,
        alias="darkLuma",
        ge=0,
        le=255,
        description="Average luma (8-bit scale) below which a picture is too dark.",
    )
    bright_luma: float = Field(
        default=220,
        alias="brightLuma",
        ge=0,
        le=255,
        description="Average luma (8-bit scale) above which a picture is too bright.",
    )
    edge_min_percent: float = Field(
        default=2.0,
        alias="edgeMinPercent",
        ge=0.5,
        le=50,
        description="Black edges (letterbox, pillarbox) narrower than this percent are ignored.",
    )
    silence_threshold_db: float = Field(
        default=-50,
        alias="silenceThresholdDb",
        ge=-120,
        le=0,
        description="Level (dB) below which audio is silent.",
    )
    silence_min_seconds: float = Field(
        default=1.0,
        alias="silenceMinSeconds",
        ge=0.05,
        le=3600,
        description="Shortest silence reported (s).",
    )
    loudness_min_lufs: float = Field(
        default=-35,
        alias="loudnessMinLufs",
        ge=-70,
        le=0,
        description="Integrated loudness (EBU R128, LUFS) below which the audio is too quiet.",
    )
    loudness_max_lufs: float = Field(
        default=-9,
        alias="loudnessMaxLufs",
        ge=-70,
        le=0,
        description="Integrated loudness (EBU R128, LUFS) above which the audio is too loud.",
    )
    phase_min_seconds: float = Field(
        default=1.0,
        alias="phaseMinSeconds",
        ge=0.1,
        le=3600,
        description="Shortest out-of-phase stereo stretch reported (aphasemeter), in seconds.",
    )
    timestamp_gap_seconds: float = Field(
        default=2.0,
        alias="timestampGapSeconds",
        ge=0.1,
        le=3600,
        description=(
            "A jump between the timestamps of two packets of one stream longer than this "
            "is reported (s)."
        ),
    )
    code_sample_seconds: float = Field(
        default=1.0,
        alias="codeSampleSeconds",
        ge=0.1,
        le=60,
        description="Step of the pictures searched for QR codes and barcodes (s).",
    )

"""Task spec models: one entry of ``Workflow.spec.tasks``.

These models are the single source of the ``spec.tasks`` schema of the
Workflow CRD and of what the worker accepts. Two rules keep them expressible as
a Kubernetes *structural* schema:

- no free-form dicts and no unions of different types: a value that may be
  "seconds or percent" is a string with a pattern (``"12.5"`` or ``"50%"``);
- every rule the schema alone cannot express (exactly-one-of, ``a < b``) exists
  twice: as a pydantic validator (for the worker and ``mediaflow-worker run``)
  and as an ``x-kubernetes-validations`` CEL rule (for ``kubectl apply``).

Serialise with ``task.model_dump(by_alias=True, exclude_none=True,
mode="json")``; the result validates back into an equal model.

Named presets (``transcode.preset``, ``adaptiveStreaming.ladder``) live in
``mediaflow_api.presets``; explicit fields override the preset.

One module per task type (``transcode``, ``snapshot``, ``sprite``,
``animated_image``, ``adaptive_streaming``, ``analysis``, ``cover``), ``watermark`` for
the transcode's overlays, ``common`` for what they share and ``spec`` for the
task entry and the table of task types. This package re-exports them all:
import from ``mediaflow_api.tasks``.
"""

from mediaflow_api.tasks.adaptive_streaming import (
    HEVC_LADDERS,
    AdaptiveStreamingTask,
    AudioRendition,
    Encryption,
    LadderName,
    Rendition,
    SecretKeyRef,
)
from mediaflow_api.tasks.analysis import AnalysisTask
from mediaflow_api.tasks.animated_image import AnimatedImageTask
from mediaflow_api.tasks.common import (
    BITRATE_PATTERN,
    BUCKET_PATTERN,
    TASK_NAME_PATTERN,
    TIME_POINT_PATTERN,
    Bitrate,
    EncoderPreset,
    ImageFormat,
    SpecModel,
    TimePoint,
    parse_bitrate,
    parse_length,
    parse_time_point,
)
from mediaflow_api.tasks.cover import CoverImages, CoverTask
from mediaflow_api.tasks.intro_outro import ClipRef
from mediaflow_api.tasks.keywords import KeywordList
from mediaflow_api.tasks.moderation import (
    Classifier,
    ClassifierModel,
    LabelThreshold,
    ModerationSources,
    ModerationTask,
    OcrSource,
    SpeechSource,
)
from mediaflow_api.tasks.ocr import OcrRegion, OcrTask
from mediaflow_api.tasks.privacy import MAX_REGIONS, Privacy, PrivacyRegion, RegionStyle
from mediaflow_api.tasks.quality import FINDING_TYPES, FindingType, QualityTask
from mediaflow_api.tasks.snapshot import SnapshotTask
from mediaflow_api.tasks.spec import (
    ML_TASK_TYPES,
    TASK_MODELS,
    TASK_TYPES,
    TASKS_LIST_VALIDATIONS,
    TASKS_MAX_ITEMS,
    TaskSpec,
    check_unique_task_names,
    needs_ml_image,
    task_json,
)
from mediaflow_api.tasks.speech import SpeechTask
from mediaflow_api.tasks.sprite import SpriteTask
from mediaflow_api.tasks.subtitles import (
    SOFT_SUBTITLE_CONTAINERS,
    StreamSubtitles,
    SubtitleFile,
    Subtitles,
    SubtitleStyle,
    sidecar_names,
)
from mediaflow_api.tasks.template_ref import (
    CLUSTER_TEMPLATE_KIND,
    TEMPLATE_KIND,
    TemplateKind,
    TemplateReference,
)
from mediaflow_api.tasks.transcode import (
    AUDIO_ONLY_CONTAINERS,
    CONTAINER_AUDIO_CODECS,
    CONTAINER_VIDEO_CODECS,
    PRESET_CODECS,
    AudioCodec,
    AudioSettings,
    Container,
    TranscodePresetName,
    TranscodeTask,
    Trim,
    VideoCodec,
    VideoSettings,
)
from mediaflow_api.tasks.watermark import (
    COLOR_PATTERN,
    LENGTH_PATTERN,
    Length,
    Position,
    Watermark,
    WatermarkImage,
)

__all__ = [
    "AUDIO_ONLY_CONTAINERS",
    "BITRATE_PATTERN",
    "BUCKET_PATTERN",
    "CLUSTER_TEMPLATE_KIND",
    "COLOR_PATTERN",
    "CONTAINER_AUDIO_CODECS",
    "CONTAINER_VIDEO_CODECS",
    "FINDING_TYPES",
    "HEVC_LADDERS",
    "LENGTH_PATTERN",
    "MAX_REGIONS",
    "ML_TASK_TYPES",
    "PRESET_CODECS",
    "SOFT_SUBTITLE_CONTAINERS",
    "TASKS_LIST_VALIDATIONS",
    "TASKS_MAX_ITEMS",
    "TASK_MODELS",
    "TASK_NAME_PATTERN",
    "TASK_TYPES",
    "TEMPLATE_KIND",
    "TIME_POINT_PATTERN",
    "AdaptiveStreamingTask",
    "AnalysisTask",
    "AnimatedImageTask",
    "AudioCodec",
    "AudioRendition",
    "AudioSettings",
    "Bitrate",
    "Classifier",
    "ClassifierModel",
    "ClipRef",
    "Container",
    "CoverImages",
    "CoverTask",
    "EncoderPreset",
    "Encryption",
    "FindingType",
    "ImageFormat",
    "KeywordList",
    "LabelThreshold",
    "LadderName",
    "Length",
    "ModerationSources",
    "ModerationTask",
    "OcrRegion",
    "OcrSource",
    "OcrTask",
    "Position",
    "Privacy",
    "PrivacyRegion",
    "QualityTask",
    "RegionStyle",
    "Rendition",
    "SecretKeyRef",
    "SnapshotTask",
    "SpecModel",
    "SpeechSource",
    "SpeechTask",
    "SpriteTask",
    "StreamSubtitles",
    "SubtitleFile",
    "SubtitleStyle",
    "Subtitles",
    "TaskSpec",
    "TemplateKind",
    "TemplateReference",
    "TimePoint",
    "TranscodePresetName",
    "TranscodeTask",
    "Trim",
    "VideoCodec",
    "VideoSettings",
    "Watermark",
    "WatermarkImage",
    "check_unique_task_names",
    "needs_ml_image",
    "parse_bitrate",
    "parse_length",
    "parse_time_point",
    "sidecar_names",
    "task_json",
]

"""The worker's table of task types: for every type of the contract
(``mediaflow_api.tasks.TASK_MODELS``), how to resolve its presets, which
encoders it needs, and how to run it.

Adding a task type to the worker is one entry in ``HANDLERS`` and its own
modules (``tasks/<type>.py`` runs it, ``ffmpeg/<type>.py`` builds its command).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mediaflow_api.tasks import (
    AdaptiveStreamingTask,
    AnalysisTask,
    AnimatedImageTask,
    CoverTask,
    ModerationTask,
    OcrTask,
    QualityTask,
    SnapshotTask,
    SpecModel,
    SpeechTask,
    SpriteTask,
    TaskSpec,
    TranscodeTask,
)
from mediaflow_worker.errors import SpecError
from mediaflow_worker.tasks import (
    OutputFile,
    TaskContext,
    adaptive_streaming,
    analysis,
    animated_image,
    snapshot,
    sprite,
    transcode,
)
from mediaflow_worker.understanding import cover, moderation, ocr, quality, speech

SpecT = TypeVar("SpecT", bound=SpecModel)
ResolvedT = TypeVar("ResolvedT")


def as_given(spec: SpecT) -> SpecT:
    """``resolve`` of a task type without presets."""
    return spec


@dataclass(frozen=True)
class TaskHandler(Generic[SpecT, ResolvedT]):
    """How the worker runs one task type."""

    model: type[SpecT]  # the contract's model of the type's settings
    # Presets and defaults applied; ValueError for combinations that cannot work.
    resolve: Callable[[SpecT], ResolvedT]
    required_encoders: Callable[[ResolvedT], set[str]]
    run: Callable[[ResolvedT, TaskContext], list[OutputFile]]


# Task type (as in ``TaskSpec.kind``) -> its handler.
HANDLERS: dict[str, TaskHandler[Any, Any]] = {
    "transcode": TaskHandler(
        TranscodeTask, transcode.resolve, transcode.required_encoders, transcode.run
    ),
    "snapshot": TaskHandler(SnapshotTask, as_given, snapshot.required_encoders, snapshot.run),
    "sprite": TaskHandler(SpriteTask, as_given, sprite.required_encoders, sprite.run),
    "animatedImage": TaskHandler(
        AnimatedImageTask, as_given, animated_image.required_encoders, animated_image.run
    ),
    "adaptiveStreaming": TaskHandler(
        AdaptiveStreamingTask,
        adaptive_streaming.resolve,
        adaptive_streaming.required_encoders,
        adaptive_streaming.run,
    ),
    "analysis": TaskHandler(AnalysisTask, as_given, analysis.required_encoders, analysis.run),
    "quality": TaskHandler(QualityTask, as_given, quality.required_encoders, quality.run),
    "cover": TaskHandler(CoverTask, as_given, cover.required_encoders, cover.run),
    "ocr": TaskHandler(OcrTask, as_given, ocr.required_encoders, ocr.run),
    "speech": TaskHandler(SpeechTask, as_given, speech.required_encoders, speech.run),
    "moderation": TaskHandler(
        ModerationTask, as_given, moderation.required_encoders, moderation.run
    ),
}


@dataclass(frozen=True)
class PreparedTask:
    """A task with its presets resolved (once): what it needs, how it runs."""

    task: TaskSpec
    handler: TaskHandler[Any, Any]
    resolved: Any

    def required_encoders(self) -> set[str]:
        """The ffmpeg encoders the task will use (pure)."""
        return self.handler.required_encoders(self.resolved)

    @property
    def needs_ml(self) -> bool:
        """Whether the task needs the ``mediaflow[ml]`` packages (its type's model says)."""
        needs: bool = self.handler.model.needs_ml
        return needs

    def run(self, ctx: TaskContext) -> list[OutputFile]:
        """Run the task on ``ctx``'s input into ``ctx.out_dir``."""
        return self.handler.run(self.resolved, ctx)


def prepare(task: TaskSpec) -> PreparedTask:
    """Look up the task's handler and resolve its presets; ``SpecError``
    naming the task when the combination cannot work."""
    handler = HANDLERS[task.kind]
    spec = task.type_spec
    assert isinstance(spec, handler.model), (task.kind, type(spec))
    try:
        resolved = handler.resolve(spec)
    except ValueError as exc:
        raise SpecError(f"task {task.name!r}: {exc}") from exc
    return PreparedTask(task, handler, resolved)

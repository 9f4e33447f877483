"""The worker's error taxonomy: what went wrong decides the exit code.

::

    WorkerError                      exit 1 unless a subclass says otherwise
    ├── SupersededError              exit 0 (EXIT_OK, reason Superseded): the input
    │   │                            was overwritten or deleted while the Job ran;
    │   │                            the newer version's Job owns the result, this
    │   │                            one leaves no outputs and no manifest
    │   └── InputChangedError        ... noticed at download (ETag differs)
    ├── BadInputError                exit 2 (EXIT_BAD_INPUT): retrying cannot help
    │   ├── InputNotFoundError       the object is gone (deleted, or never existed)
    │   ├── EmptyInputError          zero bytes
    │   ├── InputRejectedError       the safety rules refused it (playlist, demuxer,
    │   │                            size, duration, pixels)
    │   ├── UnreadableInputError     ffprobe cannot read it (corrupt, truncated,
    │   │                            not media)
    │   ├── IncompatibleCopyError    ``codec: copy`` of a source codec the output
    │   │                            container cannot hold (VP8 into MP4)
    │   ├── QualityRejectedError     the ``quality`` task found a problem its
    │   │                            ``failOn`` names (black screen, silence...)
    │   ├── OutputNameError          a custom output name (``tasks[].output``)
    │   │                            renders to a key S3 cannot hold
    │   ├── OutputCollisionError     a custom output key holds an object of another
    │   │                            input or Workflow (or not mediaflow's): never
    │   │                            overwritten; or two outputs of one run share a key
    │   └── ModerationBlockedError   a ``moderation`` task with ``failOn`` found
    │                                content at or above that suggestion
    ├── SpecError                    the task spec cannot work (preset/container
    │   │                            clash); exit 1
    │   ├── EncoderUnavailableError  this ffmpeg build lacks an encoder the spec needs
    │   ├── ModelUnavailableError    exit 2: a content-understanding task runs on a worker
    │   │                            without the ``mediaflow[ml]`` packages (the lean
    │   │                            image) or a model file is missing from them
    │   └── AssetError               exit 2: an input the spec names besides the
    │       │                        upload (watermark image, text font) is unusable
    │       │                        (not decodable, too large); found by the
    │       │                        preflight, before any task runs
    │       └── AssetNotFoundError   ... or missing
    ├── ProcessingError              ffmpeg failed on an input that probed fine
    │   ├── ProcessTimeoutError      the wall-time limit killed it
    │   └── OutputTooLargeError      outputs passed Limits.maxOutputBytes
    └── StorageError                 S3 failed (network, auth, bucket); transient

Every error carries a ``reason`` (a CamelCase word for the termination
message and the Workflow status) and a one-line human message.
"""

from __future__ import annotations

from mediaflow_api.job import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, REASON_SUPERSEDED


class WorkerError(Exception):
    """Base of every error the worker reports on purpose."""

    exit_code: int = EXIT_FAILED
    reason: str = "Failed"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadInputError(WorkerError):
    """The input object can never be processed: the Job must not retry."""

    exit_code = EXIT_BAD_INPUT
    reason = "BadInput"


class InputNotFoundError(BadInputError):
    reason = "InputNotFound"


class SupersededError(WorkerError):
    """The input is no longer the version this Job was made for. Not a
    failure: ``job_mode`` removes what this Job uploaded, writes no manifest
    (a newer version's must not be overwritten), and the Job ends with exit 0
    and the reason ``Superseded`` (so Kubernetes does not retry it)."""

    exit_code = EXIT_OK
    reason = REASON_SUPERSEDED


class InputChangedError(SupersededError):
    """The ETag differed already when the download started."""


class EmptyInputError(BadInputError):
    reason = "EmptyInput"


class InputRejectedError(BadInputError):
    reason = "InputRejected"


class UnreadableInputError(BadInputError):
    reason = "UnreadableInput"


class IncompatibleCopyError(BadInputError):
    """``codec: copy`` asked for a source stream the container cannot hold:
    the same input fails the same way every time."""

    reason = "IncompatibleCopy"


class QualityRejectedError(BadInputError):
    """The ``quality`` task found a kind of problem its ``failOn`` lists: the
    input is refused, like a corrupt one (the same input fails the same way)."""

    reason = "QualityRejected"


class OutputNameError(BadInputError):
    reason = "InvalidOutputName"


class OutputCollisionError(BadInputError):
    reason = "OutputCollision"


class ModerationBlockedError(BadInputError):
    """A ``moderation`` task's suggestion reached its ``failOn``: the object
    is rejected (the same content gives the same suggestion on a retry)."""

    reason = "ModerationBlocked"


class SpecError(WorkerError):
    reason = "InvalidSpec"


class EncoderUnavailableError(SpecError):
    reason = "EncoderUnavailable"


class ModelUnavailableError(SpecError):
    # Retrying on the same image cannot help (a Workflow whose execution.image
    # is the lean worker): the Job fails at once, its reason names the image.
    exit_code = EXIT_BAD_INPUT
    reason = "ModelUnavailable"


class AssetError(SpecError):
    """A watermark image or the font of a text watermark cannot be used: the
    same spec fails the same way on every input, so the Job must not retry.
    ``preflight`` raises it before the first task starts."""

    exit_code = EXIT_BAD_INPUT
    reason = "AssetUnusable"


class AssetNotFoundError(AssetError):
    reason = "AssetNotFound"


class ProcessingError(WorkerError):
    reason = "ProcessingFailed"


class ProcessTimeoutError(ProcessingError):
    reason = "Timeout"


class OutputTooLargeError(ProcessingError):
    reason = "OutputTooLarge"


class StorageError(WorkerError):
    reason = "StorageError"

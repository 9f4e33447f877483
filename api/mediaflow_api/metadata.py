"""S3 user metadata mediaflow reads and writes: the marker of mediaflow output, and
what an uploader may set for the Job and its notifications.

The dispatcher skips any object carrying ``OUTPUT_MARKER``: this is what stops
output written into the trigger directory (the default) from triggering new
work. MinIO reports user metadata in events as ``X-Amz-Meta-<Name>``; S3 clients
send it as ``x-amz-meta-<name>``; header names are case-insensitive.
"""

from __future__ import annotations

from collections.abc import Mapping

# Keys without the x-amz-meta- prefix, as given to minio-py's ``metadata=``.
OUTPUT_MARKER = "mediaflow-output"
WORKFLOW = "mediaflow-workflow"
TASK = "mediaflow-task"
SOURCE_BUCKET = "mediaflow-source-bucket"
SOURCE_KEY = "mediaflow-source-key"
SOURCE_ETAG = "mediaflow-source-etag"  # on outputs and manifest.json: the input's ETag
# Set by the uploader, carried by the Job and its notifications (``object_facts``):
CONTEXT = "mediaflow-context"  # pass-through context, overrides spec.notifications.context
CORRELATION_ID = "mediaflow-correlation-id"  # else the Job name
TRACEPARENT = "traceparent"  # W3C trace context of the upload, continued by the Job

# Directory suffix of an input's outputs:
# <output prefix><relative key>.mediaflow/<namespace>/<workflow>/
# MinIO cannot hold an object and a "directory" of the same name, so outputs
# live next to the input key, never below it. Every Workflow has its own
# directory below it, so Workflows on the same or nested prefixes never touch
# each other's outputs or manifests.
OUTPUT_DIR_SUFFIX = ".mediaflow"
MANIFEST_NAME = "manifest.json"


def is_mediaflow_output(user_metadata: Mapping[str, str] | None) -> bool:
    """Tell whether S3 user metadata (in any of the spellings MinIO and
    clients use) marks the object as written by mediaflow."""
    return user_metadata_value(user_metadata, OUTPUT_MARKER) is not None


def user_metadata_value(user_metadata: Mapping[str, str] | None, name: str) -> str | None:
    """The value of user metadata ``name`` (one of the keys above), in any of
    the spellings MinIO and clients use (``X-Amz-Meta-Name``, ``x-amz-meta-name``,
    ``name``); None when absent."""
    if not user_metadata:
        return None
    wanted = name.lower()
    for key, value in user_metadata.items():
        lowered = key.lower()
        if lowered.startswith("x-amz-meta-"):
            lowered = lowered[len("x-amz-meta-") :]
        if lowered == wanted:
            return value
    return None


def output_dir_for(
    input_key: str, trigger_prefix: str, output_prefix: str, namespace: str, workflow: str
) -> str:
    """The key prefix (ending in ``/``) under which all outputs of one input
    made by one Workflow live.

    The input key is taken relative to the trigger prefix, so
    ``incoming/a/b.mp4`` with trigger ``incoming/`` and output ``processed/``
    of Workflow ``media/web`` gives ``processed/a/b.mp4.mediaflow/media/web/``.
    Distinct input keys give distinct directories, none is a prefix of another
    input's directory, and two Workflows never share one (namespace and name
    are DNS labels/subdomains: no ``/``), so one Workflow's stale-output cleanup
    cannot reach another's results.
    """
    relative = input_key.removeprefix(trigger_prefix)
    return f"{output_prefix}{relative}{OUTPUT_DIR_SUFFIX}/{namespace}/{workflow}/"

"""The Content-Type of an output file, by extension (a table, pure).

Apart from ``storage`` so that the manifest can name it without importing
the S3 client: ``mediaflow-worker run`` never talks to storage, and minio-py
with its crypto and HTTP stack is a tenth of a second of start-up."""

from __future__ import annotations

import mimetypes
from pathlib import Path

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".vtt": "text/vtt",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".json": "application/json",
}


def content_type(path: Path | str) -> str:
    """The Content-Type of an output file, by extension."""
    suffix = Path(path).suffix.lower()
    return (
        CONTENT_TYPES.get(suffix)
        or mimetypes.guess_type(str(path))[0]
        or ("application/octet-stream")
    )

"""Encoder, container and image-format names, and what ``codec: copy`` can put
where (tables, pure)."""

from __future__ import annotations

VIDEO_ENCODERS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
AUDIO_ENCODERS = {
    "aac": "aac",
    "opus": "libopus",
    "mp3": "libmp3lame",
    "flac": "flac",
    "pcm": "pcm_s16le",
    "ac3": "ac3",
    "eac3": "eac3",
}
IMAGE_ENCODERS = {"jpeg": "mjpeg", "png": "png", "webp": "libwebp"}
IMAGE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
ANIMATION_ENCODERS = {"gif": "gif", "webp": "libwebp_anim"}
# container -> (muxer, file extension)
CONTAINERS = {
    "mp4": ("mp4", "mp4"),
    "mov": ("mov", "mov"),
    "mkv": ("matroska", "mkv"),
    "webm": ("webm", "webm"),
    "ts": ("mpegts", "ts"),
    "mp3": ("mp3", "mp3"),
    "m4a": ("ipod", "m4a"),
    "wav": ("wav", "wav"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "ogg"),
}
FASTSTART_CONTAINERS = ("mp4", "mov", "m4a")
# ``codec: copy``: the source codecs (ffprobe names) each container takes as
# they are, measured with ffmpeg 5.1's muxers (stream copy of generated
# streams); MPEG-TS and WAV would accept more, but only these play anywhere.
# None: anything (Matroska). "pcm" stands for every pcm_* codec.
COPY_VIDEO_CODECS: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"}),
    "mov": frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mjpeg", "prores"}),
    "mkv": None,
    "webm": frozenset({"vp8", "vp9", "av1"}),
    "ts": frozenset({"h264", "hevc", "mpeg2video", "mpeg1video", "mpeg4"}),
}
COPY_AUDIO_CODECS: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "mp2", "opus", "ac3", "eac3", "alac"}),
    "mov": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "alac", "pcm"}),
    "mkv": None,
    "webm": frozenset({"opus", "vorbis"}),
    "ts": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"}),
    "mp3": frozenset({"mp3"}),
    "m4a": frozenset({"aac", "alac"}),
    "wav": frozenset({"pcm"}),
    "flac": frozenset({"flac"}),
    "ogg": frozenset({"opus", "vorbis", "flac"}),
}


def copy_fits(kind: str, source_codec: str, container: str) -> bool:
    """Whether ``codec: copy`` of a ``source_codec`` stream (ffprobe's name)
    can go into ``container`` (``kind`` is "video" or "audio"; pure)."""
    table = COPY_VIDEO_CODECS if kind == "video" else COPY_AUDIO_CODECS
    if container not in table:
        return False
    allowed = table[container]
    if allowed is None:
        return True
    family = "pcm" if source_codec.startswith("pcm_") else source_codec
    return family in allowed


VP9_CPU_USED = {
    "ultrafast": 8,
    "superfast": 7,
    "veryfast": 6,
    "faster": 5,
    "fast": 4,
    "medium": 3,
    "slow": 2,
    "slower": 1,
    "veryslow": 0,
}
SVTAV1_PRESET = {
    "ultrafast": 12,
    "superfast": 11,
    "veryfast": 10,
    "faster": 9,
    "fast": 8,
    "medium": 7,
    "slow": 5,
    "slower": 4,
    "veryslow": 2,
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# AC-3 and E-AC-3 (as ffmpeg encodes them) run at these rates, 5.1 channels at most.
AC3_RATES = (32000, 44100, 48000)
AC3_MAX_CHANNELS = 6
# Containers that hold one audio track (a multi-track selection keeps the first).
SINGLE_AUDIO_CONTAINERS = ("mp3", "wav", "flac")


def image_codec_args(fmt: str) -> list[str]:
    """Encoder options for one still image."""
    if fmt == "jpeg":
        return ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"]
    if fmt == "png":
        return ["-c:v", "png", "-pix_fmt", "rgb24"]
    return ["-c:v", "libwebp", "-quality", "80", "-pix_fmt", "yuv420p"]

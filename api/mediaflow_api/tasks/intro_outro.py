"""Intro and outro clips of a transcode (the reference service's head and
tail): video objects joined before and after the output."""

from __future__ import annotations

from pydantic import Field

from mediaflow_api.tasks.common import BUCKET_PATTERN, SpecModel, cel


class ClipRef(SpecModel):
    """A video object in a bucket, joined to the output."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=BUCKET_PATTERN, description="Bucket of the clip."
    )
    key: str = Field(min_length=1, max_length=1024, description="Object key of the clip.")


def check_transcode_intro_outro(
    intro: ClipRef | None,
    outro: ClipRef | None,
    video_codec: str | None,
    audio_codec: str | None,
    *,
    audio_selection: bool = False,
) -> None:
    """The transcode-level rules of ``intro``/``outro``: joining re-encodes
    both streams, and the joined sound is the main part's first track
    (``audio_selection``: the audio sets loudness, tracks or languages,
    which a join does not take yet)."""
    if intro is None and outro is None:
        return
    if video_codec in ("copy", "none"):
        raise ValueError("transcode.intro/outro need the video to be encoded (not copy/none)")
    if audio_codec == "copy":
        raise ValueError("transcode.intro/outro need the audio to be encoded or none (not copy)")
    if audio_selection:
        raise ValueError(
            "transcode.intro/outro join the first audio track as it is: remove audio.loudness, "
            "audio.tracks: all and audio.languages"
        )


# The CEL twins of ``check_transcode_intro_outro`` (on the transcode object).
TRANSCODE_INTRO_OUTRO_CEL = [
    cel(
        "!(has(self.intro) || has(self.outro)) || !has(self.video) || !has(self.video.codec) || "
        "!(self.video.codec in ['copy', 'none'])",
        "transcode.intro/outro need the video to be encoded (not copy/none)",
    ),
    cel(
        "!(has(self.intro) || has(self.outro)) || !has(self.audio) || !has(self.audio.codec) || "
        "self.audio.codec != 'copy'",
        "transcode.intro/outro need the audio to be encoded or none (not copy)",
    ),
    cel(
        "!(has(self.intro) || has(self.outro)) || !has(self.audio) || "
        "!(has(self.audio.loudness) || has(self.audio.languages) || "
        "(has(self.audio.tracks) && self.audio.tracks == 'all'))",
        "transcode.intro/outro join the first audio track as it is: remove audio.loudness, "
        "audio.tracks: all and audio.languages",
    ),
]

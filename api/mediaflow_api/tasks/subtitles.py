"""Subtitles of a transcode: a sidecar file (.srt, .vtt, .ass) burned into
the picture or muxed as a subtitle stream.

The sidecar is either named (``file: {bucket, key}``, like a watermark
image) or found next to the input by the naming rule of ``SIDECAR_NAMES``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mediaflow_api.tasks.common import BUCKET_PATTERN, SpecModel, cel
from mediaflow_api.tasks.watermark import Length

SUBTITLE_EXTENSIONS = ("srt", "vtt", "ass")
# A sidecar object key: any key ending in one of the extensions above.
SUBTITLE_KEY_PATTERN = r"^.*\.(srt|vtt|ass)$"
# ISO 639-2 (three letters), what MP4 and Matroska store as a track language.
LANGUAGE_PATTERN = r"^[a-z]{3}$"
HEX_COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
# The containers that hold a soft subtitle stream, and the codec each gets.
SOFT_SUBTITLE_CONTAINERS = ("mp4", "mov", "mkv", "webm")

SubtitleMode = Literal["burnIn", "soft"]
SubtitlePosition = Literal["bottom", "middle", "top"]


def sidecar_names(input_name: str, language: str | None) -> list[str]:
    """The file names the naming rule tries next to the input, in order.

    ``clip.mp4`` with language ``eng``: ``clip.eng.srt``, ``clip.eng.vtt``,
    ``clip.eng.ass``, then ``clip.srt``, ``clip.vtt``, ``clip.ass``; without
    a language only the last three. The input's last extension is replaced
    (``a.b.mp4`` -> ``a.b.srt``); a name without one gets the suffix added."""
    stem = input_name.rsplit(".", 1)[0] if "." in input_name.lstrip(".") else input_name
    names = []
    if language:
        names += [f"{stem}.{language}.{ext}" for ext in SUBTITLE_EXTENSIONS]
    names += [f"{stem}.{ext}" for ext in SUBTITLE_EXTENSIONS]
    return names


class SubtitleFile(SpecModel):
    """A subtitle object in a bucket."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=BUCKET_PATTERN, description="Bucket of the sidecar."
    )
    key: str = Field(
        min_length=5,
        max_length=1024,
        pattern=SUBTITLE_KEY_PATTERN,
        description="Object key of the sidecar; ends in .srt, .vtt or .ass (the format).",
    )


class SubtitleStyle(SpecModel):
    """How burned-in subtitles look. Unset fields keep the defaults below for
    .srt/.vtt sidecars and the file's own style for .ass sidecars."""

    font_size: Length | None = Field(
        default=None,
        alias="fontSize",
        description="Text height in pixels or % of the video height. Default 5%.",
    )
    font_color: str | None = Field(
        default=None,
        alias="fontColor",
        pattern=HEX_COLOR_PATTERN,
        max_length=7,
        description="Text colour '#rrggbb'. Default #ffffff.",
    )
    outline_color: str | None = Field(
        default=None,
        alias="outlineColor",
        pattern=HEX_COLOR_PATTERN,
        max_length=7,
        description="Outline colour '#rrggbb'. Default #000000.",
    )
    outline: float | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Outline width in pixels of the output (0: none). Default: 1/15 of the "
        "font size.",
    )
    position: SubtitlePosition | None = Field(
        default=None, description="Where the lines sit: bottom, middle or top. Default bottom."
    )
    margin: Length | None = Field(
        default=None,
        description="Distance from the bottom (or top) edge: pixels or % of the video height. "
        "Default 5%.",
    )


class Subtitles(SpecModel):
    """Subtitles from a sidecar file, burned in or as a subtitle stream."""

    mode: SubtitleMode = Field(
        default="burnIn",
        description=(
            "burnIn: draw the text into the picture (libass; needs the video encoded). "
            "soft: add a subtitle stream the player can switch off (mp4/mov: mov_text, "
            "mkv: srt or ass as the sidecar is, webm: webvtt)."
        ),
    )
    file: SubtitleFile | None = Field(
        default=None,
        description=(
            "The sidecar object. Missing object: the task fails (exit 2). Unset: the sidecar "
            "is looked for next to the input: <input name without extension>[.<language>]"
            ".srt|.vtt|.ass (language first, then srt, vtt, ass); none found: no subtitles, "
            "and the manifest says so."
        ),
    )
    language: str | None = Field(
        default=None,
        pattern=LANGUAGE_PATTERN,
        max_length=3,
        description="ISO 639-2 language code (e.g. 'eng', 'zho'): the soft stream's language "
        "tag and the first name the naming rule tries. Default: undetermined ('und').",
    )
    style: SubtitleStyle | None = Field(
        default=None, description="Look of burned-in subtitles (burnIn only)."
    )

    @model_validator(mode="after")
    def _check(self) -> Subtitles:
        if self.style is not None and self.mode != "burnIn":
            raise ValueError("subtitles.style applies to mode burnIn only")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.style) || !has(self.mode) || self.mode == 'burnIn'",
                    "subtitles.style applies to mode burnIn only",
                ),
            ]
        }
    )


class StreamSubtitles(SpecModel):
    """A WebVTT subtitle rendition of an adaptive stream (soft only: players
    switch it on and off). The sidecar is found and vetted as for a transcode."""

    mode: Literal["soft"] = Field(
        default="soft",
        description="soft only: a WebVTT rendition (burnIn on a ladder is not supported; "
        "burn the subtitles in with a transcode first).",
    )
    file: SubtitleFile | None = Field(
        default=None,
        description=(
            "The sidecar object (.srt, .vtt or .ass). Missing object: the task fails "
            "(exit 2). Unset: looked for next to the input by the naming rule of "
            "transcode.subtitles; none found: no subtitle rendition, and the manifest says so."
        ),
    )
    language: str | None = Field(
        default=None,
        pattern=LANGUAGE_PATTERN,
        max_length=3,
        description="ISO 639-2 language code (e.g. 'eng'): the rendition's LANGUAGE (HLS) / "
        "lang (DASH) and the first name the naming rule tries. Default 'und'.",
    )

    def as_subtitles(self) -> Subtitles:
        """The transcode model of the same sidecar (what the worker vets)."""
        return Subtitles(mode="soft", file=self.file, language=self.language)


def check_transcode_subtitles(
    subtitles: Subtitles | None, container: str | None, video_codec: str | None
) -> None:
    """The transcode-level rules of ``subtitles`` (explicit fields only; a
    preset's container is checked when it is resolved)."""
    if subtitles is None:
        return
    if subtitles.mode == "burnIn" and video_codec in ("copy", "none"):
        raise ValueError("transcode.subtitles burnIn needs the video to be encoded (not copy/none)")
    if (
        subtitles.mode == "soft"
        and container is not None
        and container not in SOFT_SUBTITLE_CONTAINERS
    ):
        raise ValueError(
            f"transcode.subtitles soft needs a container that holds subtitles "
            f"{SOFT_SUBTITLE_CONTAINERS}, not {container!r}"
        )


# The CEL twins of ``check_transcode_subtitles`` (on the transcode object).
TRANSCODE_SUBTITLES_CEL = [
    cel(
        "!has(self.subtitles) || (has(self.subtitles.mode) && self.subtitles.mode == 'soft') || "
        "!has(self.video) || !has(self.video.codec) || !(self.video.codec in ['copy', 'none'])",
        "transcode.subtitles burnIn needs the video to be encoded (not copy/none)",
    ),
    cel(
        "!has(self.subtitles) || !has(self.subtitles.mode) || self.subtitles.mode != 'soft' || "
        f"!has(self.container) || self.container in {list(SOFT_SUBTITLE_CONTAINERS)!r}",
        "transcode.subtitles soft needs a container that holds subtitles",
    ),
]

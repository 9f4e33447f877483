"""Intro and outro clips joined to a transcode (pure): their restricted
inputs and the filter chains that fit them to the output and concatenate.

Every part is made alike before ``concat``: the clips are scaled to fit the
output frame (aspect kept), padded black to its exact size, set to its frame
rate and pixel format; every part's audio is resampled to one rate and
layout, and a part without audio gets silence as long as its picture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow_worker.ffmpeg.common import input_args, seconds


@dataclass(frozen=True)
class ClipPart:
    """A probed intro or outro clip, opened as ffmpeg input ``input_index``."""

    path: Path
    demuxer: str
    input_index: int
    duration: float
    has_audio: bool


@dataclass(frozen=True)
class JoinedAudio:
    """The audio every part is converted to before joining."""

    rate: int
    layout: str  # "mono" or "stereo"


def clip_input_args(clip: ClipPart, max_pixels: int) -> list[str]:
    """A clip as a restricted input (demuxer forced from its probe)."""
    return input_args(clip.path, clip.demuxer, max_pixels)


def _fit_clip(clip: ClipPart, name: str, frame: tuple[int, int], fps: float) -> str:
    w, h = frame
    return (
        f"[{clip.input_index}:V:0]scale={w}:{h}:force_original_aspect_ratio=decrease,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={fps:g},"
        f"format=yuv420p,settb=AVTB[{name}v]"
    )


def _clip_audio(clip: ClipPart, name: str, audio: JoinedAudio) -> str:
    if clip.has_audio:
        source = f"[{clip.input_index}:a:0]"
        return f"{source}{_audio_format(audio)},asetpts=PTS-STARTPTS[{name}a]"
    # Silence as long as the clip's picture (concat needs an audio segment).
    return (
        f"anullsrc=r={audio.rate}:cl={audio.layout},"
        f"atrim=duration={seconds(clip.duration)}[{name}a]"
    )


def _audio_format(audio: JoinedAudio) -> str:
    return (
        f"aresample={audio.rate},"
        f"aformat=sample_fmts=fltp:sample_rates={audio.rate}:channel_layouts={audio.layout}"
    )


def concat_filters(
    intro: ClipPart | None,
    outro: ClipPart | None,
    frame: tuple[int, int],
    fps: float,
    audio: JoinedAudio | None,
    main_video: str,
    main_audio: str | None,
) -> tuple[list[str], str, str | None]:
    """Chains joining intro, the main part (labels ``main_video`` and
    ``main_audio``, a stream specifier like ``0:a:0``) and outro; returns
    (chains, video label, audio label or None without audio)."""
    chains: list[str] = [f"[{main_video}]settb=AVTB[mainv]"]
    parts: Sequence[tuple[str, ClipPart | None]] = (
        ("intro", intro),
        ("main", None),
        ("outro", outro),
    )
    segments = []
    for name, clip in parts:
        if name == "main":
            if audio is not None:
                assert main_audio is not None, "joined audio needs the main part's audio"
                chains.append(f"[{main_audio}]{_audio_format(audio)},asetpts=PTS-STARTPTS[maina]")
            segments.append("[mainv]" + ("[maina]" if audio is not None else ""))
            continue
        if clip is None:
            continue
        chains.append(_fit_clip(clip, name, frame, fps))
        if audio is not None:
            chains.append(_clip_audio(clip, name, audio))
        segments.append(f"[{name}v]" + (f"[{name}a]" if audio is not None else ""))
    a = 1 if audio is not None else 0
    outputs = "[joinedv]" + ("[joineda]" if a else "")
    chains.append(f"{''.join(segments)}concat=n={len(segments)}:v=1:a={a}{outputs}")
    return chains, "joinedv", ("joineda" if a else None)

"""Intro and outro clips: the chains that fit every part alike and join
them, and where the clips sit among the command's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflow_api.job import Limits
from mediaflow_api.presets import resolve_transcode
from mediaflow_api.tasks import TranscodeTask
from mediaflow_worker import safety
from mediaflow_worker.ffmpeg.concat import ClipPart, JoinedAudio, concat_filters
from mediaflow_worker.ffmpeg.subtitles import SubtitleTrack
from mediaflow_worker.probe import parse_probe
from mediaflow_worker.tasks import TaskContext
from mediaflow_worker.tasks import _watermarks as watermarks_prep
from mediaflow_worker.tasks import transcode as transcode_task
from mediaflow_worker.tasks.intro_outro import JoinPlan, join_fps, joined_audio
from mediaflow_worker.tasks.subtitles import SubtitlePlan

pytestmark = pytest.mark.unit

SRC = Path("/in/clip.mp4")
INTRO = ClipPart(Path("/a/intro.mp4"), "mov", 0, 2.0, has_audio=True)
OUTRO = ClipPart(Path("/a/outro.webm"), "matroska", 0, 1.5, has_audio=False)


def _raw(fps: str = "30/1", audio: bool = True) -> dict[str, object]:
    streams: list[dict[str, object]] = [
        {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720,
         "avg_frame_rate": fps},
    ]  # fmt: skip
    if audio:
        streams.append(
            {"codec_type": "audio", "codec_name": "aac", "sample_rate": "44100", "channels": 1}
        )
    return {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10"},
        "streams": streams,
    }


def _context(tmp_path: Path, raw: dict[str, object]) -> TaskContext:
    return TaskContext(
        input_path=SRC,
        probe=parse_probe(raw, 1000),
        limits=Limits(),
        scratch=tmp_path,
        out_dir=tmp_path,
        deadline=0,
        fetch_asset=lambda bucket, key: tmp_path / key,
        font="/fonts/DejaVuSans.ttf",
        task_name="web",
    )


def test_every_part_is_fitted_alike_and_joined_in_order() -> None:
    intro = ClipPart(INTRO.path, "mov", 1, 2.0, has_audio=True)
    outro = ClipPart(OUTRO.path, "matroska", 2, 1.5, has_audio=False)
    chains, video, audio = concat_filters(
        intro, outro, (640, 360), 25, JoinedAudio(48000, "stereo"), "vout", "0:a:0"
    )
    assert (video, audio) == ("joinedv", "joineda")
    fmt = "aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
    assert chains == [
        "[vout]settb=AVTB[mainv]",
        "[1:V:0]scale=640:360:force_original_aspect_ratio=decrease,"
        "pad=640:360:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps=25,format=yuv420p,"
        "settb=AVTB[introv]",
        f"[1:a:0]{fmt},asetpts=PTS-STARTPTS[introa]",
        f"[0:a:0]{fmt},asetpts=PTS-STARTPTS[maina]",
        "[2:V:0]scale=640:360:force_original_aspect_ratio=decrease,"
        "pad=640:360:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps=25,format=yuv420p,"
        "settb=AVTB[outrov]",
        # no audio in the outro: silence as long as its picture
        "anullsrc=r=48000:cl=stereo,atrim=duration=1.500[outroa]",
        "[introv][introa][mainv][maina][outrov][outroa]concat=n=3:v=1:a=1[joinedv][joineda]",
    ]


def test_without_audio_only_pictures_are_joined() -> None:
    chains, _, audio = concat_filters(None, INTRO, (320, 240), 30, None, "vout", None)
    assert audio is None
    assert chains[-1] == "[mainv][outrov]concat=n=2:v=1:a=0[joinedv]"
    assert not any("anullsrc" in c or ":a:0" in c for c in chains)


def test_the_join_takes_one_constant_rate_and_the_outputs_audio_format(tmp_path: Path) -> None:
    plain = resolve_transcode(
        TranscodeTask.model_validate({"intro": {"bucket": "abc", "key": "i"}})
    )
    ctx = _context(tmp_path, _raw())
    assert join_fps(plain, ctx) == 30
    assert join_fps(plain, _context(tmp_path, _raw(fps="120/1"))) == 60
    assert join_fps(plain, _context(tmp_path, _raw(fps="0/0"))) == 25
    fixed = TranscodeTask.model_validate({"video": {"fps": 12}, "audio": {"sampleRate": 22050}})
    assert join_fps(fixed, ctx) == 12
    assert joined_audio(plain, ctx) == JoinedAudio(44100, "mono")
    assert joined_audio(fixed, ctx) == JoinedAudio(22050, "mono")


def test_clips_come_after_the_watermark_images_and_before_soft_subtitles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watermarks_prep, "image_size", lambda _path: (64, 32))
    spec = resolve_transcode(
        TranscodeTask.model_validate(
            {
                "container": "mkv",
                "trim": {"start": 1, "duration": 4},
                "watermarks": [{"image": {"bucket": "abc", "key": "logo.png"}}],
                "subtitles": {"mode": "soft"},
                "intro": {"bucket": "abc", "key": "intro.mp4"},
                "outro": {"bucket": "abc", "key": "outro.webm"},
            }
        )
    )
    track = SubtitleTrack(tmp_path / "web-subtitles.srt", "srt", "srt", 1, 0)
    args = transcode_task.prepare_command(
        spec,
        _context(tmp_path, _raw()),
        tmp_path / "web.mkv",
        None,
        SubtitlePlan(track, {}),
        JoinPlan(INTRO, OUTRO),
    )
    assert safety.unrestricted_inputs(args) == []
    inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
    assert inputs == [
        f"file:{SRC}",
        f"file:{tmp_path}/logo.png",
        f"file:{INTRO.path}",
        f"file:{OUTRO.path}",
        f"file:{track.path}",
    ]
    # The trim cuts the main input, not the joined output.
    first = args.index(f"file:{SRC}")
    assert args[first - 5 : first - 1] == ["-ss", "1.000", "-t", "4.000"]
    assert "-t" not in args[first:]
    graph = args[args.index("-filter_complex") + 1]
    assert "[2:V:0]scale=1280:720" in graph
    assert "[3:V:0]scale=1280:720" in graph
    assert "fps=30" in graph
    assert args[args.index("[joinedv]") - 1] == "-map"
    assert args[args.index("[joineda]") - 1] == "-map"
    assert "0:a:0" not in args[args.index("[joinedv]") :]
    # The cues of the main part start after the intro.
    sub = args.index(f"file:{track.path}")
    assert args[args.index("-itsoffset") + 1] == "2.000"
    assert args.index("-itsoffset") < sub
    assert args[args.index("4:s:0") - 1 : args.index("4:s:0") + 1] == ["-map", "4:s:0"]

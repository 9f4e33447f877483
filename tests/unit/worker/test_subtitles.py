"""Subtitles of a transcode: the naming rule, the sidecar checks, the burn-in
style (sizes computed from the frame) and the soft stream's input and map."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflow_api.job import Limits
from mediaflow_api.presets import resolve_transcode
from mediaflow_api.tasks import SubtitleStyle, TranscodeTask, sidecar_names
from mediaflow_worker import safety
from mediaflow_worker.errors import AssetError, AssetNotFoundError
from mediaflow_worker.ffmpeg.subtitles import (
    SubtitleTrack,
    burn_in_filter,
    count_cues,
    force_style,
    normalise_args,
    normalised_format,
    play_res_y,
    sidecar_format,
    soft_output_args,
)
from mediaflow_worker.probe import parse_probe
from mediaflow_worker.tasks import TaskContext
from mediaflow_worker.tasks import transcode as transcode_task
from mediaflow_worker.tasks._common import asset_error_as
from mediaflow_worker.tasks.subtitles import (
    MAX_SUBTITLE_BYTES,
    SubtitlePlan,
    check_sidecar_bytes,
    find_sidecar,
    prepare_subtitles,
)

pytestmark = pytest.mark.unit

SRC = Path("/in/clip.mp4")
RAW = {
    "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10"},
    "streams": [
        {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720},
        {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2},
    ],
}


def test_naming_rule_tries_the_language_first_then_srt_vtt_ass() -> None:
    assert sidecar_names("clip.mp4", "eng") == [
        "clip.eng.srt",
        "clip.eng.vtt",
        "clip.eng.ass",
        "clip.srt",
        "clip.vtt",
        "clip.ass",
    ]
    assert sidecar_names("a.b.mov", None) == ["a.b.srt", "a.b.vtt", "a.b.ass"]
    assert sidecar_names("noext", None)[0] == "noext.srt"
    assert sidecar_names(".hidden", None)[0] == ".hidden.srt"


def test_sidecar_format_comes_from_the_extension() -> None:
    assert sidecar_format("subs/Film.EN.VTT") == "vtt"
    with pytest.raises(ValueError, match="not a subtitle file"):
        sidecar_format("subs/film.txt")
    assert normalised_format("srt", burn_in=True) == "ass"
    assert normalised_format("vtt", burn_in=False) == "srt"
    assert normalised_format("ass", burn_in=False) == "ass"


def test_cues_and_script_height_are_read_from_the_normalised_file() -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2\n00:00:03,000 --> 00:00:04,000\nYo\n"
    assert count_cues(srt, "srt") == 2
    ass = "[Script Info]\nPlayResY: 1080\n\n[Events]\nDialogue: 0,0:00:01.00,x\nComment: y\n"
    assert count_cues(ass, "ass") == 1
    assert play_res_y(ass) == 1080
    assert play_res_y("[Script Info]\n") == 288
    assert play_res_y("PlayResY: 0\n") == 288


def test_default_style_is_sized_from_the_output_frame_in_script_units() -> None:
    # 5% of 720 px = 36 px = 14.4 units of a 288-unit script.
    style = force_style(None, 720, 288, defaults=True)
    assert style.split(",") == [
        "FontSize=14.40",
        "PrimaryColour=&H00FFFFFF",
        "OutlineColour=&H00000000",
        "BorderStyle=1",
        "Outline=0.96",
        "Alignment=2",
        "MarginV=14",
    ]


def test_an_ass_sidecar_keeps_its_own_style_except_what_is_set() -> None:
    assert force_style(None, 720, 288, defaults=False) == ""
    style = SubtitleStyle.model_validate(
        {"fontColor": "#ff8000", "position": "top", "fontSize": "40px"}
    )
    assert force_style(style, 720, 1080, defaults=False) == (
        "FontSize=60.00,PrimaryColour=&H000080FF,Alignment=8"
    )


def test_burn_in_filter_quotes_paths_and_sets_the_frame_size() -> None:
    track = SubtitleTrack(Path("/tmp/s/web-subtitles.ass"), "ass", "srt", 3, 288)
    chain = burn_in_filter(track, None, (640, 360), "/usr/share/fonts/x")
    assert chain.startswith("subtitles=filename='/tmp/s/web-subtitles.ass':original_size=640x360")
    assert ":fontsdir='/usr/share/fonts/x':force_style='FontSize=" in chain


def test_soft_stream_codec_follows_the_container_and_is_tagged() -> None:
    srt = SubtitleTrack(Path("/s.srt"), "srt", "vtt", 1, 0)
    ass = SubtitleTrack(Path("/s.ass"), "ass", "ass", 1, 288)
    assert soft_output_args(srt, 3, "mp4", "eng") == [
        "-map",
        "3:s:0",
        "-c:s",
        "mov_text",
        "-metadata:s:s:0",
        "language=eng",
    ]
    assert soft_output_args(ass, 1, "mkv", None)[3] == "ass"
    assert soft_output_args(srt, 1, "mkv", None)[-1] == "language=und"
    assert soft_output_args(ass, 1, "webm", None)[3] == "webvtt"


def test_normalising_opens_the_sidecar_under_the_rules_and_seeks_to_the_trim() -> None:
    args = normalise_args(Path("/a/s.vtt"), "vtt", Path("/a/n.srt"), "srt", start=2.5)
    assert safety.unrestricted_inputs(args) == []
    assert args[args.index("-i") - 3 : args.index("-i")] == ["webvtt", "-ss", "2.500"]
    assert "-ss" not in normalise_args(Path("/a/s.srt"), "srt", Path("/a/n.srt"), "srt")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "is empty"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nhi\x00\n", "NUL"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\xff\xfehi\n", "not UTF-8"),
        (b"x" * (MAX_SUBTITLE_BYTES + 1), "the limit is"),
    ],
)
def test_a_sidecar_that_is_not_small_utf8_text_is_refused(
    tmp_path: Path, data: bytes, why: str
) -> None:
    path = tmp_path / "s.srt"
    path.write_bytes(data)
    with pytest.raises(AssetError, match=why):
        check_sidecar_bytes(path, "subtitles s.srt")


def _context(tmp_path: Path, siblings: dict[str, Path]) -> TaskContext:
    def missing(bucket: str, key: str) -> Path:
        raise AssetNotFoundError(f"watermark image s3://{bucket}/{key} does not exist")

    return TaskContext(
        input_path=SRC,
        probe=parse_probe(RAW, 1000),
        limits=Limits(),
        scratch=tmp_path,
        out_dir=tmp_path,
        deadline=0,
        fetch_asset=missing,
        font="/fonts/DejaVuSans.ttf",
        task_name="web",
        fetch_sibling=siblings.get,
        input_name="clip.mp4",
    )


def test_naming_rule_takes_the_first_sibling_found(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {"clip.vtt": tmp_path / "a", "clip.eng.ass": tmp_path / "b"})
    spec = TranscodeTask.model_validate({"subtitles": {"language": "eng"}}).subtitles
    assert spec is not None
    found = find_sidecar(spec, ctx)
    assert found is not None
    assert found[:2] == (tmp_path / "b", "clip.eng.ass")


def test_no_sidecar_by_the_naming_rule_means_no_subtitles_and_says_so(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {})
    spec = TranscodeTask.model_validate({"subtitles": {"mode": "soft"}}).subtitles
    plan = prepare_subtitles(spec, ctx)
    assert plan is not None
    assert plan.track is None
    assert plan.info["found"] is False
    assert plan.info["tried"] == ["clip.srt", "clip.vtt", "clip.ass"]


def test_a_missing_named_sidecar_fails_with_exit_2(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {"clip.srt": tmp_path / "ignored"})
    spec = TranscodeTask.model_validate(
        {"subtitles": {"file": {"bucket": "subs", "key": "film.srt"}}}
    ).subtitles
    with pytest.raises(
        AssetNotFoundError, match=r"^subtitles s3://subs/film.srt does not exist"
    ) as e:
        prepare_subtitles(spec, ctx)
    assert e.value.exit_code == 2


def test_asset_errors_name_the_kind_of_asset() -> None:
    words = AssetError("watermark image s3://a/b.srt is larger than 20 MiB", reason="X")
    renamed = asset_error_as(words, "subtitles", "task 't': ")
    assert (renamed.message, renamed.reason, renamed.exit_code) == (
        "task 't': subtitles s3://a/b.srt is larger than 20 MiB",
        "X",
        2,
    )
    plain = asset_error_as(AssetNotFoundError("no file a/b.mp4"), "intro")
    assert isinstance(plain, AssetNotFoundError)
    assert plain.message == "intro: no file a/b.mp4"


def _command(tmp_path: Path, subtitles: dict[str, object], track: SubtitleTrack) -> list[str]:
    ctx = _context(tmp_path, {})
    spec = resolve_transcode(TranscodeTask.model_validate({"subtitles": subtitles}))
    plan = SubtitlePlan(track, {})
    return transcode_task.prepare_command(spec, ctx, tmp_path / "web.mp4", None, plan)


def test_soft_subtitles_are_the_last_input_and_mapped_from_it(tmp_path: Path) -> None:
    track = SubtitleTrack(tmp_path / "web-subtitles.srt", "srt", "srt", 2, 0)
    args = _command(tmp_path, {"mode": "soft", "language": "fra"}, track)
    assert safety.unrestricted_inputs(args) == []
    inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
    assert inputs == [f"file:{SRC}", f"file:{track.path}"]
    # every input option precedes the first output option
    assert args.index(f"file:{track.path}") < args.index("-filter_complex")
    assert args[args.index("1:s:0") - 1 : args.index("1:s:0") + 3] == [
        "-map",
        "1:s:0",
        "-c:s",
        "mov_text",
    ]
    assert "language=fra" in args


def test_burned_in_subtitles_are_the_last_step_before_the_pixel_format(tmp_path: Path) -> None:
    track = SubtitleTrack(tmp_path / "web-subtitles.ass", "ass", "srt", 2, 288)
    args = _command(tmp_path, {"style": {"fontSize": "36px"}}, track)
    graph = args[args.index("-filter_complex") + 1]
    assert f"subtitles=filename='{track.path}':original_size=1280x720" in graph
    assert ":fontsdir='/fonts'" in graph
    assert "FontSize=14.40" in graph
    assert graph.endswith("[subs];[subs]format=yuv420p[vout]")
    assert "-c:s" not in args

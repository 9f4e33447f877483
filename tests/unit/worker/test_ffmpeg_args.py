"""Pure argument builders: sizes, times, sprite geometry, ladders, codecs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflow_api.tasks import AudioSettings, Rendition, VideoSettings, Watermark
from mediaflow_worker.ffmpeg import (
    adaptive_streaming,
    analysis,
    animated_image,
    common,
    snapshot,
    sprite,
    transcode,
    watermark,
)
from mediaflow_worker.tasks.animated_image import webp_animation_frames

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("src", "req", "kwargs", "expected"),
    [
        ((1920, 1080), (None, 720), {}, (1280, 720)),
        ((1920, 1080), (640, None), {}, (640, 360)),
        ((1920, 1080), (None, None), {}, (1920, 1080)),
        ((161, 121), (None, None), {}, (160, 120)),  # odd -> even
        ((320, 240), (None, 720), {}, (320, 240)),  # never upscale
        ((320, 240), (None, 720), {"upscale": True}, (960, 720)),
        ((2160, 3840), (None, 720), {}, (720, 1280)),  # portrait: short side 720
        ((2160, 3840), (None, 720), {"adaptive_orientation": False}, (404, 720)),
        ((1920, 1080), (640, 640), {}, (640, 360)),  # fit in a box
        ((854, 480), (None, 360), {}, (640, 360)),
    ],
)
def test_fit_size_keeps_aspect_even_and_never_upscales_by_default(
    src: tuple[int, int],
    req: tuple[int | None, int | None],
    kwargs: dict[str, bool],
    expected: tuple[int, int],
) -> None:
    assert common.fit_size(*src, *req, **kwargs) == expected


def test_snapshot_times_for_percentages_are_clamped_to_the_last_frame() -> None:
    times = snapshot.snapshot_times(
        10.0, 25.0, times=[(0, False), (50, True), (100, True), (30, False)]
    )
    assert times == [0.0, 5.0, 9.92, 9.92]


def test_snapshot_times_every_n_seconds_are_capped() -> None:
    assert snapshot.snapshot_times(10.0, 25.0, interval=3) == [0, 3, 6, 9]
    assert len(snapshot.snapshot_times(1000.0, 25.0, interval=1, max_count=7)) == 7


def test_snapshot_count_spreads_inside_the_duration() -> None:
    assert snapshot.snapshot_times(8.0, 25.0, count=3) == [2.0, 4.0, 6.0]


def test_sprite_plan_defaults_to_one_sheet_covering_the_input() -> None:
    plan = sprite.plan_sprite(
        20.0, (1920, 1080), interval=None, columns=5, rows=4, width=160, max_sheets=3
    )
    assert (plan.thumbs, plan.sheets, plan.thumb_w, plan.thumb_h) == (20, 1, 160, 90)
    assert plan.interval == pytest.approx(1.0)


def test_sprite_plan_spills_onto_more_sheets_up_to_the_cap() -> None:
    plan = sprite.plan_sprite(
        100.0, (640, 480), interval=1, columns=4, rows=4, width=100, max_sheets=3
    )
    assert (plan.thumbs, plan.sheets, plan.thumb_h) == (48, 3, 74)


def test_a_sprite_of_a_clip_shorter_than_its_interval_takes_the_first_frame() -> None:
    plan = sprite.plan_sprite(
        0.3, (1920, 1080), interval=1, columns=10, rows=10, width=160, max_sheets=20
    )
    assert (plan.thumbs, plan.sheets, plan.first_frame_only) == (1, 1, True)
    args = sprite.sprite_args(
        Path("in.mov"), "mov", 10**8, plan, "jpeg", Path("s-%03d.jpg"), Path("n")
    )
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:V:0]select=eq(n\\,0),scale=160:90")
    longer = sprite.plan_sprite(
        4.0, (1920, 1080), interval=1, columns=10, rows=10, width=160, max_sheets=20
    )
    assert not longer.first_frame_only
    args = sprite.sprite_args(
        Path("in.mov"), "mov", 10**8, longer, "jpeg", Path("s-%03d.jpg"), Path("n")
    )
    graph = args[args.index("-filter_complex") + 1]
    # The grid counts from 0, where ffmpeg starts the input's clock.
    assert graph.startswith("[0:V:0]fps=1/1.000000:start_time=0,")
    # One checksum line per thumbnail goes to the count file, capped at the plan.
    count = args[args.index("[count]") - 1 :]
    assert count == [
        "-map", "[count]", "-frames:v", "4", "-fps_mode", "passthrough",
        "-c:v", "rawvideo", "-f", "framecrc", "n",
    ]  # fmt: skip


def test_thumbnails_are_counted_from_the_framecrc_listing() -> None:
    listing = (
        "#software: Lavf59\n#tb 0: 1/1\n#media_type 0: video\n"
        "0, 0, 0, 1, 43200, 0x1\n0, 1, 1, 1, 43200, 0x2\n"
    )
    assert sprite.count_thumbnails(listing) == 2
    assert sprite.count_thumbnails("#software: Lavf59\n") == 0


def test_sprite_vtt_maps_each_cue_to_its_cell() -> None:
    plan = sprite.SpritePlan(
        interval=2, thumbs=5, columns=2, rows=2, sheets=2, thumb_w=100, thumb_h=50
    )
    vtt = sprite.sprite_vtt(plan, 9.0, ["a.jpg", "b.jpg"])
    assert vtt.startswith("WEBVTT\n")
    assert "00:00:02.000 --> 00:00:04.000\na.jpg#xywh=100,0,100,50" in vtt
    assert "00:00:06.000 --> 00:00:08.000\na.jpg#xywh=100,50,100,50" in vtt
    assert "00:00:08.000 --> 00:00:09.000\nb.jpg#xywh=0,0,100,50" in vtt
    assert vtt.count("-->") == 5


def test_ladder_never_upscales_and_keeps_one_rung_for_tiny_sources() -> None:
    rungs = [Rendition(height=h, videoBitrate="1M") for h in (1080, 720, 480, 360)]
    planned = adaptive_streaming.plan_ladder(rungs, (1280, 720))
    assert [(p.width, p.height) for p in planned] == [(1280, 720), (854, 480), (640, 360)]
    tiny = adaptive_streaming.plan_ladder(rungs, (161, 121))
    assert [(p.width, p.height, p.rendition.height) for p in tiny] == [(160, 120, 360)]


def test_ladder_of_a_portrait_source_uses_the_short_side() -> None:
    rungs = [Rendition(height=h, videoBitrate="1M") for h in (720, 360)]
    planned = adaptive_streaming.plan_ladder(rungs, (720, 1280))
    assert [(p.width, p.height) for p in planned] == [(720, 1280), (360, 640)]


def test_h265_in_mp4_is_tagged_hvc1_and_vfr_is_kept() -> None:
    args = transcode.video_codec_args(
        VideoSettings(codec="h265", crf=28, preset="fast"), "mp4", 30.0
    )
    assert args[:2] == ["-c:v", "libx265"]
    assert args[args.index("-tag:v") : args.index("-tag:v") + 2] == ["-tag:v", "hvc1"]
    assert "-crf" in args
    assert args[args.index("-fps_mode") + 1] == "vfr"


def test_vp9_constant_quality_sets_zero_bitrate() -> None:
    args = transcode.video_codec_args(
        VideoSettings(codec="vp9", crf=32, preset="medium"), "webm", None
    )
    assert args[args.index("-b:v") + 1] == "0"
    assert args[args.index("-cpu-used") + 1] == "3"


def test_maxrate_without_bufsize_gets_twice_the_maxrate() -> None:
    args = transcode.video_codec_args(
        VideoSettings(codec="h264", crf=23, maxrate="3M"), "mp4", None
    )
    assert args[args.index("-maxrate") + 1] == "3000000"
    assert args[args.index("-bufsize") + 1] == "6000000"


def test_opus_forces_a_supported_rate_and_stereo() -> None:
    args = transcode.audio_codec_args(AudioSettings(codec="opus", bitrate="96k"), 44100, 6)
    assert args == ["-c:a", "libopus", "-b:a", "96000", "-ar", "48000", "-ac", "2"]


def test_input_args_force_the_demuxer_and_allow_only_files() -> None:
    args = common.input_args(Path("/s/in"), "mov", 100, start=1.5)
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert args[args.index("-f") + 1] == "mov"
    assert args[args.index("-ss") + 1] == "1.500"
    assert args[-2:] == ["-i", "file:/s/in"]


def test_watermarks_are_placed_with_numbers_computed_from_the_frame() -> None:
    image = Watermark.model_validate(
        {
            "image": {"bucket": "b12", "key": "k"},
            "position": "bottom-right",
            "width": "10%",
            "offsetX": "5%",
            "offsetY": "8",
            "opacity": 0.5,
            "start": 1,
            "end": 2,
        }
    )
    text = Watermark.model_validate({"text": "hi", "position": "top-left", "fontSize": "24"})
    marks = [
        watermark.WatermarkInput(image, 1, (200, 100), None),
        watermark.WatermarkInput(text, None, None, Path("/s/t'x.txt")),
    ]
    graph = transcode.transcode_video_graph((1280, 720), None, marks, "/f.ttf")
    assert "[1:v]scale=128:64,format=rgba,colorchannelmixer=aa=0.500[wm0]" in graph
    assert "overlay=x=1280-128-64:y=720-64-8" in graph
    assert "enable='between(t,1.000,2.000)'" in graph
    assert "textfile='/s/t'\\''x.txt'" in graph
    assert ":x=16:y=16" in graph
    assert "fontsize=24" in graph
    assert graph.endswith("format=yuv420p[vout]")


def test_analysis_without_applicable_detectors_runs_nothing() -> None:
    args = analysis.analysis_args(
        Path("/i"),
        "mp3",
        1,
        has_video=False,
        has_audio=True,
        scenes=0.4,
        black=0.5,
        silence=None,
        loudness=False,
    )
    assert args is None


def test_hls_ladder_maps_audio_per_rendition_and_aligns_keyframes() -> None:
    planned = adaptive_streaming.plan_ladder(
        [Rendition(height=h, videoBitrate="1M") for h in (720, 360)], (1280, 720)
    )
    args = adaptive_streaming.ladder_args(
        Path("/i"),
        "mov",
        1,
        planned,
        fmt="hls",
        codec="h264",
        preset="veryfast",
        segment_seconds=4,
        has_audio=True,
        out_dir=Path("/o"),
    )
    assert args[args.index("-var_stream_map") + 1] == "v:0,a:0 v:1,a:1"
    assert args[args.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*4)"
    assert "split=2[s0][s1]" in args[args.index("-filter_complex") + 1]
    assert args.count("0:a:0") == 2


def test_single_pass_snapshots_branch_once_per_instant() -> None:
    outs = [Path("/o/1.jpg"), Path("/o/2.jpg")]
    args = snapshot.snapshots_single_pass_args(
        Path("/i"), "mov", 1, [0.5, 2.0], (96, 54), "jpeg", outs
    )
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:V:0]split=2[s0][s1];")
    assert "[s1]trim=start=2.000,scale=96:54,setsar=1[o1]" in graph
    assert args.count("-frames:v") == 2
    assert args[-1] == "/o/2.jpg"


def test_window_snapshot_keeps_the_last_frame_before_the_instant() -> None:
    args = snapshot.snapshot_window_args(
        Path("/i"), "mov", 1, 8.4, 2.0, (96, 54), "png", Path("/o.png")
    )
    assert args[args.index("-ss") + 1] == "6.400"
    assert args[args.index("-t") + 1] == "2.000"
    assert "-frames:v" not in args
    assert args[args.index("-update") + 1] == "1"


def test_audio_only_hls_is_one_aac_rendition() -> None:
    args = adaptive_streaming.audio_stream_args(
        Path("/i"), "mp3", 1, fmt="hls", bitrate="128k", segment_seconds=6, out_dir=Path("/o")
    )
    assert args[args.index("-var_stream_map") + 1] == "a:0"
    assert args[args.index("-b:a") + 1] == "128000"
    assert "-filter_complex" not in args


def test_a_held_last_frame_is_planned_to_end_where_the_source_ends() -> None:
    # The screen recording: ~7.22 fps on average, last frame 7.1555 -> 8.7255.
    tail = transcode.plan_tail_frame(
        last_pts=7.155503,
        end=8.725503,
        start_time=0.0,
        trim_start=0.0,
        frame_rate=7.22,
        out_rate=None,
        time_base="1/57600",
        input_index=2,
    )
    assert tail is not None
    assert tail.input_index == 2
    assert tail.seek == pytest.approx(7.1545)
    # The repeated frame lasts one frame interval as the muxer sees it.
    assert tail.at + 1 / tail.frame_rate == pytest.approx(8.725503)
    # Start time and trim shift the output timeline; a CFR output uses its rate.
    shifted = transcode.plan_tail_frame(
        last_pts=8.555503,
        end=10.125503,
        start_time=1.4,
        trim_start=2.0,
        frame_rate=7.22,
        out_rate=25,
        time_base=None,
        input_index=1,
    )
    assert shifted is not None
    assert shifted.seek == pytest.approx(7.1545)
    assert shifted.at == pytest.approx(10.125503 - 1.4 - 2.0 - 0.04)
    assert shifted.time_base == "1/90000"


@pytest.mark.parametrize(
    ("last_pts", "end", "trim_start"),
    [
        (9.96, 10.0, 0.0),  # an ordinary last frame of a 25 fps clip
        (9.9, 10.0, 0.0),  # 2.5 frames: still ordinary
        (7.0, 9.0, 8.0),  # the trim starts after the last frame began
    ],
)
def test_no_tail_frame_for_ordinary_endings(last_pts: float, end: float, trim_start: float) -> None:
    assert (
        transcode.plan_tail_frame(
            last_pts=last_pts,
            end=end,
            start_time=0.0,
            trim_start=trim_start,
            frame_rate=25.0,
            out_rate=None,
            time_base="1/12800",
            input_index=1,
        )
        is None
    )


def test_tail_frame_joins_the_graph_before_scaling_and_sets_the_encoder_rate() -> None:
    tail = transcode.TailFrame(
        input_index=1, seek=7.1545, at=8.587, frame_rate=7.22, time_base="1/57600"
    )
    graph = transcode.transcode_video_graph((640, 292), None, [], tail=tail)
    assert graph.startswith(
        "[1:V:0]trim=end_frame=1,setpts=8.587000/TB[tail];"
        "[0:V:0][tail]interleave,settb=1/57600[src];[src]scale=640:292"
    )
    args = transcode.video_codec_args(VideoSettings(codec="h264"), "mp4", 7.22, tail)
    assert args[-6:] == ["-fps_mode", "vfr", "-r", "7.220000", "-enc_time_base:v", "1/57600"]


def test_webp_animation_frames_are_the_anmf_chunks() -> None:

    def chunk(fourcc: bytes, body: bytes) -> bytes:
        return fourcc + len(body).to_bytes(4, "little") + body + b"\0" * (len(body) & 1)

    body = b"WEBP" + chunk(b"VP8X", b"\0" * 10) + chunk(b"ANIM", b"\0" * 6)
    body += chunk(b"ANMF", b"\1" * 17) + chunk(b"ANMF", b"\2" * 20) + chunk(b"ANMF", b"\3")
    data = b"RIFF" + len(body).to_bytes(4, "little") + body
    assert webp_animation_frames(data) == 3
    assert webp_animation_frames(b"RIFF\0\0\0\0WEBP") == 0
    assert webp_animation_frames(b"GIF89a" + b"\0" * 20) == 0


def test_an_animation_can_seek_by_decoding_from_the_start() -> None:
    args = animated_image.animated_args(
        Path("in.ts"), "mpegts", 10**8, start=1.5, duration=2, fps=10, size=(64, 36),
        fmt="gif", loop=0, out=Path("o.gif"), seek_by_decoding=True,
    )  # fmt: skip
    assert args.index("-ss") > args.index("-i")  # an output option: decode, then drop
    assert args[args.index("-ss") : args.index("-ss") + 4] == ["-ss", "1.500", "-t", "2.000"]
    seeking = animated_image.animated_args(
        Path("in.ts"), "mpegts", 10**8, start=1.5, duration=2, fps=10, size=(64, 36),
        fmt="gif", loop=0, out=Path("o.gif"),
    )  # fmt: skip
    assert seeking.index("-ss") < seeking.index("-i")

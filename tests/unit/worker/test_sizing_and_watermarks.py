"""Output sizing (fillType) and watermarks on every image task: the models'
rules, the sizing planner and its filter chains, end-relative watermark
times, fonts, and the commands that carry them (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mediaflow_api.tasks import (
    AnimatedImageTask,
    SnapshotTask,
    SpriteTask,
    TranscodeTask,
    VideoSettings,
    Watermark,
)
from mediaflow_api.tasks.watermark import FONT_NAMES
from mediaflow_worker.ffmpeg import animated_image, snapshot, sprite, transcode, watermark
from mediaflow_worker.ffmpeg.sizing import SizePlan, plan_size, size_chains
from mediaflow_worker.fonts import FONT_FILES, font_file

pytestmark = pytest.mark.unit


# --- the planner -------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "box", "fill", "kwargs", "frame", "content"),
    [
        # fit: as before (fit_size), never larger than the box
        ((1920, 1080), (640, 640), "fit", {}, (640, 360), (640, 360)),
        ((1920, 1080), (640, 640), None, {}, (640, 360), (640, 360)),
        # exact sizes: the frame is the box whatever the source's shape
        ((1920, 1080), (640, 640), "stretch", {}, (640, 640), (640, 640)),
        ((1920, 1080), (640, 640), "pad", {}, (640, 640), (640, 360)),
        ((1920, 1080), (640, 640), "blur", {}, (640, 640), (640, 360)),
        ((1920, 1080), (640, 640), "crop", {}, (640, 640), (1138, 640)),
        # a portrait source in a landscape box: bars left and right
        ((1080, 1920), (1280, 720), "pad", {}, (1280, 720), (404, 720)),
        # ... or the box turned: long side 1280 whatever the orientation
        (
            (1080, 1920),
            (1280, 720),
            "pad",
            {"adaptive_orientation": True},
            (720, 1280),
            (720, 1280),
        ),
        # pad never enlarges the picture without upscale: the bars grow
        ((320, 240), (640, 640), "pad", {}, (640, 640), (320, 240)),
        ((320, 240), (640, 640), "pad", {"upscale": True}, (640, 640), (640, 480)),
        # crop and stretch scale as the box needs
        ((320, 240), (640, 640), "crop", {}, (640, 640), (854, 640)),
        # odd boxes are rounded down to even sizes
        ((1920, 1080), (641, 361), "stretch", {}, (640, 360), (640, 360)),
        # only one side: fit whatever the fill type (the models refuse it anyway)
        ((1920, 1080), (640, None), "crop", {}, (640, 360), (640, 360)),
    ],
)
def test_plan_size(
    src: tuple[int, int],
    box: tuple[int, int | None],
    fill: str | None,
    kwargs: dict[str, Any],
    frame: tuple[int, int],
    content: tuple[int, int],
) -> None:
    plan = plan_size(*src, *box, fill=fill, **kwargs)
    assert plan.frame == frame
    assert plan.content == content


def test_pad_centres_the_picture_in_bars_of_the_colour() -> None:
    plan = plan_size(1080, 1920, 1280, 720, fill="pad", pad_color="#ff8000")
    (chain,) = size_chains(plan, "0:V:0", "out")
    assert chain == "[0:V:0]scale=404:720,setsar=1,pad=1280:720:438:0:color=0xff8000[out]"


def test_crop_keeps_the_middle() -> None:
    (chain,) = size_chains(plan_size(1920, 1080, 640, 640, fill="crop"), "in", "out")
    assert chain == "[in]scale=1138:640,setsar=1,crop=640:640:249:0[out]"


def test_blur_lays_the_picture_over_a_blurred_copy_covering_the_frame() -> None:
    chains = size_chains(plan_size(1080, 1920, 1280, 720, fill="blur"), "in", "out")
    assert chains[0] == "[in]split[out_bgin][out_fgin]"
    background = chains[1]
    assert background.startswith("[out_bgin]scale=")
    assert "gblur=sigma=" in background
    assert background.endswith("scale=1280:720,setsar=1[out_bg]")
    assert chains[2] == "[out_fgin]scale=404:720,setsar=1[out_fg]"
    assert chains[3] == "[out_bg][out_fg]overlay=438:0[out]"


def test_transcode_graph_takes_the_fill() -> None:
    plan = plan_size(1920, 1080, 640, 640, fill="pad", pad_color="white")
    graph = transcode.transcode_video_graph(plan.frame, 25, [], sizing=plan)
    assert "pad=640:640:0:140:color=white[sized];[sized]fps=25[base]" in graph
    # without a fill: the graph of before
    plain = transcode.transcode_video_graph((640, 360), None, [])
    assert plain.startswith("[0:V:0]scale=640:360,setsar=1[base]")


# --- the models ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (SnapshotTask, {"count": 1, "fillType": "pad", "width": 320}),
        (SnapshotTask, {"count": 1, "padColor": "white", "width": 320, "height": 240}),
        (SnapshotTask, {"count": 1, "fillType": "pad", "padColor": "red", "width": 9, "height": 9}),
        (SpriteTask, {"fillType": "crop"}),
        (AnimatedImageTask, {"fillType": "blur"}),
        (VideoSettings, {"fillType": "stretch", "height": 720}),
        (VideoSettings, {"codec": "copy", "fillType": "fit"}),
    ],
)
def test_fill_rules_refuse(model: type[Any], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (SnapshotTask, {"count": 1, "fillType": "pad", "padColor": "#A0b0C0"}),
        (SpriteTask, {"fillType": "pad", "padColor": "white", "height": 90}),
        (AnimatedImageTask, {"fillType": "crop", "height": 320, "adaptiveOrientation": True}),
        (VideoSettings, {"fillType": "blur", "width": 1280, "height": 720}),
        (VideoSettings, {"fillType": "fit", "height": 720}),
    ],
)
def test_fill_rules_accept(model: type[Any], body: dict[str, Any]) -> None:
    # snapshot: width/height are checked like the CEL rule, where both must be set
    if model is SnapshotTask:
        body = {**body, "width": 320, "height": 240}
    model.model_validate(body)


MARK = {"text": "hi"}


@pytest.mark.parametrize(
    "body",
    [
        {**MARK, "start": 1, "startFromEnd": 2},
        {**MARK, "end": 1, "endFromEnd": 2},
        {**MARK, "startFromEnd": 2, "endFromEnd": 2},
        {"image": {"bucket": "abc", "key": "k.png"}, "font": "serif"},
        {**MARK, "font": "comic"},
    ],
)
def test_watermark_rules_refuse(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Watermark.model_validate(body)


def test_up_to_ten_watermarks_on_every_image_task() -> None:
    ten = [MARK] * 10
    TranscodeTask.model_validate({"watermarks": ten})
    SnapshotTask.model_validate({"count": 1, "watermarks": ten})
    SpriteTask.model_validate({"watermarks": ten})
    AnimatedImageTask.model_validate({"watermarks": ten})
    cases: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (TranscodeTask, {}),
        (SnapshotTask, {"count": 1}),
        (SpriteTask, {}),
        (AnimatedImageTask, {}),
    ]
    for model, base in cases:
        with pytest.raises(ValidationError):
            model.model_validate({**base, "watermarks": [MARK] * 11})


# --- end-relative times ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "duration", "window"),
    [
        ({}, 10.0, None),
        ({"start": 2, "end": 4}, 10.0, (2.0, 4.0)),
        ({"startFromEnd": 3}, 10.0, (7.0, 10**7)),
        ({"startFromEnd": 3, "endFromEnd": 1}, 10.0, (7.0, 9.0)),
        ({"start": 1, "endFromEnd": 2}, 10.0, (1.0, 8.0)),
        # longer than the output: from its start
        ({"startFromEnd": 30}, 10.0, (0.0, 10**7)),
        # ends before it starts on this output: never shown
        ({"start": 5, "endFromEnd": 8}, 10.0, (0.0, 0.0)),
    ],
)
def test_shown_between(
    body: dict[str, Any], duration: float, window: tuple[float, float] | None
) -> None:
    assert watermark.shown_between(Watermark.model_validate({**MARK, **body}), duration) == window


def test_resolve_times_makes_plain_start_and_end() -> None:
    mark = Watermark.model_validate({**MARK, "startFromEnd": 3, "endFromEnd": 1})
    resolved = watermark.resolve_times(mark, 10.0)
    assert resolved is not None
    assert (resolved.start, resolved.end) == (7.0, 9.0)
    assert resolved.start_from_end is None
    assert resolved.end_from_end is None
    only_start = watermark.resolve_times(Watermark.model_validate({**MARK, "startFromEnd": 2}), 5)
    assert only_start is not None
    assert (only_start.start, only_start.end) == (3.0, None)
    never = Watermark.model_validate({**MARK, "start": 5, "endFromEnd": 8})
    assert watermark.resolve_times(never, 10.0) is None


def test_the_filter_counts_back_from_the_duration() -> None:
    mark = Watermark.model_validate({**MARK, "startFromEnd": 2})
    chains, _ = watermark.watermark_filters(
        [watermark.WatermarkInput(mark, None, None, Path("/t.txt"))],
        (320, 240),
        "in",
        "/f.ttf",
        duration=12,
    )
    assert "enable='between(t,10.000,10000000.000)'" in chains[0]


# --- fonts ---------------------------------------------------------------------


def test_every_font_name_has_a_file_and_text_marks_carry_theirs() -> None:
    assert set(FONT_FILES) == set(FONT_NAMES)
    assert font_file(None, "/default.ttf") == "/default.ttf"
    assert font_file("cjk-sans", "/default.ttf").endswith("NotoSansCJK-Regular.ttc")
    mark = Watermark.model_validate({"text": "你好", "font": "cjk-serif"})
    chains, _ = watermark.watermark_filters(
        [watermark.WatermarkInput(mark, None, None, Path("/t.txt"), font_file="/cjk.ttc")],
        (320, 240),
        "in",
        "/default.ttf",
    )
    assert "fontfile='/cjk.ttc'" in chains[0]


# --- commands ------------------------------------------------------------------

IMAGE = watermark.WatermarkInput(
    Watermark.model_validate({"image": {"bucket": "abc", "key": "k.png"}, "width": "50%"}),
    1,
    (20, 10),
    None,
    Path("/a/k.png"),
)


def test_watermarked_snapshots_are_sized_and_marked_before_the_split() -> None:
    plan = plan_size(640, 360, 320, 320, fill="pad")
    args = snapshot.snapshots_single_pass_args(
        Path("/i"),
        "mov",
        1,
        [0.5, 1.0],
        plan,
        "png",
        [Path("/1.png"), Path("/2.png")],
        marks=[IMAGE],
    )
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:V:0]scale=320:180,setsar=1,pad=320:320:0:70:color=black[pic_sized]")
    assert "[1:v]scale=160:80" in graph
    assert "[pic]split=2[s0][s1];[s0]trim=start=0.500[o0]" in graph
    assert "file:/a/k.png" in args


def test_sprite_marks_every_thumbnail_before_tiling() -> None:
    plan = sprite.SpritePlan(
        interval=1, thumbs=4, columns=2, rows=2, sheets=1, thumb_w=64, thumb_h=64
    )
    sizing = SizePlan((64, 64), (64, 36), "pad", "white")
    args = sprite.sprite_args(
        Path("/i"),
        "mov",
        1,
        plan,
        "jpeg",
        Path("/o-%03d.jpg"),
        Path("/c"),
        sizing=sizing,
        marks=[IMAGE],
    )
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:V:0]fps=1/1.000000:start_time=0[frames];[frames]scale=64:36")
    assert "[1:v]scale=32:16" in graph  # 50% of the thumbnail
    assert graph.endswith("[pic]split[thumbs][count];[thumbs]tile=2x2[sheets]")
    assert args[args.index("-map") + 1] == "[sheets]"


def test_animation_fill_and_marks_come_before_the_palette() -> None:
    plan = plan_size(1920, 1080, 200, 200, fill="crop")
    args = animated_image.animated_args(
        Path("/i"),
        "mov",
        1,
        start=0,
        duration=1,
        fps=10,
        size=plan,
        fmt="gif",
        loop=0,
        out=Path("/o.gif"),
        marks=[IMAGE],
    )
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith(
        "[0:V:0]fps=10[frames];[frames]scale=356:200,setsar=1,crop=200:200:78:0[pic_sized]"
    )
    assert "[pic]split[a][b];[a]palettegen" in graph


def test_svg_raster_forces_the_svg_demuxer_on_a_local_file() -> None:
    args = watermark.svg_raster_args(Path("/a/logo.svg"), 120, Path("/s/logo.png"))
    assert args[args.index("-f") + 1] == "svg_pipe"
    assert args[args.index("-width") + 1] == "120"
    assert args[args.index("-i") + 1] == "file:/a/logo.svg"
    assert args[args.index("-protocol_whitelist") + 1] == "file"


def test_marks_shift_into_the_inputs_timeline_when_the_animation_decodes_from_the_start() -> None:
    from mediaflow_worker.tasks._watermarks import shifted

    timed = Watermark.model_validate({**MARK, "start": 0.5, "end": 1.5})
    always = Watermark.model_validate(MARK)
    moved = shifted(
        [
            watermark.WatermarkInput(timed, None, None, Path("/a.txt")),
            watermark.WatermarkInput(always, None, None, Path("/b.txt")),
        ],
        10.0,
    )
    assert (moved[0].spec.start, moved[0].spec.end) == (10.5, 11.5)
    assert moved[0].text_file == Path("/a.txt")
    assert moved[1].spec is always


def test_a_still_webp_counts_as_one_frame() -> None:
    # libwebp_anim writes a still WebP when a short, still clip's frames all
    # come out the same: one frame, not "no frames".
    from mediaflow_worker.tasks.animated_image import webp_animation_frames

    body = b"WEBP" + b"VP8 " + (4).to_bytes(4, "little") + b"\0" * 4
    assert webp_animation_frames(b"RIFF" + len(body).to_bytes(4, "little") + body) == 1

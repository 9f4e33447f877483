"""Exact output sizes (fillType) and watermarks on every image task, checked
on real output: sizes with ffprobe, bars, blur, crop and watermarks by pixels,
end-relative watermark times, SVG watermarks (that load nothing they
reference) and CJK text that renders as glyphs, not boxes."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import ffprobe, run_local, video_stream, write_workflow

pytestmark = pytest.mark.integration

GREEN = "0x30c030"  # the generated clips' only colour: clean pixels to read


def _solid_clip(path: Path, size: tuple[int, int], duration: float = 2.0) -> Path:
    """A one-colour clip (no audio): any pixel that is not GREEN was drawn."""
    w, h = size
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"color=c={GREEN}:s={w}x{h}:r=25:d={duration}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path


def _rgb(image: Path, *, at: float | None = None) -> tuple[bytes, int, int]:
    """RGB24 pixels, width and height of an image (or a video's frame on
    screen at ``at`` seconds)."""
    stream = video_stream(ffprobe(image))
    assert stream is not None
    w, h = int(stream["width"]), int(stream["height"])
    select = ["-vf", f"select=lte(t\\,{at})", "-fps_mode", "passthrough"] if at is not None else []
    raw = subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(image), *select),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return raw[-w * h * 3 :], w, h


def _pixel(pixels: tuple[bytes, int, int], x: int, y: int) -> tuple[int, int, int]:
    raw, w, _ = pixels
    o = (y * w + x) * 3
    return raw[o], raw[o + 1], raw[o + 2]


def _is_green(rgb: tuple[int, int, int]) -> bool:
    r, g, b = rgb
    return g > 150 and r < 110 and b < 110


def _size(path: Path) -> tuple[int, int]:
    stream = video_stream(ffprobe(path))
    assert stream is not None
    return int(stream["width"]), int(stream["height"])


def _run(tmp_path: Path, tasks: list[dict[str, Any]], source: Path, *extra: str) -> Path:
    out = tmp_path / "out"
    done = run_local(write_workflow(tmp_path, tasks), source, out, *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_fill_type_gives_the_exact_box_on_a_portrait_clip(tmp_path: Path) -> None:
    source = _solid_clip(tmp_path / "portrait.mp4", (180, 320))
    box = {"width": 320, "height": 240}
    tasks = [
        {"name": f"s-{fill}", "snapshot": {"times": ["1"], **box, "fillType": fill}}
        for fill in ("stretch", "pad", "blur", "crop")
    ]
    tasks += [
        {"name": "fit", "snapshot": {"times": ["1"], **box}},
        {
            "name": "white",
            "snapshot": {"times": ["1"], **box, "fillType": "pad", "padColor": "white"},
        },
        {
            "name": "turned",
            "snapshot": {"times": ["1"], **box, "fillType": "pad", "adaptiveOrientation": True},
        },
        {
            "name": "video",
            "transcode": {
                "container": "mp4",
                "video": {
                    **box,
                    "fillType": "pad",
                    "preset": "ultrafast",
                    "adaptiveOrientation": False,
                },
            },
        },
        {
            "name": "sheet",
            "sprite": {"columns": 2, "rows": 1, "width": 64, "height": 64, "fillType": "crop"},
        },
        {"name": "anim", "animatedImage": {"duration": 1, "fps": 5, **box, "fillType": "blur"}},
    ]
    out = _run(tmp_path, tasks, source)
    for fill in ("stretch", "pad", "blur", "crop"):
        assert _size(out / f"s-{fill}" / "snapshot-0001.jpg") == (320, 240), fill
    assert _size(out / "fit" / "snapshot-0001.jpg") == (136, 240)  # fit: inside the box
    assert _size(out / "turned" / "snapshot-0001.jpg") == (240, 320)  # the box turned
    assert _size(out / "video" / "video.mp4") == (320, 240)
    assert _size(out / "sheet" / "sprite-001.jpg") == (128, 64)
    assert _size(out / "anim" / "anim.gif") == (320, 240)
    edge, middle = (5, 120), (160, 120)
    pad = _rgb(out / "s-pad" / "snapshot-0001.jpg")
    assert max(_pixel(pad, *edge)) < 20  # black bars left and right
    assert _is_green(_pixel(pad, *middle))
    assert min(_pixel(_rgb(out / "white" / "snapshot-0001.jpg"), *edge)) > 235  # white bars
    for name in ("s-blur", "s-crop", "s-stretch"):
        # no bars: the blurred copy, the cropped or stretched picture reach the edges
        picture = _rgb(out / name / "snapshot-0001.jpg")
        assert _is_green(_pixel(picture, *edge)), name
        assert _is_green(_pixel(picture, *middle)), name
    video = _rgb(out / "video" / "video.mp4", at=1.0)
    assert max(_pixel(video, *edge)) < 20
    assert _is_green(_pixel(video, *middle))
    anim = _rgb(out / "anim" / "anim.gif", at=0.5)
    assert _is_green(_pixel(anim, *edge))  # blurred background, not black


def test_fill_types_on_a_rotated_phone_video(corpus_dir: Path, tmp_path: Path) -> None:
    # 3840x2160 stored, displayed 2160x3840 (rotated): the box is filled by the
    # picture as displayed.
    source = corpus_dir / "portrait_rotated_phone_4k_h264_aac.mp4"
    box = {"width": 320, "height": 180}
    tasks = [
        {"name": "pad", "snapshot": {"times": ["50%"], **box, "fillType": "pad"}},
        {"name": "crop", "snapshot": {"times": ["50%"], **box, "fillType": "crop"}},
        {"name": "blur", "snapshot": {"times": ["50%"], **box, "fillType": "blur"}},
        {
            "name": "long",
            "snapshot": {"times": ["50%"], **box, "fillType": "crop", "adaptiveOrientation": True},
        },
    ]
    out = _run(tmp_path, tasks, source)
    for name in ("pad", "crop", "blur"):
        assert _size(out / name / "snapshot-0001.jpg") == (320, 180), name
    assert _size(out / "long" / "snapshot-0001.jpg") == (180, 320)
    pad = _rgb(out / "pad" / "snapshot-0001.jpg")
    # The portrait picture is 100 px wide in the middle: black bars beside it.
    assert all(max(_pixel(pad, 10, y)) < 20 for y in (20, 90, 160))
    assert all(max(_pixel(pad, 310, y)) < 20 for y in (20, 90, 160))
    for name in ("crop", "blur"):
        picture = _rgb(out / name / "snapshot-0001.jpg")
        column = [max(_pixel(picture, 10, y)) for y in (20, 90, 160)]
        assert max(column) > 20, (name, column)  # the picture (or its blur), not a bar


def _red_share(pixels: tuple[bytes, int, int], box: tuple[int, int, int, int]) -> float:
    """The share of pixels in box (x, y, w, h) that are the logo's red."""
    x0, y0, bw, bh = box
    red = 0
    for y in range(y0, y0 + bh):
        for x in range(x0, x0 + bw):
            r, g, b = _pixel(pixels, x, y)
            red += r > 120 and g < 120 and b < 90
    return red / (bw * bh)


def test_watermarks_on_snapshots_sprites_and_animations(logo_png: Path, tmp_path: Path) -> None:
    source = _solid_clip(tmp_path / "clip.mp4", (320, 240), duration=3)
    logo = {
        "image": {"bucket": "assets", "key": "logo.png"},
        "position": "top-left",
        "offsetX": "0",
        "offsetY": "0",
        "width": "50%",
    }
    late = {**logo, "position": "bottom-right", "startFromEnd": 1}
    tasks = [
        # 1.0 s: the logo only; 2.6 s: the late one too (last second of 3)
        {"name": "stills", "snapshot": {"times": ["1", "2.6"], "watermarks": [logo, late]}},
        {
            "name": "sheet",
            "sprite": {
                "intervalSeconds": 1,
                "columns": 3,
                "rows": 1,
                "width": 100,
                "watermarks": [logo],
            },
        },
        {
            "name": "anim",
            "animatedImage": {"duration": 2, "fps": 5, "width": 160, "watermarks": [logo, late]},
        },
    ]
    out = _run(tmp_path, tasks, source, "--assets", str(logo_png.parent.parent))
    early = _rgb(out / "stills" / "snapshot-0001.jpg")
    end = _rgb(out / "stills" / "snapshot-0002.jpg")
    # logo: 160x80 at the top-left of 320x240; late: the same at the bottom-right
    top_left, bottom_right = (10, 10, 140, 60), (170, 170, 140, 60)
    assert _red_share(early, top_left) > 0.9
    assert _red_share(early, bottom_right) == 0
    assert _red_share(end, bottom_right) > 0.9
    # Each 100x74 thumbnail carries its own 50 px logo.
    sheet = _rgb(out / "sheet" / "sprite-001.jpg")
    assert sheet[1:] == (300, 74)
    for cell in range(3):
        assert _red_share(sheet, (cell * 100 + 5, 5, 40, 15)) > 0.9, cell
        assert _red_share(sheet, (cell * 100 + 60, 40, 35, 30)) == 0, cell
    # 2 s animation: the late mark shows in its last second only.
    first = _rgb(out / "anim" / "anim.gif", at=0.2)
    last = _rgb(out / "anim" / "anim.gif", at=1.8)
    assert _red_share(first, (5, 5, 70, 30)) > 0.8
    assert _red_share(first, (85, 85, 70, 30)) == 0
    assert _red_share(last, (85, 85, 70, 30)) > 0.8


def test_seeking_snapshots_show_the_watermarks_of_their_instant(
    logo_png: Path, tmp_path: Path
) -> None:
    # 21 stills are more than one decode serves (SINGLE_PASS_MAX_IMAGES): each
    # is a seeking command whose frames are stamped from 0, so the worker
    # decides per still which watermarks show.
    source = _solid_clip(tmp_path / "clip.mp4", (320, 240), duration=3)
    mark = {
        "image": {"bucket": "assets", "key": "logo.png"},
        "position": "top-left",
        "offsetX": "0",
        "offsetY": "0",
        "width": "50%",
        "startFromEnd": 1,
    }
    tasks = [
        {
            "name": "many",
            "snapshot": {
                "count": 21,
                "format": "png",
                "fillType": "pad",
                "width": 320,
                "height": 320,
                "watermarks": [mark],
            },
        }
    ]
    out = _run(tmp_path, tasks, source, "--assets", str(logo_png.parent.parent))
    manifest = json.loads((out / "manifest.json").read_text())
    outputs = manifest["tasks"][0]["outputs"]
    assert len(outputs) == 21
    for output in outputs:
        still = _rgb(out / output["path"])
        assert still[1:] == (320, 320)
        # the logo (160x80) sits on the top bar (40 px) and the picture below it
        shown = _red_share(still, (10, 45, 140, 30)) > 0.9
        assert shown == (output["time"] >= 2.0), output


def test_transcode_watermark_counts_back_from_the_end(logo_png: Path, tmp_path: Path) -> None:
    source = _solid_clip(tmp_path / "clip.mp4", (320, 240), duration=3)
    mark = {
        "image": {"bucket": "assets", "key": "logo.png"},
        "width": "50%",
        "position": "top-left",
    }
    tasks = [
        {
            "name": "web",
            "transcode": {
                "container": "mp4",
                "video": {"preset": "ultrafast"},
                # 0.5 .. 2 s of the 2.5 s output (trimmed from 0.5 s)
                "trim": {"start": 0.5},
                "watermarks": [{**mark, "startFromEnd": 2, "endFromEnd": 0.5}],
            },
        }
    ]
    out = _run(tmp_path, tasks, source, "--assets", str(logo_png.parent.parent))
    video = out / "web" / "web.mp4"
    region = (10, 10, 140, 60)
    assert _red_share(_rgb(video, at=0.2), region) == 0
    assert _red_share(_rgb(video, at=1.2), region) > 0.7  # x264 blurs its edges
    assert _red_share(_rgb(video, at=2.3), region) == 0


class _Counter(http.server.BaseHTTPRequestHandler):
    """Counts every request: an SVG watermark must make none."""

    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_counter() -> Iterator[tuple[str, list[str]]]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    _Counter.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _Counter.hits
    finally:
        server.shutdown()
        server.server_close()


def test_svg_watermark_renders_and_loads_nothing_it_references(
    tmp_path: Path, http_counter: tuple[str, list[str]]
) -> None:
    url, hits = http_counter
    assets = tmp_path / "assets" / "assets"
    assets.mkdir(parents=True)
    secret = assets / "secret.png"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=white:s=8x8",
            "-frames:v",
            "1",
            str(secret),
        ],
        check=True,
        timeout=60,
    )
    # A blue 40x20 logo whose right half would be covered by referenced images
    # (white), were any loaded: by URL, absolute path, relative path.
    (assets / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="40" height="20"><rect width="40" height="20" fill="#0000ff"/>'
        f'<image href="{url}/remote.png" x="20" width="20" height="20"/>'
        f'<image xlink:href="file://{secret}" x="20" width="20" height="20"/>'
        '<image xlink:href="secret.png" x="20" width="20" height="20"/>'
        f'<use href="{url}/defs.svg#x"/>'
        "</svg>"
    )
    source = _solid_clip(tmp_path / "clip.mp4", (320, 240), duration=1)
    mark = {
        "image": {"bucket": "assets", "key": "logo.svg"},
        "position": "top-left",
        "offsetX": "0",
        "offsetY": "0",
        "width": "50%",
    }
    tasks = [
        {"name": "still", "snapshot": {"times": ["0.5"], "format": "png", "watermarks": [mark]}}
    ]
    out = _run(tmp_path, tasks, source, "--assets", str(tmp_path / "assets"))
    still = _rgb(out / "still" / "snapshot-0001.png")
    # Rendered at 50 % of 320 = 160 px wide: 160x80, blue all over.
    for x, y in ((20, 40), (140, 40), (100, 10), (150, 70)):
        r, g, b = _pixel(still, x, y)
        assert b > 200, (x, y, (r, g, b))
        assert r < 40, (x, y, (r, g, b))
        assert g < 40, (x, y, (r, g, b))
    assert _is_green(_pixel(still, 200, 40))  # beside the logo: the video
    assert hits == []


@pytest.mark.parametrize("key", ["big.svg", "broken.svg"])
def test_an_unusable_svg_watermark_fails_with_exit_2(tmp_path: Path, key: str) -> None:
    assets = tmp_path / "assets" / "assets"
    assets.mkdir(parents=True)
    (assets / "big.svg").write_text(
        "<svg xmlns='http://www.w3.org/2000/svg'>" + " " * 2_000_000 + "</svg>"
    )
    (assets / "broken.svg").write_text("this is not an svg")
    source = _solid_clip(tmp_path / "clip.mp4", (64, 64), duration=1)
    mark = {"image": {"bucket": "assets", "key": key}}
    workflow = write_workflow(
        tmp_path, [{"name": "still", "snapshot": {"count": 1, "watermarks": [mark]}}]
    )
    done = run_local(workflow, source, tmp_path / "out", "--assets", str(tmp_path / "assets"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert key in done.stderr


def _lit(pixels: tuple[bytes, int, int]) -> list[bool]:
    """Which pixels are bright (text drawn white on the green clip)."""
    raw = pixels[0]
    return [min(raw[i], raw[i + 1], raw[i + 2]) > 200 for i in range(0, len(raw), 3)]


def test_cjk_text_renders_glyphs_not_boxes(tmp_path: Path) -> None:
    # A font without CJK glyphs draws every ideograph as the same box, so two
    # different words come out pixel-identical; real glyphs differ. DejaVu
    # (the default font) is the control: it must show the boxes.
    source = _solid_clip(tmp_path / "clip.mp4", (320, 120), duration=1)

    def task(name: str, text: str, font: str | None) -> dict[str, Any]:
        mark: dict[str, Any] = {"text": text, "fontSize": "50%", "position": "center"}
        if font is not None:
            mark["font"] = font
        return {"name": name, "snapshot": {"times": ["0.5"], "format": "png", "watermarks": [mark]}}

    tasks = [
        task("cjk-a", "你好", "cjk-sans"),
        task("cjk-b", "世界", "cjk-sans"),
        task("serif-a", "你好", "cjk-serif"),
        task("boxes-a", "你好", None),
        task("boxes-b", "世界", None),
    ]
    out = _run(tmp_path, tasks, source)

    def lit(name: str) -> list[bool]:
        return _lit(_rgb(out / name / "snapshot-0001.png"))

    cjk_a, cjk_b, serif_a, boxes_a, boxes_b = (
        lit(n) for n in ("cjk-a", "cjk-b", "serif-a", "boxes-a", "boxes-b")
    )
    assert sum(cjk_a) > 200
    assert sum(cjk_b) > 200
    differing = sum(a != b for a, b in zip(cjk_a, cjk_b, strict=True))
    assert differing > 0.3 * max(sum(cjk_a), sum(cjk_b)), differing
    # The serif face draws the same word differently from the sans one.
    assert sum(a != b for a, b in zip(cjk_a, serif_a, strict=True)) > 50
    # The control: DejaVu draws both words as the same two boxes.
    assert sum(boxes_a) > 50
    assert boxes_a == boxes_b

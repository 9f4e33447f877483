"""Clips with KNOWN quality defects for the ``quality`` task's tests and its
measurement (``bench/understanding_quality.py``).

Every clip starts from FFmpeg's ``testsrc2`` picture (always moving, sharp,
mid-grey on average) and a stereo sine tone with both channels equal; each
defect is injected with an FFmpeg filter over a known time range. A clip is
returned with the defects it holds (``Defect``: type, start, end), so a test
compares what the task found with what is there.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SIZE = (320, 240)
FPS = 25
RATE = 48000
QR_TEXT = "https://mediaflow.dev/quality-test"


@dataclass(frozen=True)
class Defect:
    """One injected defect: a finding type and the time range it covers."""

    type: str
    start: float
    end: float


@dataclass(frozen=True)
class DefectClip:
    """A generated clip and the defects injected into it."""

    path: Path
    duration: float
    defects: tuple[Defect, ...]


def _run(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-v", "error", "-y", *args], check=True, timeout=180)


def _sources(duration: float, *, rate: int = FPS, size: tuple[int, int] = SIZE) -> list[str]:
    return [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=s={size[0]}x{size[1]}:r={rate}:d={duration}",
        "-f",
        "lavfi",
        "-i",
        f"sine=f=440:d={duration}:sample_rate={RATE}",
    ]


def _encode(path: Path) -> list[str]:
    return ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
            str(path)]  # fmt: skip


def qr_image(path: Path, text: str = QR_TEXT, size: int = 160) -> Path:
    """A QR code of ``text`` as a PNG made with OpenCV's encoder (black on
    white, its quiet zone included), scaled up without blurring."""
    import cv2

    code = cv2.QRCodeEncoder.create().encode(text)
    big = cv2.resize(code, (size, size), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), big)
    return path


@dataclass(frozen=True)
class Layout:
    """Where (seconds) and how strongly the defects of one clip are injected."""

    black: tuple[float, float]
    freeze: tuple[float, float]
    phase: tuple[float, float]
    blur: tuple[float, float]
    blur_radius: int
    silence: tuple[float, float]
    qr: tuple[float, float]


# Layout 0 is the tests' clip; the others move and shorten the defects (and
# soften the blur) for the benchmark. Each range is whole frames at 25 fps.
LAYOUTS = (
    Layout((2.0, 3.0), (4.0, 6.5), (6.0, 8.0), (7.0, 8.5), 8, (9.0, 10.5), (11.0, 12.5)),
    Layout((0.6, 1.8), (3.0, 5.4), (1.0, 3.0), (6.0, 7.2), 5, (8.0, 9.2), (10.0, 11.6)),
    Layout((10.0, 11.2), (1.0, 3.6), (7.0, 9.0), (4.0, 6.0), 4, (0.0, 1.6), (11.6, 12.8)),
)


def defects_clip(directory: Path, layout: int = 0) -> DefectClip:
    """13 s with black, a freeze, out-of-phase audio, blur, silence and a QR
    code; with layout 0: black 2-3 s, freeze 4-6.5 s, out of phase 6-8 s,
    blur 7-8.5 s, silence 9-10.5 s, QR code 11-12.5 s."""
    at = LAYOUTS[layout]
    path = directory / f"defects-{layout}.mp4"
    qr = qr_image(directory / "qr.png")
    duration = 13.0

    def between(span: tuple[float, float]) -> str:
        # The end frame is not part of the range.
        return f"between(t,{span[0]:g},{span[1] - 0.001:g})"

    first, last = round(at.freeze[0] * FPS), round(at.freeze[1] * FPS) - 1
    video = (
        # freezeframes takes the repeated frame from its second input.
        "[0:v]split[src][still];"
        f"[src][still]freezeframes=first={first}:last={last}:replace={first},"
        f"drawbox=c=black:t=fill:enable='{between(at.black)}',"
        f"boxblur={at.blur_radius}:enable='{between(at.blur)}'[base];"
        "[2:v]format=yuv420p[code];"
        f"[base][code]overlay=x=80:y=40:enable='{between(at.qr)}'[v]"
    )
    audio = (
        f"[1:a]aeval='val(0)|if({between(at.phase)},-val(0),val(0))':c=stereo,"
        f"volume=0:enable='{between(at.silence)}',aformat=channel_layouts=stereo[a]"
    )
    _run(
        [
            *_sources(duration),
            "-loop",
            "1",
            "-i",
            str(qr),
            "-filter_complex",
            f"{video};{audio}",
            "-map",
            "[v]",
            "-map",
            "[a]",
            "-t",
            str(duration),
            *_encode(path),
        ]
    )
    return DefectClip(
        path,
        duration,
        (
            Defect("black", *at.black),
            Defect("freeze", *at.freeze),
            Defect("outOfPhase", *at.phase),
            Defect("blur", *at.blur),
            Defect("silence", *at.silence),
            Defect("qrCode", *at.qr),
        ),
    )


def clean_clip(directory: Path, duration: float = 6.0) -> DefectClip:
    """No defect at all: the reference for precision."""
    path = directory / "clean.mp4"
    _run([*_sources(duration), "-af", "aformat=channel_layouts=stereo", *_encode(path)])
    return DefectClip(path, duration, ())


def level_clip(directory: Path, gain_db: float, duration: float = 4.0) -> DefectClip:
    """The clean clip's tone ``gain_db`` louder (positive) or quieter: at
    -25 dB it is too quiet (about -44 LUFS, above the silence level), at
    +15 dB too loud (about -4 LUFS)."""
    kind = "loud" if gain_db > 0 else "quiet"
    path = directory / f"{kind}.mp4"
    _run(
        [
            *_sources(duration),
            "-af",
            f"volume={gain_db:g}dB,aformat=channel_layouts=stereo",
            *_encode(path),
        ]
    )
    return DefectClip(path, duration, (Defect(kind, 0.0, duration),))


def interlaced_clip(directory: Path, duration: float = 4.0) -> DefectClip:
    """Moving pictures woven into interlaced frames (50 fields a second)."""
    path = directory / "interlaced.mp4"
    _run(
        [
            *_sources(duration, rate=2 * FPS),
            "-vf",
            "tinterlace=mode=interleave_top",
            "-af",
            "aformat=channel_layouts=stereo",
            "-flags",
            "+ildct+ilme",
            *_encode(path),
        ]
    )
    return DefectClip(path, duration, (Defect("interlaced", 0.0, duration),))


def letterbox_clip(directory: Path, duration: float = 4.0) -> DefectClip:
    """A 320x180 picture in a 320x240 frame: black bars of 30 lines (12.5 %)
    above and below."""
    path = directory / "letterbox.mp4"
    _run(
        [
            *_sources(duration, size=(320, 180)),
            "-vf",
            "pad=320:240:0:30:black",
            "-af",
            "aformat=channel_layouts=stereo",
            *_encode(path),
        ]
    )
    return DefectClip(path, duration, (Defect("blackEdges", 0.0, duration),))


def dropped_clip(directory: Path, duration: float = 5.0) -> DefectClip:
    """Ten frames (2.0-2.4 s) cut out without closing the gap in the timestamps."""
    path = directory / "dropped.mp4"
    _run(
        [
            *_sources(duration),
            "-vf",
            "select='not(between(n,50,59))'",
            "-fps_mode",
            "passthrough",
            "-af",
            "aformat=channel_layouts=stereo",
            *_encode(path),
        ]
    )
    return DefectClip(path, duration, (Defect("droppedFrames", 2.0, 2.4),))


def spliced_clip(directory: Path, *, jump: float = 0.0) -> DefectClip:
    """Two MPEG-TS segments of 2 s joined byte for byte: 320x240 with 48 kHz
    audio, then 240x180 with 44.1 kHz mono audio. ``jump`` > 0 starts the
    second one that many seconds late (a timestamp jump)."""
    name = "jump" if jump else "spliced"
    first, second = directory / f"{name}-a.ts", directory / f"{name}-b.ts"
    _run([*_sources(2.0), "-af", "aformat=channel_layouts=stereo", "-c:v", "libx264",
          "-preset", "ultrafast", "-c:a", "aac", str(first)])  # fmt: skip
    _run(
        [
            *_sources(2.0, size=(240, 180)),
            "-af",
            "aresample=44100,aformat=channel_layouts=mono",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-output_ts_offset",
            f"{2.0 + jump:g}",
            str(second),
        ]
    )
    path = directory / f"{name}.ts"
    path.write_bytes(first.read_bytes() + second.read_bytes())
    at = 2.0 + jump
    defects = [
        Defect("resolutionChange", at, at),
        Defect("sampleRateChange", at, at),
        Defect("channelLayoutChange", at, at),
    ]
    if jump:
        defects.append(Defect("timestamps", 2.0, at))
    return DefectClip(path, at + 2.0, tuple(defects))


# EAN-13 by its standard: the first digit picks the left half's mix of L and
# G codes; R codes are the L codes inverted, G codes the R codes reversed.
_EAN_L = ("0001101", "0011001", "0010011", "0111101", "0100011",
          "0110001", "0101111", "0111011", "0110111", "0001011")  # fmt: skip
_EAN_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
               "LGGLLG", "LGGGLL", "LGLGLL", "LGLLGL", "LLGLLG")  # fmt: skip
BARCODE_TEXT = "4006381333931"


def ean13_modules(digits: str) -> str:
    """The 95 bars (1) and spaces (0) of an EAN-13 code (check digit verified)."""
    if len(digits) != 13 or not digits.isdigit():
        raise ValueError(f"not 13 digits: {digits!r}")
    weights = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    if (10 - weights % 10) % 10 != int(digits[12]):
        raise ValueError(f"wrong check digit: {digits!r}")
    right = ["".join("1" if b == "0" else "0" for b in code) for code in _EAN_L]
    left = ""
    for digit, kind in zip(digits[1:7], _EAN_PARITY[int(digits[0])], strict=True):
        left += _EAN_L[int(digit)] if kind == "L" else right[int(digit)][::-1]
    return "101" + left + "01010" + "".join(right[int(d)] for d in digits[7:]) + "101"


def barcode_image(path: Path, digits: str = BARCODE_TEXT, module: int = 2) -> Path:
    """An EAN-13 barcode as a PNG: black bars on white, ten modules of quiet
    zone on each side, ``module`` pixels per module."""
    import cv2
    import numpy as np

    bars = ean13_modules(digits)
    row = np.array([0 if b == "1" else 255 for b in "0" * 10 + bars + "0" * 10], np.uint8)
    image = np.repeat(np.tile(row, (40, 1)), module, axis=1)
    image = np.repeat(image, 2, axis=0)  # 80 pixels high
    cv2.imwrite(str(path), image)
    return path


def barcode_clip(directory: Path, duration: float = 5.0) -> DefectClip:
    """An EAN-13 barcode shown from 1.0 to 3.0 s."""
    path = directory / "barcode.mp4"
    image = barcode_image(directory / "barcode.png")
    _run(
        [
            *_sources(duration),
            "-loop",
            "1",
            "-i",
            str(image),
            "-filter_complex",
            "[2:v]format=yuv420p[code];[0:v][code]overlay=x=45:y=80:enable='between(t,1,2.999)'[v];"
            "[1:a]aformat=channel_layouts=stereo[a]",
            "-map",
            "[v]",
            "-map",
            "[a]",
            "-t",
            str(duration),
            *_encode(path),
        ]
    )
    return DefectClip(path, duration, (Defect("barcode", 1.0, 3.0),))

"""Speech with known words at known times, and real recordings with
transcripts, for the ``speech`` task's tests and ``make bench``.

- ``spoken_clip``: sentences synthesised with espeak-ng (US English voice)
  and optionally a real recording placed at known times in a clip, with
  silence and a stretch of synthetic "music" (a chord with a beat) between
  them, so that the test can check the words, their times, the voice-activity
  ranges and that music is not turned into words. (PocketSphinx's acoustic
  model was trained on human speech: espeak-ng's formant voice is far from it
  and its word error rate is high; the real recording is what shows the words
  are right.)
- ``real_recordings``: the recordings with transcripts of the PocketSphinx
  source distribution (``test/data``: ``goforward.raw``, CMU; five LibriVox
  sentences of *Sense and Sensibility*, public domain), fetched once with
  ``pip download --no-binary :all: --no-deps pocketsphinx==<installed>`` into
  ``~/.cache/mediaflow/`` (the package registry, at test set-up only).
- ``word_error_rate``: the measure both report.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path.home() / ".cache" / "mediaflow"


@dataclass(frozen=True)
class Sentence:
    """A sentence spoken from ``start`` (seconds into the clip) to ``end``."""

    text: str
    start: float
    end: float
    synthetic: bool = True  # espeak-ng; False: a real recording


@dataclass(frozen=True)
class SpokenClip:
    """A generated clip and what it holds."""

    path: Path
    duration: float
    sentences: tuple[Sentence, ...]
    music: tuple[float, float]  # where the music plays (no words there)


# Plain words the US English language model knows well.
SENTENCES = (
    "please go forward ten meters and then turn left",
    "the weather today is cold and windy",
)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on
    lower-case words without punctuation (Levenshtein distance over words)."""
    ref = _words(reference)
    hyp = _words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution
                )
            )
        previous = current
    return previous[-1] / len(ref)


def _words(text: str) -> list[str]:
    cleaned = "".join(ch if ch.isalnum() or ch == "'" else " " for ch in text.lower())
    return cleaned.split()


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def synthesise(text: str, out: Path) -> float:
    """``text`` spoken by espeak-ng's US English voice into ``out`` (WAV);
    its duration in seconds."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(out), text], check=True)
    return _duration(out)


def spoken_clip(
    directory: Path,
    *,
    video: bool = True,
    sentences: tuple[str, ...] = SENTENCES,
    recording: Recording | None = None,
) -> SpokenClip:
    """A clip: 1.5 s silence, the first sentence, silence, 2.5 s of music,
    silence, ``recording`` (a real one, when given), silence, the other
    sentences, 1.5 s of silence; an MP4 (small test picture + AAC) or, with
    ``video=False``, an M4A. Every piece 1.5 s of silence from the next."""
    directory.mkdir(parents=True, exist_ok=True)
    pieces: list[tuple[str, Path, bool]] = []
    for index, text in enumerate(sentences):
        wav = directory / f"sentence-{index}.wav"
        synthesise(text, wav)
        pieces.append((text, wav, True))
    if recording is not None:
        pieces.insert(1, (recording.transcript, recording.path, False))
    placed: list[Sentence] = []
    inputs: list[str] = []
    time = 1.5
    music: tuple[float, float] = (0.0, 0.0)
    for index, (text, wav, synthetic) in enumerate(pieces):
        length = _duration(wav)
        placed.append(Sentence(text, round(time, 3), round(time + length, 3), synthetic))
        inputs += ["-i", str(wav)]
        time += length + 1.5
        if index == 0:
            music = (round(time, 3), round(time + 2.5, 3))
            time += 2.5 + 1.5
    duration = round(time, 3)
    chains: list[str] = []
    labels: list[str] = []
    for index, sentence in enumerate(placed):
        delay = round(sentence.start * 1000)
        chains.append(
            f"[{index}:a]aresample=48000,aformat=channel_layouts=mono,"
            f"adelay={delay}:all=1[s{index}]"
        )
        labels.append(f"[s{index}]")
    # A chord (A3, C#4, E4) pulsed four times a second: music-like, not speech.
    chord = "(sin(2*PI*220*t)+sin(2*PI*277.2*t)+sin(2*PI*329.6*t))*0.12*(0.5+0.5*sin(2*PI*4*t))"
    chains.append(
        f"aevalsrc='{chord}':s=48000:d={music[1] - music[0]},"
        f"adelay={round(music[0] * 1000)}:all=1[m]"
    )
    labels.append("[m]")
    chains.append(
        f"{''.join(labels)}amix=inputs={len(labels)}:normalize=0:duration=longest,"
        f"apad=whole_dur={duration}[a]"
    )
    out = directory / ("spoken.mp4" if video else "spoken.m4a")
    args = ["ffmpeg", "-v", "error", "-y", *inputs]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=s=160x90:r=10:d={duration}"]
    args += ["-filter_complex", ";".join(chains), "-map", "[a]"]
    if video:
        args += ["-map", f"{len(placed)}:v", "-c:v", "libx264", "-preset", "ultrafast"]
    args += ["-c:a", "aac", "-b:a", "96k", "-t", str(duration), str(out)]
    subprocess.run(args, check=True)
    return SpokenClip(out, duration, tuple(placed), music)


@dataclass(frozen=True)
class Recording:
    """A real recording (WAV, 16 kHz mono) and its transcript."""

    path: Path
    transcript: str
    source: str


def pocketsphinx_source() -> Path:
    """The unpacked ``test/data`` of the installed PocketSphinx version's
    source distribution (downloaded once into ``~/.cache/mediaflow/``)."""
    version = importlib.metadata.version("pocketsphinx")
    base = CACHE / "pocketsphinx-src"
    data = base / f"pocketsphinx-{version}" / "test" / "data"
    if (data / "goforward.raw").exists() and (data / "librivox").is_dir():
        return data
    archive = base / f"pocketsphinx-{version}.tar.gz"
    if not archive.exists():
        base.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
             "--no-deps", f"pocketsphinx=={version}", "-d", str(base)],
            check=True,
        )  # fmt: skip
    prefix = f"pocketsphinx-{version}/test/data/"
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile()
            and (m.name == prefix + "goforward.raw" or m.name.startswith(prefix + "librivox/"))
        ]
        tar.extractall(base, members=members, filter="data")
    return data


def real_recordings(directory: Path) -> list[Recording]:
    """The source distribution's recordings with transcripts: goforward
    (headerless 16 kHz s16le) first, as a WAV file in ``directory`` without
    its leading and trailing silence, then the LibriVox WAV files."""
    data = pocketsphinx_source()
    directory.mkdir(parents=True, exist_ok=True)
    goforward = directory / "goforward.wav"
    if not goforward.exists():
        # Its silence before and after (about 0.5 s) trimmed at -40 dB, so
        # that the file's start and end are the speech's: the clip places it
        # at a known time.
        trim = "silenceremove=start_periods=1:start_threshold=-40dB"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
             "-i", str(data / "goforward.raw"), "-af", f"{trim},areverse,{trim},areverse",
             str(goforward)],
            check=True,
        )  # fmt: skip
    found = [
        Recording(goforward, "go forward ten meters", "pocketsphinx test/data/goforward.raw (CMU)")
    ]
    for wav in sorted((data / "librivox").glob("*.wav")):
        transcript = wav.with_suffix(".txt").read_text().strip()
        found.append(
            Recording(wav, transcript, f"pocketsphinx test/data/librivox/{wav.name} (LibriVox)")
        )
    return found

"""Where each output of a task goes: the Workflow's output directory of the
input (``<dir><task>/<file>``), or the task's custom names (``tasks[].output``:
``prefix`` + the rendered ``fileName`` in ``bucket``).

Tasks always write into their own local directory with their own file names;
this module maps those files to final keys afterwards, one rule per kind of
output set:

- one file (transcode, animated image, analysis): the template, ``{number}``
  = ``numberStart``;
- numbered files (snapshot images, sprite sheets): ``{number}`` counts from
  ``numberStart`` in the order the task returned them; the sprite's WebVTT
  index takes the template without ``{number}`` (``index_template``) and is
  rewritten to name the sheets by their new keys, relative to its own;
- a streaming package (HLS/DASH): the template names the master playlist or
  MPD; every other file keeps the path ffmpeg gave it, relative to the
  playlist's directory, so the playlists' relative references stay valid.
  The template must therefore give each input a directory of its own
  (``{inputName}`` before the last ``/``; admission checks it). HLS variant
  playlists and segments take ``variantName``/``segmentName`` when set
  (``hls_names``): the files found through the playlists' references are
  renamed and every reference is rewritten, relative to its playlist.

Pure but for the one index rewrite. ``place`` refuses rendered keys that S3 or
a local directory cannot hold (``OutputNameError``) and two outputs of one run
with the same key (``OutputCollisionError``): both exit 2.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from mediaflow_api.tasks import TaskSpec
from mediaflow_api.tasks.output import RESERVED, NameVars, TaskOutput, index_template, render
from mediaflow_worker.errors import OutputCollisionError, OutputNameError
from mediaflow_worker.tasks import OutputFile

# S3 keys are at most 1024 bytes (UTF-8).
KEY_MAX_BYTES = 1024
STREAMING_PLAYLISTS = ("master.m3u8", "manifest.mpd")
SPRITE_INDEX_SUFFIX = ".vtt"


@dataclass(frozen=True)
class Placement:
    """One output's final place: ``bucket`` None is the Workflow's output
    bucket; ``custom`` tells a custom name from the Workflow's directory."""

    output: OutputFile
    bucket: str | None
    key: str
    custom: bool


def place(
    task: TaskSpec,
    outputs: list[OutputFile],
    task_dir: Path,
    *,
    default_prefix: str,
    input_key: str,
    trigger_prefix: str,
) -> list[Placement]:
    """The final place of each of ``task``'s ``outputs`` (written under
    ``task_dir``). Without ``task.output`` that is ``default_prefix`` +
    ``<task>/<path>``, as before custom names existed."""
    out = task.output
    if out is None:
        return [
            Placement(
                o, None, default_prefix + o.path.relative_to(task_dir.parent).as_posix(), False
            )
            for o in outputs
        ]
    variables = NameVars.of(input_key, trigger_prefix, task.name)
    if task.kind == "adaptiveStreaming":
        keys = _streaming_keys(out, variables, outputs, task_dir)
    elif task.kind == "sprite":
        keys = _sprite_keys(out, variables, outputs)
    else:
        keys = [
            out.prefix
            + render(out.file_name, variables, _fmt(o.path), out.number_start + i, out.number_width)
            for i, o in enumerate(outputs)
        ]
    placed = [Placement(o, out.bucket, key, True) for o, key in zip(outputs, keys, strict=True)]
    for p in placed:
        check_key(p.key, task.name)
    seen: set[str] = set()
    for p in placed:
        if p.key in seen:
            raise OutputCollisionError(
                f"task {task.name!r}: two of its outputs render to the same key {p.key!r} "
                "(add {number} to output.fileName)"
            )
        seen.add(p.key)
    return placed


def _fmt(path: Path) -> str:
    return path.suffix.removeprefix(".")


def _streaming_keys(
    out: TaskOutput, variables: NameVars, outputs: list[OutputFile], task_dir: Path
) -> list[str]:
    playlist = next((o for o in outputs if o.path.name in STREAMING_PLAYLISTS), None)
    if playlist is None:  # pragma: no cover - the task always writes one
        raise OutputNameError("adaptiveStreaming wrote no master playlist or MPD")
    top = out.prefix + render(out.file_name, variables, _fmt(playlist.path), None, out.number_width)
    base = posixpath.dirname(top)
    renamed: dict[str, str] = {}
    if playlist.path.suffix == ".m3u8" and (out.segment_name or out.variant_name):
        renamed = hls_names(playlist.path, out, variables)
    keys = []
    for o in outputs:
        if o is playlist:
            keys.append(top)
        else:
            rel = o.path.relative_to(task_dir).as_posix()
            rel = renamed.get(rel, rel)
            keys.append(f"{base}/{rel}" if base else rel)
    return keys


# A URI in a playlist: a line that is not a tag, or a tag's URI="..." attribute.
_URI_ATTR = re.compile(r'URI="([^"]*)"')


def _references(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            found += _URI_ATTR.findall(line)
        else:
            found.append(line)
    return found


def _rewrite(text: str, new: dict[str, str]) -> str:
    """``text`` with each reference in ``new`` replaced (only whole URIs)."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.startswith("#"):
            body = _URI_ATTR.sub(lambda m: f'URI="{new.get(m.group(1), m.group(1))}"', body)
        elif body.strip():
            body = new.get(body.strip(), body)
        lines.append(body + line[len(line.rstrip("\r\n")) :])
    return "".join(lines)


def hls_names(master: Path, out: TaskOutput, variables: NameVars) -> dict[str, str]:
    """Rename an HLS package's variant playlists and segments after
    ``out.variantName``/``out.segmentName`` (paths relative to the master
    playlist's directory; unset keeps ffmpeg's names) and rewrite every
    reference in the playlists to match. Only references to files of the
    package count (a key URI elsewhere is left alone). Returns old relative
    path -> new relative path; the files stay where they are locally."""
    root = master.parent
    renamed: dict[str, str] = {}
    variants: list[str] = []
    master_text = master.read_text(encoding="utf-8")
    for uri in _references(master_text):
        rel = posixpath.normpath(uri)
        if rel not in variants and (root / rel).is_file():
            variants.append(rel)
    for i, variant in enumerate(variants):
        new_variant = variant
        if out.variant_name:
            new_variant = render(out.variant_name, variables, "m3u8", None, 1, rendition=i)
        renamed[variant] = new_variant
        path = root / variant
        text = path.read_text(encoding="utf-8")
        here = posixpath.dirname(variant)
        number = out.number_start
        maps = {
            uri
            for line in text.splitlines()
            if line.startswith("#EXT-X-MAP")
            for uri in _URI_ATTR.findall(line)
        }
        for uri in _references(text):
            rel = posixpath.normpath(posixpath.join(here, uri))
            if rel in renamed or not (root / rel).is_file():
                continue
            if out.segment_name is None:
                renamed[rel] = rel
                continue
            fmt = _fmt(Path(rel))
            if uri in maps:  # the fMP4 init segment: {number} is "init"
                renamed[rel] = render(
                    out.segment_name.replace("{number}", "init"),
                    variables,
                    fmt,
                    None,
                    1,
                    rendition=i,
                )
            else:
                renamed[rel] = render(
                    out.segment_name, variables, fmt, number, out.number_width, rendition=i
                )
                number += 1
    # Rewrite each playlist with its references relative to its new place.
    for variant in variants:
        path = root / variant
        old_dir, new_dir = posixpath.dirname(variant), posixpath.dirname(renamed[variant])
        text = path.read_text(encoding="utf-8")
        new = {
            uri: posixpath.relpath(renamed[target], new_dir or ".")
            for uri in _references(text)
            if (target := posixpath.normpath(posixpath.join(old_dir, uri))) in renamed
        }
        path.write_text(_rewrite(text, new), encoding="utf-8")
    in_master = {
        uri: renamed[posixpath.normpath(uri)]
        for uri in _references(master_text)
        if posixpath.normpath(uri) in renamed
    }
    master.write_text(_rewrite(master_text, in_master), encoding="utf-8")
    return renamed


def _sprite_keys(out: TaskOutput, variables: NameVars, outputs: list[OutputFile]) -> list[str]:
    sheets = [o for o in outputs if not o.path.name.endswith(SPRITE_INDEX_SUFFIX)]
    numbered = {
        o.path: out.prefix
        + render(out.file_name, variables, _fmt(o.path), out.number_start + i, out.number_width)
        for i, o in enumerate(sheets)
    }
    keys = []
    for o in outputs:
        if o.path in numbered:
            keys.append(numbered[o.path])
            continue
        index_key = out.prefix + render(
            index_template(out.file_name), variables, "vtt", None, out.number_width
        )
        rewrite_sprite_index(
            o.path,
            {
                path.name: posixpath.relpath(key, posixpath.dirname(index_key) or ".")
                for path, key in numbered.items()
            },
        )
        keys.append(index_key)
    return keys


def rewrite_sprite_index(vtt: Path, names: dict[str, str]) -> None:
    """Replace the sheet file names that the WebVTT cue payloads
    (``sprite-001.jpg#xywh=...``) refer to with their new relative names."""
    text = vtt.read_text(encoding="utf-8")

    def swap(match: re.Match[str]) -> str:
        return names.get(match.group(1), match.group(1)) + "#xywh="

    vtt.write_text(re.sub(r"^([^\s#]+)#xywh=", swap, text, flags=re.MULTILINE), encoding="utf-8")


def check_key(key: str, task: str) -> None:
    """``OutputNameError`` for a rendered key S3 or a local directory cannot
    hold: empty, too long, or with an empty, '.' or '..' segment (an input
    key such as ``a//b.mp4`` can make {inputDir} render one)."""
    segments = key.split("/")
    if (
        not key
        or len(key.encode()) > KEY_MAX_BYTES
        or any(s in ("", ".", "..") for s in segments)
        or RESERVED in key
    ):
        raise OutputNameError(
            f"task {task!r}: output.fileName renders to {key!r}, which is not a usable key "
            f"(empty, over 1024 bytes, with an empty, '.' or '..' path segment, or inside a "
            f"{RESERVED!r} directory)"
        )

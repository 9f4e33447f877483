"""The understanding benchmark's runner (bench/understanding_bench.py): which
task modules it finds, the rows it accepts, and its tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.understanding_bench import ROW_KEYS, check_row, load, run, table, task_modules

pytestmark = pytest.mark.unit

ROW = {
    "task": "ocr",
    "measure": "character accuracy",
    "value": 0.9871,
    "unit": "ratio",
    "material": "burned-in text, 4 s",
    "seconds": 1.25,
    "mediaSeconds": 4.0,
    "realTimeFactor": 0.3125,
}


def _module(directory: Path, kind: str, body: str) -> Path:
    path = directory / f"understanding_{kind}.py"
    path.write_text(body)
    return path


def test_it_finds_each_task_module_but_not_itself(tmp_path: Path) -> None:
    for kind in ("speech", "ocr", "bench"):
        _module(tmp_path, kind, "")
    (tmp_path / "worker_bench.py").write_text("")
    assert list(task_modules(tmp_path)) == ["ocr", "speech"]


def test_it_runs_measure_in_a_scratch_directory_of_its_own(tmp_path: Path) -> None:
    body = (
        "from pathlib import Path\n"
        f"ROW = {ROW!r}\n"
        "def measure(work: Path) -> list[dict[str, object]]:\n"
        "    assert work.is_dir() and not any(work.iterdir())\n"
        "    (work / 'clip.mp4').write_bytes(b'')\n"
        "    return [dict(ROW, extra='dropped')]\n"
    )
    path = _module(tmp_path, "ocr", body)
    work = tmp_path / "work"
    work.mkdir()
    rows, totals = run({"ocr": path}, work)
    assert rows == [ROW]
    assert list(totals) == ["ocr"]
    assert (work / "ocr" / "clip.mp4").exists()


def test_a_module_without_measure_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _module(tmp_path, "cover", "X = 1\n")
    with pytest.raises(RuntimeError, match=r"understanding_cover\.py has no measure"):
        load("cover", path)


def test_a_row_missing_a_documented_key_is_refused() -> None:
    row = {k: v for k, v in ROW.items() if k != "realTimeFactor"}
    lacks = r"understanding_ocr\.py: a row lacks \['realTimeFactor'\]"
    with pytest.raises(ValueError, match=lacks):
        check_row("ocr", row)


def test_the_table_has_one_line_per_row_and_short_numbers() -> None:
    lines = table([ROW], ROW_KEYS).splitlines()
    assert lines[0] == "| " + " | ".join(ROW_KEYS) + " |"
    assert len(lines) == 3
    assert "| 0.987 |" in lines[2]
    assert "| 4 |" in lines[2]

"""Every corpus file through every example, as a user would try them.

``mediaflow-worker run -f examples/X.yaml FILE -o OUT --assets examples/assets``
for each of the real-world files in the corpus and each Workflow in
``examples/``: a valid file ends with exit code 0 and a manifest in which every
task succeeded or was skipped with a reason (no video to take pictures of); a
broken or hostile one ends with exit code 2 and one line saying why. Exit code
1 (the worker's own failure) is never acceptable. The parameter lists are the
two directory listings, so a new example or corpus file is covered at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import REPO, run_local
from .test_corpus import EXPECTED, corpus_listing

pytestmark = [pytest.mark.integration, pytest.mark.corpus]

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
ASSETS = REPO / "examples" / "assets"
# "mediaflow-worker: InputRejected: the input is ..."
_REASON = re.compile(r"^mediaflow-worker: [A-Z][A-Za-z]+: \S.{8,}$")


@pytest.mark.parametrize("name", corpus_listing())
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_on_corpus_file(example: Path, name: str, corpus_dir: Path, tmp_path: Path) -> None:
    assert name in EXPECTED, f"new corpus file {name}: add its expectation to test_corpus.py"
    out = tmp_path / "out"
    done = run_local(example, corpus_dir / name, out, "--assets", str(ASSETS), timeout=600)
    said = done.stderr.strip().splitlines()
    if EXPECTED[name] == "bad":
        assert done.returncode == 2, done.stderr
        assert len(said) == 1, done.stderr
        assert _REASON.match(said[0]), said[0]
        return
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ok"] is True
    for task in manifest["tasks"]:
        assert task["status"] in ("succeeded", "skipped"), task
        if task["status"] == "skipped":
            assert task["reason"], task
            continue
        assert task["outputs"], task
        for output in task["outputs"]:
            assert (out / output["path"]).stat().st_size == output["size"] > 0, output

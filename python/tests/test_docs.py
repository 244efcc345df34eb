"""Every Python block of the docs that show the package runs as written, and prints what
its comments say it prints; the examples' quick runs finish.

Blocks run in a fresh interpreter in a scratch folder (where `data/` is the repository's),
as a reader would paste them. A line `print(...)  # <text>` must print `<text>` (numbers
to the digits shown).
"""

import os
import re
import subprocess
import sys

import pytest

from test_mi_est import ROOT, mi_est_bin

DOCS = [ROOT / "README.md", ROOT / "docs" / "posteriors.md", ROOT / "docs" / "specs.md", ROOT / "python" / "README.md"]


def python_blocks(path):
    text = path.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S)
    ]


BLOCKS = [(doc, line, code) for doc in DOCS for line, code in python_blocks(doc)]
IDS = [f"{d.parent.name}/{d.name}:{l}" for d, l, _ in BLOCKS]


def run(code, cwd, timeout=300):
    (cwd / "data").symlink_to(ROOT / "data")
    env = dict(os.environ, MI_EST_BIN=mi_est_bin(), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def expected_prints(code):
    """The comments of `print(...)  # text` lines, in order."""
    return [m.group(1).strip() for m in re.finditer(r"^print\(.*\)[ \t]+#[ \t]*(.+)$", code, flags=re.M)]


@pytest.mark.parametrize("doc,line,code", BLOCKS, ids=IDS)
def test_every_python_block_of_the_docs_runs_as_written(doc, line, code, tmp_path):
    pytest.importorskip("torch")
    done = run(code, tmp_path)
    assert done.returncode == 0, f"{doc.name}:{line} failed:\n{done.stderr[-3000:]}"
    printed = done.stdout.splitlines()
    for want in expected_prints(code):
        assert any(want == got.strip() for got in printed), f"{doc.name}:{line}: no line printed `{want}`; printed:\n{done.stdout}"


def test_the_docs_have_the_blocks_this_test_runs():
    names = {d.name for d, _, _ in BLOCKS}
    assert {"posteriors.md", "specs.md", "README.md"} <= names and len([d for d, _, _ in BLOCKS if d.name == "README.md"]) >= 3
    libraries = " ".join(code for d, _, code in BLOCKS if d.name == "posteriors.md")
    for library in ("bayesian_torch", "blitz", "pyro"):
        assert f"import {library}" in libraries or f"from {library}" in libraries, library


@pytest.mark.parametrize(
    "example,args,expect",
    [
        ("bayesian_torch_mnist.py", ["--quick"], ["L (MFVI)", "L + I^K (symmetrized)"]),
        ("train_and_estimate.py", ["--steps", "50", "--samples", "100"], ["equal", "equal"]),
    ],
)
def test_the_examples_quick_runs_finish(example, args, expect, tmp_path):
    pytest.importorskip("bayesian_torch")
    done = subprocess.run(
        [sys.executable, str(ROOT / "python" / "examples" / example), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, MI_EST_BIN=mi_est_bin(), PYTHONDONTWRITEBYTECODE="1"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = [line for line in done.stdout.splitlines() if any(e in line for e in expect)]
    assert len(found) >= len(expect) and "skipped" not in done.stdout, done.stdout

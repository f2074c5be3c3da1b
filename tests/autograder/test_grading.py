"""Grading: exactly stock nbgrader's scores, the command-line contract, bad and tampered input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.execute import execute_notebook
from autograder.feedback import released_sources, render
from autograder.gpu import GpuSlots
from autograder.grade import Grader, grade_many, grader_for, learner_folders
from autograder.pool import KernelPool, KernelPoolError, KernelStartError
from autograder.results import InfrastructureFailure
from autograder.sandbox import SandboxPolicy
from autograder.stock import grade_stock
from tests.autograder.conftest import (
    LIMITS,
    SOLUTION,
    doubling_notebook,
    fake_gpus,
    score_of,
    submit,
)

ROOT = Path(__file__).resolve().parents[2]
PARITY = ROOT.parent / "shared" / "parity" / "nbgrader-docs-ps1"


def cells(result: object) -> dict[str, tuple[float, str]]:
    return {
        f"{name}/{gid}": (c.score, c.status)
        for name, nb in result.notebooks.items()  # type: ignore[attr-defined]
        for gid, c in nb.cells.items()
    }


def test_parity_with_stock_nbgrader_on_its_own_example_course() -> None:
    """nbgrader's example course, two real learners: stock and ours, side by side."""
    learners = learner_folders(PARITY / "submitted", "ps1")
    stock = grade_stock(PARITY / "source" / "ps1", learners)
    with grader_for(PARITY / "source" / "ps1", 2, SandboxPolicy(), LIMITS) as grader:
        ours = grade_many(grader, learners, workers=2)
    assert {n: r.score for n, r in ours.items()} == {"bitdiddle": 1.5, "hacker": 3.0}
    for learner in learners:
        assert cells(ours[learner]) == cells(stock[learner])
        assert ours[learner].max_score == stock[learner].max_score == 13.0
        assert ours[learner].flags == ()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LMS_CELL_TIMEOUT": "5"}
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_cli_grade_and_grade_many_print_the_contract(doubling_source: Path, tmp_path: Path) -> None:
    for learner, answer in {"ada": SOLUTION, "bob": "def double(x):\n    return 0\n"}.items():
        nb = doubling_notebook()
        nb.cells[1].source = answer
        (tmp_path / "root" / learner).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "root" / learner / "double-it.ipynb")
    one = run_cli("grade", str(doubling_source), str(tmp_path / "root" / "ada"), "--json")
    assert one.returncode == 0, one.stderr
    result = json.loads(one.stdout)
    assert set(result) >= {"score", "max_score", "notebooks", "errors", "seconds"}
    assert result["score"] == 2.0 and result["max_score"] == 3.0
    assert result["notebooks"]["double-it"]["cells"]["test-double"] == {
        "score": 2.0,
        "max_score": 2.0,
        "status": "passed",
    }
    out = tmp_path / "feedback"
    page = run_cli("feedback", str(doubling_source), str(tmp_path / "root" / "ada"), str(out))
    assert page.returncode == 0, page.stderr
    html = (out / "double-it.html").read_text()
    assert "test-double: 2 / 2" in html and "<script" not in html
    many = run_cli("grade-many", str(doubling_source), str(tmp_path / "root"), "--json")
    assert many.returncode == 0, many.stderr
    learners = json.loads(many.stdout)["learners"]
    assert {name: r["score"] for name, r in learners.items()} == {"ada": 2.0, "bob": 0.0}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not json", "not a notebook (invalid JSON"),
        (b'{"cells": [], "nbformat": 3}', "nbformat 4 required"),
        (b'{"nbformat": 4}', "no cell list"),
    ],
)
def test_cli_bad_submission_is_one_line_and_nonzero(
    doubling_source: Path, tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / "double-it.ipynb").write_bytes(content)
    done = run_cli("grade", str(doubling_source), str(tmp_path), "--json")
    assert done.returncode != 0
    assert done.stdout == ""
    assert reason in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_tampered_tests_and_points_get_what_stock_gives_or_less(
    grader: Grader, doubling_source: Path, tmp_path: Path
) -> None:
    """An emptied test, raised points, an unlocked test, a deleted test: side by side."""
    wrong = "def double(x):\n    return 0\n"
    variants = {}
    for kind in ("emptied", "points", "deleted"):
        nb = doubling_notebook()
        nb.cells[1].source = wrong
        test = nb.cells[2]
        if kind == "emptied":
            test.source = "pass"
            test.metadata["nbgrader"]["locked"] = False
        elif kind == "points":
            test.metadata["nbgrader"]["points"] = 100
            test.source = "pass"
        else:
            del nb.cells[2]
        folder = tmp_path / kind
        folder.mkdir()
        nbformat.write(nb, folder / "double-it.ipynb")
        variants[kind] = folder
    stock = grade_stock(doubling_source, variants)
    for kind, folder in variants.items():
        ours = grader.grade(folder)
        assert score_of(ours) == 0.0 and ours.max_score == 3.0, kind
        assert score_of(ours) <= stock[kind].notebooks["double-it"].cells["test-double"].score


def test_missing_notebook_scores_zero_with_a_reason(grader: Grader, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("I forgot the notebook")
    result = grader.grade(tmp_path)
    assert result.score == 0.0 and result.max_score == 3.0
    assert result.errors == ("double-it.ipynb: not submitted",)


def test_feedback_is_sanitized_and_hides_hidden_tests(grader: Grader, tmp_path: Path) -> None:
    hostile = SOLUTION + (
        "from IPython.display import HTML, display\n"
        "display(HTML('<script>steal()</script><img src=x onerror=alert(1)>"
        '<a href="javascript:alert(2)">click</a><iframe src=//evil></iframe><b>bold</b>\'))\n'
    )
    executed: dict[str, object] = {}
    result = submit(grader, tmp_path, hostile, executed=executed)
    assert score_of(result) == 2.0
    release = grader.assignment.course.release_dir / "double-it.ipynb"
    scores = {g: (c.score, c.max_score) for g, c in result.notebooks["double-it"].cells.items()}
    page = render(executed["double-it"], released_sources(release), scores, "double-it")  # type: ignore[arg-type]
    tags = Tags()
    tags.feed(page)
    assert not {"script", "iframe", "object", "embed", "form"} & {tag for tag, _ in tags.seen}
    for tag, attrs in tags.seen:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, value)
    assert "secret-hidden-test" not in page
    assert "<b>bold</b>" in page and "test-double: 2 / 2" in page
    assert "assert double(2) == 4" in page  # the visible test is shown
    # A failing hidden test: its traceback would quote the hidden line; only its kind is shown.
    fails_hidden = "def double(x):\n    return 2 * x if hasattr(x, 'shape') else int(2 * abs(x))\n"
    executed = {}
    result = submit(grader, tmp_path, fails_hidden, name="hidden", executed=executed)
    assert score_of(result) == 0.0
    scores = {g: (c.score, c.max_score) for g, c in result.notebooks["double-it"].cells.items()}
    page = render(executed["double-it"], released_sources(release), scores, "double-it")  # type: ignore[arg-type]
    assert "secret-hidden-test" not in page and "-14" not in page
    assert "AssertionError: this test includes hidden tests" in page


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def test_gpu_assignment_without_gpus_runs_on_cpu_and_says_so(doubling_source: Path) -> None:
    with grader_for(doubling_source, 1, SandboxPolicy(), LIMITS, gpu=True) as grader:
        result = grader.grade_files(
            {"double-it.ipynb": nbformat.writes(doubling_notebook()).encode()}
        )
    assert score_of(result) == 2.0
    assert result.device == "cpu"
    assert any("graded on the CPU" in e for e in result.errors)


def test_gpu_slots_give_each_kernel_only_its_own_device(tmp_path: Path) -> None:
    """Slots "0,0,1" over two GPUs (a fake driver tree: no GPU here): each sandbox holds one
    slot for its life and has only that GPU's device file; setting CUDA_VISIBLE_DEVICES in
    learner code reaches no other; with every slot taken, the next kernel waits."""
    slots = GpuSlots.parse("0,0,1", fake_gpus(tmp_path, 2))
    probe = (
        "import os\nos.environ['CUDA_VISIBLE_DEVICES'] = '0,1'\n"
        "print(sorted(n for n in os.listdir('/dev') if n.startswith('nvidia')),"
        " os.path.exists('/dev/nvidia0'), os.path.exists('/dev/nvidia1'))"
    )
    with KernelPool(5, SandboxPolicy(), gpu=True, gpu_slots=slots) as pool:
        assert pool.size == 3  # a sandbox per slot
        kernels = [pool.lend(120) for _ in range(3)]
        try:
            assert sorted(k.device for k in kernels) == ["gpu:0", "gpu:0", "gpu:1"]
            for kernel in kernels:
                nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
                execute_notebook(nb, kernel, LIMITS)
                seen = "".join(o.get("text", "") for o in nb.cells[0].outputs)
                own = kernel.device.split(":")[1]
                other = "1" if own == "0" else "0"
                assert f"'nvidia{own}'" in seen and f"'nvidia{other}'" not in seen, seen
                assert "'nvidiactl'" in seen
            started = time.monotonic()
            with pytest.raises(KernelPoolError, match="no kernel became ready"):
                pool.lend(2)
            assert time.monotonic() - started >= 2
        finally:
            for kernel in kernels:
                pool.give_back(kernel)
        with pool.kernel(timeout=120) as again:  # a slot came back: a kernel is warm on it
            assert again.device.startswith("gpu:")


class _NoKernels:
    """A pool whose kernels never start (a broken host): the fault the pool reports as
    KernelStartError, injected, since a real one cannot be caused on demand."""

    def kernel(self) -> Any:
        raise KernelStartError("the kernel did not start: (fork server log)")


def test_a_kernel_that_never_starts_is_the_graders_failure_not_a_zero(
    grader: Grader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grader, "pool", _NoKernels())
    result = submit(grader, tmp_path, SOLUTION)
    assert result.infrastructure == (
        InfrastructureFailure("double-it", "the kernel did not start: (fork server log)"),
    )
    assert result.errors == ("double-it.ipynb: the kernel did not start: (fork server log)",)
    monkeypatch.undo()
    # A learner's own crash is not infrastructure: it scores, as nbgrader scores it.
    crashed = submit(grader, tmp_path, "raise SystemExit(3)", name="crash")
    assert crashed.infrastructure == ()

"""Releases with real nbgrader, and grading with stock nbgrader (the reference scores)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import NotebookError, graded_cells
from autograder.release import ReleaseError, find_leaks, generate_release
from autograder.stock import grade_stock
from tests.course_builder import notebook, write_assignment

PARITY = Path(__file__).resolve().parents[3] / "shared" / "parity" / "nbgrader-docs-ps1"


@pytest.fixture
def assignment(tmp_path: Path) -> Path:
    folder = tmp_path / "source" / "double-it"
    write_assignment(folder)
    return folder


def test_release_strips_solutions_and_hidden_tests(assignment: Path, tmp_path: Path) -> None:
    [released] = generate_release(assignment, tmp_path / "release" / "double-it")
    text = released.read_text()
    assert "secret-solution-line" not in text and "secret-hidden-test" not in text
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text and "YOUR ANSWER HERE" in text
    cells = json.loads(text)["cells"]
    test_cell = next(c for c in cells if c["metadata"]["nbgrader"]["grade_id"] == "test-double")
    assert test_cell["metadata"]["nbgrader"]["locked"] is True
    assert "assert double(2) == 4" in "".join(test_cell["source"])


def test_release_is_never_overwritten(assignment: Path, tmp_path: Path) -> None:
    dest = tmp_path / "release" / "double-it"
    generate_release(assignment, dest)
    with pytest.raises(ReleaseError, match="never overwritten"):
        generate_release(assignment, dest)


def test_stock_grading_gives_source_full_marks_and_release_zero(
    assignment: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release" / "double-it"
    generate_release(assignment, release)
    results = grade_stock(assignment, {"source": assignment, "release": release})
    assert results["source"].autograded() == (2.0, 2.0)
    assert results["release"].autograded() == (0.0, 2.0)
    source_cells = results["source"].notebooks["double-it"].cells
    assert source_cells["test-double"].status == "passed"
    # The source's model answer differs from the release stub: it waits for a human.
    assert source_cells["why-linear"].status == "needs_grading"
    assert results["release"].notebooks["double-it"].cells["why-linear"].status == "unanswered"
    assert results["source"].max_score == 3.0
    assert results["source"].to_json()["notebooks"]["double-it"]["cells"]["test-double"] == {
        "score": 2.0,
        "max_score": 2.0,
        "status": "passed",
    }


def test_stock_grading_matches_nbgraders_published_parity_scores(tmp_path: Path) -> None:
    """nbgrader's own example course: its published raw scores are 1.5 and 3.0 of 13."""
    learners = {name: PARITY / "submitted" / name / "ps1" for name in ("bitdiddle", "hacker")}
    results = grade_stock(PARITY / "source" / "ps1", learners)
    assert results["bitdiddle"].score == 1.5
    assert results["hacker"].score == 3.0
    assert {r.max_score for r in results.values()} == {13.0}


def test_graded_cells_reads_kinds_and_points(assignment: Path) -> None:
    cells = graded_cells(assignment / "double-it.ipynb")
    assert [(c.grade_id, c.points, c.kind) for c in cells] == [
        ("test-double", 2.0, "autograded"),
        ("why-linear", 1.0, "manual"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"cells": "x"}', "no cell list"),
        ('{"cells": [], "nbformat": 3}', "nbformat 4 required"),
    ],
)
def test_malformed_notebooks_are_refused_clearly(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError, match=message):
        graded_cells(path)


def test_duplicate_grade_ids_and_bad_points_are_refused(tmp_path: Path) -> None:
    nb = notebook()
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "test-double"
    path = tmp_path / "dup.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookError, match="used twice"):
        graded_cells(path)
    nb = notebook()
    nb.cells[2].metadata["nbgrader"]["points"] = -1
    nbformat.write(nb, path)
    with pytest.raises(NotebookError, match="invalid points"):
        graded_cells(path)


def test_a_missing_parity_set_fails_loudly() -> None:
    assert (PARITY / "source" / "ps1" / "problem1.ipynb").exists(), (
        "../shared/parity is missing: the parity tests need it beside the checkout"
    )


def test_leak_check_finds_solution_lines_and_model_answers(
    assignment: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release" / "double-it"
    generate_release(assignment, release)
    assert find_leaks(assignment, release) == []
    tampered = nbformat.read(release / "double-it.ipynb", as_version=4)
    tampered.cells[1].source += "\n    return int(2 * x)  # secret-solution-line"
    tampered.cells[3].source = "Doubling is linear because scaling commutes with addition."
    nbformat.write(tampered, release / "double-it.ipynb")
    leaks = find_leaks(assignment, release)
    assert "double-it.ipynb: 'return int(2 * x)  # secret-solution-line'" in leaks
    assert any("scaling commutes" in leak for leak in leaks)

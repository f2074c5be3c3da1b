"""check-courses' comparison with stock nbgrader: any cell scored otherwise is a problem."""

from __future__ import annotations

from autograder.course_check import parity_problems
from autograder.results import CellResult, CellStatus, GradeResult, NotebookResult


def result(score: float, status: CellStatus, flags: tuple[str, ...] = ()) -> GradeResult:
    cell = CellResult(score=score, max_score=2.0, status=status)
    notebook = NotebookResult(score=score, max_score=2.0, cells={"test-double": cell})
    return GradeResult(score=score, max_score=2.0, notebooks={"double-it": notebook}, flags=flags)


def test_equal_scores_are_parity() -> None:
    stock = {"right": result(2.0, "passed"), "wrong": result(0.0, "failed")}
    ours = {"right": result(2.0, "passed"), "wrong": result(0.0, "failed")}
    assert parity_problems(stock, ours) == []


def test_a_cell_scored_otherwise_or_a_flag_is_a_problem() -> None:
    stock = {"right": result(2.0, "passed"), "wrong": result(0.0, "failed")}
    ours = {
        "right": result(0.0, "failed"),
        "wrong": result(0.0, "failed", flags=("a test cell was changed",)),
    }
    assert parity_problems(stock, ours) == [
        "parity: right double-it/test-double: stock 2 (passed), ours 0.0 (failed)",
        "parity: wrong: a test cell was changed",
    ]

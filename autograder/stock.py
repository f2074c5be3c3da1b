"""Grade with stock `nbgrader autograde`: the reference our scores must equal.

Slow (a new kernel per notebook) but exactly nbgrader: used by check-courses and as the
baseline of parity tests and benchmarks.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autograder.nbgrader_cli import CourseDir, generate_in_process
from autograder.notebooks import graded_cells
from autograder.results import CellResult, CellStatus, GradeResult, NotebookResult


def grade_stock(
    source_dir: Path, submissions: Mapping[str, Path], exact: bool = False
) -> dict[str, GradeResult]:
    """Autograde each learner's folder against the source assignment, in one nbgrader run.

    `exact` runs `python -m nbgrader autograde` untouched (benchmarks); by default its start-up
    skips jsonschema's IRI grammar (see autograder/__init__.py), which changes no score."""
    from nbgrader.api import Gradebook  # heavy import, only where grading happens

    kinds = {
        nb.stem: {cell.grade_id: cell.kind for cell in graded_cells(nb)}
        for nb in source_dir.glob("*.ipynb")
    }
    with tempfile.TemporaryDirectory(prefix="stock-") as tmp:
        course = CourseDir(Path(tmp), source_dir)
        generate_in_process(course)  # the same nbgrader code; only autograde is the reference
        learners = dict(submissions)
        for learner, folder in learners.items():
            shutil.copytree(folder, course.submitted_dir(learner))
        started = time.perf_counter()
        course.run("autograde", exact=exact)
        seconds = time.perf_counter() - started
        results: dict[str, GradeResult] = {}
        with Gradebook(course.db_url) as gradebook:
            for learner in learners:
                submission = gradebook.find_submission(course.name, learner)
                notebooks = {}
                for nb in submission.notebooks:
                    tasks = {cell.name for cell in nb.notebook.task_cells}
                    cells = {
                        g.name: _cell(
                            g, "task" if g.name in tasks else kinds.get(nb.name, {}).get(g.name, "")
                        )
                        for g in nb.grades
                    }
                    notebooks[nb.name] = NotebookResult(
                        score=sum(c.score for c in cells.values()),
                        max_score=float(nb.max_score),
                        cells=cells,
                    )
                results[learner] = GradeResult(
                    score=sum(nb.score for nb in notebooks.values()),
                    max_score=float(submission.max_score),
                    notebooks=notebooks,
                    seconds=seconds / len(learners),
                )
    return results


def _cell(grade: Any, kind: str) -> CellResult:
    max_score = float(grade.max_score)
    status: CellStatus
    if grade.manual_score is not None:
        score, status = float(grade.manual_score), "graded"
    elif grade.needs_manual_grade or kind == "task":
        score, status = 0.0, "needs_grading"  # a changed answer: nothing until graded by hand
    elif kind == "manual":
        score, status = float(grade.auto_score or 0.0), "unanswered"
    else:
        score = float(grade.auto_score or 0.0)
        status = "passed" if score >= max_score else "partial" if score > 0 else "failed"
    return CellResult(score=score, max_score=max_score, status=status)

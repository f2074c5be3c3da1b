"""Checking one source assignment before learners meet it: stock nbgrader gives the source full
marks and the untouched release zero, and our autograder scores right, wrong, partly right and
crashing submissions exactly as stock nbgrader scores them, cell by cell.

`flask lms check-courses` runs it for every assignment of courses/; it needs nothing of the LMS.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder.grade import grader_for
from autograder.release import generate_release
from autograder.results import GradeResult
from autograder.sandbox import SandboxPolicy
from autograder.stock import grade_stock
from autograder.variants import make_submissions


@dataclass(frozen=True)
class AssignmentCheck:
    source_score: float  # stock nbgrader's autograded score of the source (must be possible)
    possible: float
    release_score: float  # of the untouched release (must be 0)
    stock_seconds: float  # stock nbgrader's time to grade one submission
    seconds: float  # the whole check
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def check_assignment(source: Path, policy: SandboxPolicy, gpu: bool = False) -> AssignmentCheck:
    """Release the assignment, grade its variants with stock nbgrader and with ours, compare.
    Raises NbgraderError when nbgrader itself refuses the source."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        release = Path(tmp) / source.name
        generate_release(source, release)
        learners = {"source": source, "release": release}
        variants = make_submissions(source, release, Path(tmp) / "sub")
        # right == source and wrong == release: only partly right and crashing are new.
        learners |= {k: v for k, v in variants.items() if k[0] in "pc"}
        stock = grade_stock(source, learners)
        with grader_for(source, 2, policy, gpu=gpu) as grader:
            ours = {name: grader.grade(folder) for name, folder in learners.items()}
    problems = parity_problems(stock, ours)
    source_score, possible = stock["source"].autograded()
    release_score, _ = stock["release"].autograded()
    if source_score != possible:
        failing = [
            grade_id
            for notebook in stock["source"].notebooks.values()
            for grade_id, cell in notebook.cells.items()
            if cell.status in ("failed", "partial")
        ]
        problems.append(
            f"the source scores {source_score:g} of {possible:g} autograded points "
            f"(failing: {', '.join(failing)})"
        )
    if release_score != 0:
        problems.append(f"the untouched release scores {release_score:g} (must be 0)")
    return AssignmentCheck(
        source_score=source_score,
        possible=possible,
        release_score=release_score,
        stock_seconds=stock["source"].seconds,
        seconds=time.perf_counter() - started,
        problems=tuple(problems),
    )


def parity_problems(stock: Mapping[str, GradeResult], ours: Mapping[str, GradeResult]) -> list[str]:
    """Every cell of every learner must score as stock nbgrader scores it, and our grader must
    raise no flag (tampering) on a submission made from the release."""
    problems = []
    for learner, expected in stock.items():
        got = ours[learner]
        for name, notebook in expected.notebooks.items():
            for grade_id, cell in notebook.cells.items():
                mine = got.notebooks[name].cells.get(grade_id)
                if mine is None or (mine.score, mine.status) != (cell.score, cell.status):
                    problems.append(
                        f"parity: {learner} {name}/{grade_id}: stock {cell.score:g} "
                        f"({cell.status}), ours {mine and mine.score} ({mine and mine.status})"
                    )
        problems += [f"parity: {learner}: {flag}" for flag in got.flags]
    return problems

"""Grading results as frozen plain data, and their JSON shape (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

CellStatus = Literal["passed", "partial", "failed", "unanswered", "needs_grading", "graded"]


@dataclass(frozen=True)
class CellResult:
    score: float
    max_score: float
    status: CellStatus
    # Why a visible test failed (its error and traceback), for the learner's instant feedback;
    # empty for a test with hidden parts, whose traceback would show them.
    message: str = ""


@dataclass(frozen=True)
class NotebookResult:
    score: float
    max_score: float
    cells: dict[str, CellResult]


@dataclass(frozen=True)
class InfrastructureFailure:
    """The grader could not grade a notebook (its kernel did not start, even on a second
    try): the grader's failure, not the learner's; a caller retries, never records a score."""

    notebook: str
    reason: str


@dataclass(frozen=True)
class GradeResult:
    score: float
    max_score: float
    notebooks: dict[str, NotebookResult]
    errors: tuple[str, ...] = ()
    seconds: float = 0.0
    flags: tuple[str, ...] = ()  # tampering and containment: what the grader refused to count
    device: str = "cpu"
    # Also told in `errors` (the JSON's one list of problems); here as data for the caller.
    infrastructure: tuple[InfrastructureFailure, ...] = ()

    def autograded(self) -> tuple[float, float]:
        """(points scored, points possible) over the autograded test cells only."""
        cells = [
            c
            for nb in self.notebooks.values()
            for c in nb.cells.values()
            if c.status in ("passed", "partial", "failed")
        ]
        return sum(c.score for c in cells), sum(c.max_score for c in cells)

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "notebooks": {
                name: {
                    "score": nb.score,
                    "max_score": nb.max_score,
                    "cells": {
                        gid: {
                            "score": c.score,
                            "max_score": c.max_score,
                            "status": c.status,
                            **({"message": c.message} if c.message else {}),
                        }
                        for gid, c in nb.cells.items()
                    },
                }
                for name, nb in self.notebooks.items()
            },
            "errors": list(self.errors),
            "flags": list(self.flags),
            "device": self.device,
            "seconds": round(self.seconds, 3),
        }

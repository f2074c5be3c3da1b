"""Read what nbgrader grades in a notebook: its graded cells, their points and kind."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CellKind = Literal["autograded", "manual"]


class NotebookError(ValueError):
    """The file is not a usable nbgrader notebook; the message says why, in one line."""


@dataclass(frozen=True)
class GradedCellSpec:
    grade_id: str
    points: float
    kind: CellKind
    cell_type: str


def load_raw(name: str, data: bytes) -> dict[str, Any]:
    """The notebook's JSON, checked to be nbformat 4 with a cell list (one-line errors)."""
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NotebookError(f"{name}: not a notebook (invalid JSON: {e})") from e
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError(f"{name}: not a notebook (no cell list)")
    if notebook.get("nbformat") != 4:
        raise NotebookError(f"{name}: nbformat 4 required, found {notebook.get('nbformat')}")
    return notebook


def graded_cells(path: Path) -> list[GradedCellSpec]:
    """The graded cells of a notebook, in order.

    nbgrader's rule: a cell with `grade` set is graded; with `solution` also set it is the
    learner's answer, graded by hand; without, it is a test scored by running it.
    """
    notebook = load_raw(path.name, path.read_bytes())
    cells: list[GradedCellSpec] = []
    seen: set[str] = set()
    for number, cell in enumerate(notebook["cells"], start=1):
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        if not meta or not meta.get("grade"):
            continue
        grade_id = meta.get("grade_id")
        if not isinstance(grade_id, str) or not grade_id:
            raise NotebookError(f"{path.name}: graded cell {number} has no grade_id")
        if grade_id in seen:
            raise NotebookError(f"{path.name}: grade_id {grade_id!r} is used twice")
        seen.add(grade_id)
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, int | float) or points < 0:
            raise NotebookError(f"{path.name}: cell {grade_id!r} has invalid points {points!r}")
        kind: CellKind = "manual" if meta.get("solution") else "autograded"
        cells.append(GradedCellSpec(grade_id, float(points), kind, str(cell.get("cell_type"))))
    return cells

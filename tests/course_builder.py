"""Build small nbgrader courses in a folder for tests: real notebooks, real metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _meta(
    grade_id: str, *, solution: bool, grade: bool, locked: bool, points: float = 0
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "grade_id": grade_id,
        "solution": solution,
        "grade": grade,
        "locked": locked,
        "task": False,
        "schema_version": 3,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


SOLUTION = '''def double(x):
    """Twice x, as an int."""
    ### BEGIN SOLUTION
    return int(2 * x)  # secret-solution-line
    ### END SOLUTION
'''

TEST = """assert type(double(2)) is int
assert double(2) == 4
### BEGIN HIDDEN TESTS
assert double(-7) == -14  # secret-hidden-test
### END HIDDEN TESTS
"""


def notebook(test_points: float = 2.0, manual_points: float = 1.0, test: str = TEST) -> Any:
    cells = [
        new_markdown_cell(
            "# Doubling\nWrite `double`.",
            metadata=_meta("intro", solution=False, grade=False, locked=True),
        ),
        new_code_cell(SOLUTION, metadata=_meta("double", solution=True, grade=False, locked=False)),
        new_code_cell(
            test,
            metadata=_meta(
                "test-double", solution=False, grade=True, locked=True, points=test_points
            ),
        ),
    ]
    if manual_points:
        cells.append(
            new_markdown_cell(
                "Doubling is linear because scaling commutes with addition.",
                metadata=_meta(
                    "why-linear", solution=True, grade=True, locked=False, points=manual_points
                ),
            )
        )
    for number, cell in enumerate(cells):
        cell.id = f"cell-{number}"  # nbformat's ids are random: the same notebook, the same bytes
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write_assignment(folder: Path, nb: Any | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{folder.name}.ipynb"
    nbformat.write(nb if nb is not None else notebook(), path)
    return path


def write_course(
    root: Path,
    slug: str = "doubling-101",
    assignments: dict[str, dict[str, Any]] | None = None,
    extra_toml: str = "",
) -> Path:
    """A course folder with the given assignments (slug -> course.toml settings)."""
    assignments = assignments or {"double-it": {}}
    folder = root / slug
    lines = [
        'title = "Doubling 101"',
        'summary = "Numbers, twice."',
        'language = "en"',
        'level = "beginner"',
        "assignments = [" + ", ".join(f'"{a}"' for a in assignments) + "]",
        extra_toml,
    ]
    for a_slug, settings in assignments.items():
        table = {
            "title": f"Assignment {a_slug}",
            "points": 3.0,
            "pass_mark": 2.0,
            "gpu": False,
            "preload": [],
            "due_days": 14,
            "instant_feedback": True,
            **settings,
        }
        lines.append(f"\n[assignment.{a_slug}]")
        for key, value in table.items():
            rendered = (
                ("true" if value else "false")
                if isinstance(value, bool)
                else f'"{value}"'
                if isinstance(value, str)
                else "[" + ", ".join(f'"{v}"' for v in value) + "]"
                if isinstance(value, list)
                else str(value)
            )
            lines.append(f"{key} = {rendered}")
        if not (folder / a_slug).exists():
            write_assignment(folder / a_slug)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "course.toml").write_text("\n".join(lines) + "\n")
    return folder

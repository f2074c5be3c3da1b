"""Submissions made from a source assignment, for parity checks and benchmarks.

right: the source's own solutions; wrong: the release as given; partly: every other answer left
as released; crashing: a cell that raises before the first answer.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode

KINDS = ("right", "wrong", "partly", "crashing")


def make_submissions(
    source: Path, release: Path, root: Path, count: int = len(KINDS)
) -> dict[str, Path]:
    """`count` learner folders under `root`, cycling through the kinds: {learner: folder}."""
    folders = {}
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        learner = f"{kind}-{i:02d}"
        folder = root / learner
        folder.mkdir(parents=True)
        for path in source.iterdir():
            if path.is_file() and path.suffix != ".ipynb":
                (folder / path.name).write_bytes(path.read_bytes())
        for notebook in source.glob("*.ipynb"):
            solved = nbformat.read(notebook, as_version=4)
            given = nbformat.read(release / notebook.name, as_version=4)
            nbformat.write(variant(kind, solved, given, i), folder / notebook.name)
        folders[learner] = folder
    return folders


def variant(kind: str, solved: NotebookNode, given: NotebookNode, seed: int = 0) -> NotebookNode:
    if kind == "wrong":
        return given
    answers = [
        i
        for i, cell in enumerate(solved.cells)
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and cell.cell_type == "code"
    ]
    if kind == "partly":
        for n, index in enumerate(answers):
            if (n + seed) % 2:
                solved.cells[index].source = given.cells[index].source
    if kind == "crashing" and answers:
        cell = solved.cells[answers[0]]
        cell.source = "raise RuntimeError('learner code crashed')\n" + cell.source
    return solved


def learner_notebook(kind: str, source: Path, release: Path | bytes, seed: int = 0) -> bytes:
    """A notebook as a learner saves it: the release (a file, or its bytes), answered as `kind`
    says from the source. Test cells stay as released, so hidden tests never appear in a
    learner's file."""
    released = (release.read_bytes() if isinstance(release, Path) else release).decode("utf-8")
    given = nbformat.reads(released, as_version=4)
    answered = variant(
        kind, nbformat.read(source, as_version=4), nbformat.reads(released, as_version=4), seed
    )
    released_tests = {
        cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source
        for cell in given.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in answered.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in released_tests:
            cell.source = released_tests[grade_id]
    return str(nbformat.writes(answered)).encode()

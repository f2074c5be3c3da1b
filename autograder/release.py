"""Generate the learner version of an assignment with nbgrader's generate_assignment."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from autograder.nbgrader_cli import CourseDir, NbgraderError

# Text that only a source notebook may hold: a release with any of it leaks answers.
SOURCE_ONLY_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
)


# Shorter lines ("return x", "pass") are too generic to tell an answer from ordinary code.
MIN_SECRET_LINE = 12


class ReleaseError(NbgraderError):
    pass


def secret_lines(source_notebook: Path) -> set[str]:
    """Lines only the source may hold: solution code, hidden tests and model written answers,
    minus any line that also appears in the public part of the notebook."""
    public: set[str] = set()
    secret: set[str] = set()
    for cell in json.loads(source_notebook.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = cell.get("source", "")
        lines = [
            line.strip()
            for line in (source if isinstance(source, str) else "".join(source)).splitlines()
        ]
        if cell.get("cell_type") == "markdown":
            (secret if meta.get("solution") else public).update(lines)
            continue
        hidden = False
        for line in lines:
            if line.startswith("### BEGIN SOLUTION") or line.startswith("### BEGIN HIDDEN TESTS"):
                hidden = True
            elif line.startswith("### END SOLUTION") or line.startswith("### END HIDDEN TESTS"):
                hidden = False
            else:
                (secret if hidden else public).add(line)
    return {line for line in secret - public if len(line) >= MIN_SECRET_LINE}


def find_leaks(source_dir: Path, release_dir: Path) -> list[str]:
    """Source-only text found in the release: markers, solution lines, hidden tests, answers."""
    leaks = []
    for released in sorted(release_dir.glob("*.ipynb")):
        text = released.read_text(encoding="utf-8")
        leaks += [f"{released.name}: {marker}" for marker in SOURCE_ONLY_MARKERS if marker in text]
        cells = json.loads(text)["cells"]
        released_lines = {
            line.strip() for cell in cells for line in "".join(cell.get("source", "")).splitlines()
        }
        source = source_dir / released.name
        if source.exists():
            leaks += [
                f"{released.name}: {line!r}"
                for line in sorted(secret_lines(source) & released_lines)
            ]
    return leaks


def generate_release(source_dir: Path, dest_dir: Path) -> list[Path]:
    """Write the release of source_dir into dest_dir (which must not exist); its notebooks.

    Solutions and hidden tests are stripped and test cells locked by nbgrader; the result is
    checked for any leftover source-only text before it is moved into place.
    """
    if dest_dir.exists():
        raise ReleaseError(f"{dest_dir} already exists; a release is never overwritten")
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        course = CourseDir(Path(tmp), source_dir)
        course.run("generate_assignment")
        leaks = find_leaks(source_dir, course.release_dir)
        if leaks:
            raise ReleaseError("release would leak source-only text: " + "; ".join(leaks))
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest_dir.parent))
        shutil.copytree(course.release_dir, staging, dirs_exist_ok=True)
        staging.rename(dest_dir)
    return sorted(dest_dir.glob("*.ipynb"))

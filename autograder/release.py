"""Generate the learner version of an assignment with nbgrader's generate_assignment."""

from __future__ import annotations

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


class ReleaseError(NbgraderError):
    pass


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
        leaks = [
            f"{nb.name}: {marker}"
            for nb in sorted(course.release_dir.glob("*.ipynb"))
            for marker in SOURCE_ONLY_MARKERS
            if marker in nb.read_text(encoding="utf-8")
        ]
        if leaks:
            raise ReleaseError("release would leak source-only text: " + "; ".join(leaks))
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest_dir.parent))
        shutil.copytree(course.release_dir, staging, dirs_exist_ok=True)
        staging.rename(dest_dir)
    return sorted(dest_dir.glob("*.ipynb"))

"""Run stock nbgrader in a private, throw-away course directory.

nbgrader changes the working directory and environment and is not thread-safe, so it runs in a
child process; the course directory is built per call from the source assignment folder.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path


class NbgraderError(RuntimeError):
    pass


# `python -m nbgrader`, minus the 2.5 s jsonschema spends compiling an IRI grammar at every start
# (see autograder/__init__.py): the same nbgrader, the same grading.
NBGRADER_MAIN = (
    "import sys; sys.modules['rfc3987_syntax'] = None; "
    "from nbgrader.apps.nbgraderapp import main; sys.exit(main())"
)


@functools.cache
def _alembic_head() -> str:
    """nbgrader's gradebook schema version, read from its migration scripts in this process.

    nbgrader asks `alembic heads` in a subprocess for every new gradebook, and that subprocess
    imports all of nbgrader (seconds); the answer is a constant of the installed nbgrader.
    """
    import nbgrader
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()
    if head is None:
        raise NbgraderError("nbgrader's gradebook migrations have no head revision")
    return head


def generate_in_process(course: CourseDir) -> None:
    """`nbgrader generate_assignment` through nbgrader's own API, without a new interpreter.

    For a grading process that imports nbgrader anyway; call it before starting threads
    (nbgrader is not thread-safe).
    """
    import nbgrader.api
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    nbgrader.api.get_alembic_version = _alembic_head
    coursedir = CourseDirectory(root=str(course.root), db_url=course.db_url)
    result = NbGraderAPI(coursedir=coursedir).generate_assignment(
        course.name, force=True, create=True
    )
    if not result.get("success"):
        tail = str(result.get("log", "") or result.get("error", "")).strip().splitlines()[-10:]
        raise NbgraderError("nbgrader generate_assignment failed:\n" + "\n".join(tail))


class CourseDir:
    """<root>/source/<name>/ (a copy of the source folder) and its gradebook."""

    def __init__(self, root: Path, source_dir: Path) -> None:
        self.root = root
        self.name = source_dir.name
        self.db_url = f"sqlite:///{root / 'gradebook.db'}"
        shutil.copytree(source_dir, root / "source" / self.name)

    @property
    def release_dir(self) -> Path:
        return self.root / "release" / self.name

    def submitted_dir(self, learner: str) -> Path:
        return self.root / "submitted" / learner / self.name

    def run(self, verb: str, *args: str, timeout: float = 900, exact: bool = False) -> None:
        """`exact`: plain `python -m nbgrader`, for figures that compare against stock."""
        command = [
            sys.executable,
            *(["-m", "nbgrader"] if exact else ["-c", NBGRADER_MAIN]),
            verb,
            self.name,
            *args,
            f"--CourseDirectory.root={self.root}",
            f"--CourseDirectory.db_url={self.db_url}",
            "--force",
        ]
        # nbgrader shells out to alembic and jupyter: the environment's bin/ must be on PATH.
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        try:
            done = subprocess.run(
                command, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            raise NbgraderError(f"nbgrader {verb} took longer than {timeout:.0f} s") from e
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise NbgraderError(f"nbgrader {verb} failed:\n" + "\n".join(tail))

"""Run stock nbgrader in a private, throw-away course directory.

nbgrader changes the working directory and environment and is not thread-safe, so it runs in a
child process; the course directory is built per call from the source assignment folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class NbgraderError(RuntimeError):
    pass


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

    def run(self, verb: str, *args: str, timeout: float = 900) -> None:
        command = [
            sys.executable,
            "-m",
            "nbgrader",
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

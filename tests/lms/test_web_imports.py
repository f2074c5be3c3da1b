"""The web process never imports the grader, nbgrader or Jupyter: learner code and notebook
machinery stay in the worker and the lab hub, and gunicorn stays small. Checked in a clean
interpreter, as gunicorn loads the app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = (
    "autograder",
    "nbgrader",
    "nbclient",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "jupyter_client",
    "jupyter_server",
    "notebook",
    "jupyterlab",
    "tornado",
    "zmq",
)

PROBE = """
import json, sys
import wsgi
app = wsgi.app
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_loading_the_web_app_imports_no_grader_nbgrader_or_jupyter(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/bin:/bin",
        "LMS_INSTANCE_PATH": str(tmp_path),
        "LMS_DATABASE_URL": f"sqlite:///{tmp_path / 'lms.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "flask" in loaded and "lms" in loaded  # the probe did load the app
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))

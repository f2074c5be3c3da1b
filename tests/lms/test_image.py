"""The container image's entry point: the lab hub's private API is never bound to every
interface (the review found `--api-host 0.0.0.0`), unless the operator names an address."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def labs_command(env: dict[str, str]) -> list[str]:
    """The command the entry point's `labs` verb runs (with `exec` swapped for printing)."""
    script = ENTRYPOINT.read_text().replace("exec flask", "printf '%s\\n' flask")
    done = subprocess.run(
        ["/bin/sh", "-c", script, "entrypoint", "labs"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_the_images_hub_api_listens_on_the_loopback_unless_told() -> None:
    command = labs_command({})
    assert command[command.index("--api-host") + 1] == "127.0.0.1"
    assert "0.0.0.0" not in command[command.index("--api-host") :]
    told = labs_command({"LAB_HUB_API_HOST": "10.1.2.3"})
    assert told[told.index("--api-host") + 1] == "10.1.2.3"


def test_the_hub_commands_api_host_defaults_to_the_loopback(
    app: Flask, runner: FlaskCliRunner
) -> None:
    help_text = runner.invoke(args=["lms", "labs", "--help"]).output
    assert "--api-host" in help_text and "127.0.0.1" in help_text

"""Browser tests: `make run` serves the real app (gunicorn), headless Chromium drives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.mailserver import MailServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[str], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log


@pytest.fixture(scope="session")
def e2e_mail() -> Iterator[MailServer]:
    """The SMTP server `make run` mails to in these tests (a real one, on the loopback)."""
    with MailServer() as server:
        yield server


@pytest.fixture(scope="session")
def make_run(tmp_path_factory: pytest.TempPathFactory, e2e_mail: MailServer) -> Iterator[Server]:
    """`make run` on a fresh instance folder and a free port, stopped with Ctrl-C (SIGINT).
    Its mail goes to e2e_mail (without LMS_SMTP_URL it would be files in instance/mail)."""
    instance = tmp_path_factory.mktemp("instance")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    # Labs idle for 30 s are stopped, so that the lab tests can watch it happen. Four lab
    # kernels, not the machine's default (8 on 2 cores): warming fewer leaves the 2-core CI
    # machine's CPU to the journeys, whose steps wait seconds, not minutes.
    env.update(
        LMS_INSTANCE_PATH=str(instance),
        PORT=str(port),
        LMS_LAB_IDLE_MINUTES="0.5",
        LMS_LAB_KERNELS="4",
        LMS_SMTP_URL=e2e_mail.url,
    )
    log = instance / "make-run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as response:
                if json.load(response)["status"] == "ok":
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"make run did not serve /healthz:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield server
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("make run did not stop on Ctrl-C")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/run installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()

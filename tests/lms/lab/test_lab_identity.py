"""A real lab server (jupyter-server, as the lab hub starts it): it opens only to the hub's
credential for it, never to an LMS cookie (it holds no secret to check one with) or a Jupyter
token; and nothing in it runs code outside a kernel: no extension manager (the review
installed and uninstalled packages with pip through it), no build, no nbconvert, no terminals,
no nbgrader tools, and its kernel spec serves no file of this project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms.lab import server
from lms.lab.hub import free_port
from tests import factories
from tests.conftest import PASSWORD, Auth

EMPTY_NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
TOKEN = "lab-server-credential-" + "x" * 24


def status(
    url: str,
    cookie: str | None = None,
    token: str | None = None,
    method: str = "GET",
    body: dict[str, str] | None = None,
) -> int:
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if cookie is not None:
        request.add_header("Cookie", cookie)
    if token is not None:
        request.add_header("X-Lab-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except urllib.error.URLError:
        return 0  # not listening (yet)


@pytest.fixture
def lab(app: Flask, tmp_path: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """The first learner's lab server, started with the environment the hub gives it."""
    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    factories.learner(owner.enrolments[0].cohort, "other@test.org")
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "lab.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    private = tmp_path / "private"
    private.mkdir()
    config = server.write_config(private / "lab.json", owner.id)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        **server.environment(private),
        server.TOKEN_ENV: TOKEN,
    }
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            server.command(config, root, port),
            env=env,
            cwd=private,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}{server.base_url(owner.id)}"
    try:
        deadline = time.monotonic() + 30
        while status(base + "api/status") == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the lab server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, owner.id, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # jupyter-server can miss SIGTERM when its handler's log line meets another write
            # to stderr ("reentrant call"); the hub escalates to SIGKILL too.
            process.kill()
            process.wait(timeout=5)


def session_cookie(app: Flask, client: FlaskClient, auth: Auth, email: str) -> str:
    auth.login(email, PASSWORD)
    name = app.config.get("SESSION_COOKIE_NAME", "session")
    cookie = client.get_cookie(name)
    assert cookie is not None
    return f"{name}={cookie.value}"


def test_only_the_hubs_credential_opens_the_lab(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    lab: tuple[str, int, subprocess.Popen[bytes]],
) -> None:
    base, _owner, _process = lab
    contents = base + "api/contents"
    assert status(contents, token=TOKEN) == 200
    assert status(base + "api/contents/lab.ipynb", token=TOKEN) == 200

    # The owner's own, valid LMS session: the server cannot check it and does not try.
    owner = session_cookie(app, client, auth, "owner@test.org")
    assert status(contents, owner) == 403
    assert status(contents) == 403  # nothing at all
    assert status(contents + "?token=anything") == 403  # Jupyter tokens open nothing
    assert status(contents, token=TOKEN[:-2] + "yy") == 403  # a made-up credential
    assert status(contents, token="") == 403


def test_the_server_holds_no_lms_secret(
    app: Flask, lab: tuple[str, int, subprocess.Popen[bytes]]
) -> None:
    """Not in its environment, not on its command line (the credential is also taken out of
    the environment once read, so nothing the server starts inherits it)."""
    _base, _owner, process = lab
    environ = Path(f"/proc/{process.pid}/environ").read_bytes()
    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    secret = str(app.secret_key).encode()
    for seen in (environ, cmdline):
        assert secret not in seen
        assert b"LMS_SECRET" not in seen and b"LMS_LAB_SECRET" not in seen


def test_nothing_in_a_lab_installs_converts_or_runs_code_outside_a_kernel(
    lab: tuple[str, int, subprocess.Popen[bytes]],
) -> None:
    base, _owner, _process = lab
    probe = "autograder-lab-probe-package"
    # JupyterLab's extension manager (pip install / uninstall in the server's environment).
    assert status(base + "lab/api/extensions", token=TOKEN) not in (200, 202)
    for command in ("install", "uninstall"):
        body = {"cmd": command, "extension_name": probe}
        assert status(base + "lab/api/extensions", token=TOKEN, method="POST", body=body) not in (
            200,
            202,
        )
    # Uninstalling a package that is installed would have removed it: still importable.
    done = subprocess.run(
        [sys.executable, "-c", "import websocket"], capture_output=True, check=False
    )
    assert done.returncode == 0
    # JupyterLab's build (the JavaScript toolchain), nbconvert's exporters, terminals,
    # language servers, nbgrader's instructor tools.
    assert status(base + "lab/api/build", token=TOKEN, method="POST", body={}) not in (200, 202)
    assert status(base + "nbconvert/html/lab.ipynb", token=TOKEN) == 404
    # The list of export formats answers, empty (the notebook page asks for it on every load).
    formats = urllib.request.Request(base + "api/nbconvert", headers={"X-Lab-Token": TOKEN})
    with urllib.request.urlopen(formats, timeout=10) as response:
        assert json.load(response) == {}
    assert status(base + "api/terminals", token=TOKEN) == 404
    assert status(base + "lsp/status", token=TOKEN) == 404
    assert status(base + "formgrader", token=TOKEN) == 404
    # The kernel spec's resources are ipykernel's logos, never this project's source.
    assert status(base + "kernelspecs/python3/logo-64x64.png", token=TOKEN) == 200
    for name in ("hub.py", "identity.py", "kernels.py", "__init__.py"):
        assert status(base + f"kernelspecs/python3/{name}", token=TOKEN) == 404

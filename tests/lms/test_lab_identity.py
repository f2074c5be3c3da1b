"""A real lab server (jupyter-server) with the LMS identity provider: only the owner's LMS
session opens it; another learner's session, no session, a token or a forged cookie get
403; terminals and nbgrader's instructor tools are not there."""

from __future__ import annotations

import os
import subprocess
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


def status(url: str, cookie: str | None = None) -> int:
    request = urllib.request.Request(url)
    if cookie is not None:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except urllib.error.URLError:
        return 0  # not listening (yet)


@pytest.fixture
def lab(app: Flask, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The first learner's lab server, as the lab manager will start it."""
    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    factories.learner(owner.enrolments[0].cohort, "other@test.org")
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "lab.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    config = server.write_config(
        tmp_path / "lab.json",
        owner.id,
        app.config.get("SESSION_COOKIE_NAME", "session"),
        int(app.permanent_session_lifetime.total_seconds()),
    )
    port = free_port()
    env = {**os.environ, server.SECRET_ENV: str(app.secret_key)}
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            server.command(config, root, port), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}{server.base_url(owner.id)}"
    try:
        deadline = time.monotonic() + 30
        while status(base + "api/status") == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the lab server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, owner.id
    finally:
        process.terminate()
        process.wait(timeout=10)


def session_cookie(app: Flask, client: FlaskClient, auth: Auth, email: str) -> str:
    auth.login(email, PASSWORD)
    name = app.config.get("SESSION_COOKIE_NAME", "session")
    cookie = client.get_cookie(name)
    assert cookie is not None
    return f"{name}={cookie.value}"


def test_only_the_owners_lms_session_opens_the_lab(
    app: Flask, client: FlaskClient, auth: Auth, lab: tuple[str, int]
) -> None:
    base, _owner = lab
    contents = base + "api/contents"
    owner = session_cookie(app, client, auth, "owner@test.org")
    assert status(contents, owner) == 200
    assert status(base + "api/contents/lab.ipynb", owner) == 200

    auth.logout()
    other = session_cookie(app, client, auth, "other@test.org")
    assert status(contents, other) == 403  # even with the link
    assert status(contents) == 403  # no session
    assert status(contents + "?token=anything") == 403  # tokens open nothing
    name, _, value = owner.partition("=")
    assert status(contents, f"{name}={value[:-2]}xx") == 403  # a forged signature

    # Nothing that runs code outside the kernel sandbox, nor the instructors' grading tools.
    assert status(base + "api/terminals", owner) == 404
    assert status(base + "formgrader", owner) == 404

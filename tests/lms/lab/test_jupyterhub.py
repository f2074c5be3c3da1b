"""JupyterHub as the lab engine (issue 18), run for real: `flask lms hub` starts JupyterHub 6
with its proxy (configurable-http-proxy) in front of a real LMS server, and the LMS's
authenticator (lms.lab.jupyterhub_auth). The proxy answers for the whole site: /hub/api is
JupyterHub's, every other path the LMS's; a learner is signed in to JupyterHub by their LMS
session and by nothing else; JupyterHub holds no LMS secret; the LMS drives it through the REST
API with its service token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from autograder.sandbox import FIRST_UID
from lms.lab import jupyterhub_service_token, lab_identity_token
from lms.lab.client import LabClient
from lms.lab.hub import free_port
from lms.lab.server import TRANSLATION_SETTINGS
from lms.services import sessions
from tests import factories
from tests.lms.lab.test_lab_hub import HUB_ENV, Hub, launch_hub, session_cookie, stop_hub
from tests.netns import descendants

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 90.0
# JupyterHub meets the LMS over HTTP only: one database backend is enough here.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class RunningHub:
    url: str  # the site's address: JupyterHub's proxy
    process: subprocess.Popen[bytes]
    log: Path
    service_token: str

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.service_token}"},
            timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["LAB_HUB_URL"] = f"http://127.0.0.1:{free_port()}"  # the kernel service
    return app_config


@pytest.fixture
def lms_server(app: Flask) -> Iterator[str]:
    """The test's app served over HTTP in a thread (JupyterHub's proxy and authenticator
    reach it as they would gunicorn)."""
    server: BaseWSGIServer = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def jupyterhub(app: Flask, lms_server: str, tmp_path: Path) -> Iterator[RunningHub]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    for key in ("DATABASE_URL", "QUEUE_URL", "DATA_DIR", "SECRET_KEY", "LAB_HUB_URL"):
        env[f"LMS_{key}"] = str(app.config[key])
    env.update(LMS_INSTANCE_PATH=str(tmp_path / "hub-instance"), FLASK_APP="wsgi")
    port = free_port()
    log = tmp_path / "jupyterhub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "lms", "hub", "--port", str(port)]
            + ["--lms-url", lms_server, "--hub-port", str(free_port())]
            + ["--proxy-api-port", str(free_port())],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = RunningHub(
        f"http://127.0.0.1:{port}",
        process,
        log,
        jupyterhub_service_token(str(app.config["SECRET_KEY"])),
    )
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterHub exited ({process.returncode}):\n{hub.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterHub did not answer in time:\n{hub.log_tail()}")
            try:
                if requests.get(f"{hub.url}/hub/api", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        yield hub
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        print(hub.log_tail())  # shown by pytest when the test failed


def test_the_site_answers_jupyterhubs_api_and_the_lms_behind_one_address(
    app: Flask, jupyterhub: RunningHub
) -> None:
    version = requests.get(f"{jupyterhub.url}/hub/api", timeout=5).json()
    assert version["version"] == "6.1.1"
    # Every other path is the LMS's, through the same proxy.
    assert requests.get(f"{jupyterhub.url}/healthz", timeout=5).json()["status"] == "ok"
    assert "/login" in requests.get(f"{jupyterhub.url}/learn/", timeout=5).url
    # The LMS's service token drives JupyterHub: it may list the users (none yet).
    listed = jupyterhub.api("GET", "/users")
    assert listed.status_code == 200 and listed.json() == []
    assert requests.get(f"{jupyterhub.url}/hub/api/users", timeout=5).status_code == 403


def test_jupyterhub_holds_no_lms_secret(app: Flask, jupyterhub: RunningHub) -> None:
    secret = str(app.config["SECRET_KEY"])
    seen = descendants([jupyterhub.process.pid])
    for pid in seen:
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert secret not in environ
        assert "LMS_SECRET_KEY" not in environ and "LMS_DATABASE_URL" not in environ
    # What it does hold answers one question only: whose a session is.
    assert lab_identity_token(secret) != secret


def test_a_learner_is_signed_in_by_their_lms_session_and_by_nothing_else(
    app: Flask, jupyterhub: RunningHub
) -> None:
    learner = factories.learner(factories.cohort(factories.program()))
    cookie, token = session_cookie(app, learner)
    browser = requests.Session()
    browser.cookies.set("session", cookie)
    page = browser.get(f"{jupyterhub.url}/hub/lms-login", timeout=10)
    assert page.status_code == 200, jupyterhub.log_tail()
    me = browser.get(f"{jupyterhub.url}/hub/api/user", timeout=5)
    assert me.status_code == 200 and me.json()["name"] == str(learner.id)
    assert jupyterhub.api("GET", f"/users/{learner.id}").status_code == 200

    # No LMS session, a forged one, or one signed out: sent to the LMS's sign-in.
    for forged in ("", "not-a-session", cookie[:-4] + "AAAA"):
        stranger = requests.Session()
        if forged:
            stranger.cookies.set("session", forged)
        refused = stranger.get(f"{jupyterhub.url}/hub/lms-login", allow_redirects=False)
        assert refused.status_code == 302
        assert refused.headers["Location"].startswith("/login?next=")
    assert sessions.revoke(token, "signed out")
    again = requests.Session()
    again.cookies.set("session", cookie)
    refused = again.get(f"{jupyterhub.url}/hub/lms-login", allow_redirects=False)
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")


def test_the_identity_question_needs_the_hubs_token(app: Flask, lms_server: str) -> None:
    learner = factories.learner(factories.cohort(factories.program()))
    cookie, _token = session_cookie(app, learner)
    token = lab_identity_token(str(app.config["SECRET_KEY"]))
    ask = f"{lms_server}/labs/identity"
    body = json.dumps({"cookie": cookie})
    headers = {"Content-Type": "application/json"}
    assert requests.post(ask, data=body, headers=headers, timeout=5).status_code == 403
    wrong = {**headers, "Authorization": "token " + "0" * 64}
    assert requests.post(ask, data=body, headers=wrong, timeout=5).status_code == 403
    right = {**headers, "Authorization": f"token {token}"}
    answer = requests.post(ask, data=body, headers=right, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"name": str(learner.id)}
    assert requests.post(ask, data="{}", headers=right, timeout=5).status_code == 400
    assert requests.post(ask, data="not json", headers=right, timeout=5).status_code == 400


@pytest.fixture
def kernel_service(app: Flask, tmp_path: Path) -> Iterator[Hub]:
    """`flask lms labs`: here, the pool of sandboxed kernels JupyterHub's lab servers borrow."""
    service = launch_hub(app, tmp_path, HUB_ENV, name="kernels")
    try:
        yield service
    finally:
        stop_hub(service)


def wait_until(check: Any, what: str, hub: RunningHub, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{hub.log_tail()}")
        time.sleep(0.2)


def test_a_lab_on_jupyterhub_is_sandboxed_runs_pool_kernels_and_admits_only_its_owner(
    app: Flask, kernel_service: Hub, jupyterhub: RunningHub
) -> None:
    cohort = factories.cohort(factories.program())
    owner = factories.learner(cohort, "owner@test.org")
    other = factories.learner(cohort, "other@test.org")
    name = str(owner.id)
    # The LMS starts the learner's server through JupyterHub's API, in their language.
    assert jupyterhub.api("POST", f"/users/{name}").status_code == 201
    started = jupyterhub.api("POST", f"/users/{name}/server", json={"language": "vi"})
    assert started.status_code in (201, 202), started.text

    def ready() -> bool:
        server = jupyterhub.api("GET", f"/users/{name}").json()["servers"].get("", {})
        return bool(server.get("ready"))

    wait_until(ready, "the lab server", jupyterhub)
    settings = Path(app.config["DATA_DIR"]) / "labs" / name / "config" / TRANSLATION_SETTINGS
    assert json.loads(settings.read_text()) == {"locale": "vi_VN"}

    # The learner's browser, signed in to the LMS only, reaches their lab through OAuth.
    cookie, _token = session_cookie(app, owner)
    browser = LabClient(f"{jupyterhub.url}/user/{name}/", {"session": cookie}, timeout=60)
    try:
        page = browser.http.get(browser.base + "tree", timeout=60)
        assert page.status_code == 200 and page.url == browser.base + "tree"
        kernel = browser.start_kernel("")
        probe = "import os; print(os.getuid(), 6 * 7)"
        uid, answer = browser.execute(kernel, probe).split()
        assert answer == "42" and int(uid) >= FIRST_UID  # a pool kernel, in its sandbox
        assert kernel_service.api(f"/servers/{owner.id}")["kernels"] == 1
        server_pid = int((Path(app.config["DATA_DIR"]) / "labs" / name / "server.pid").read_text())
        status = Path(f"/proc/{server_pid}/status").read_text()
        assert "Uid:\t0\t" in status  # bwrap itself; the server under it runs as a lab uid
    finally:
        browser.http.close()

    # Another learner, signed in to the LMS, gets nothing of it.
    other_cookie, _ = session_cookie(app, other)
    stranger = requests.Session()
    stranger.cookies.set("session", other_cookie)
    refused = stranger.get(f"{jupyterhub.url}/user/{name}/api/contents", timeout=30)
    assert refused.status_code in (403, 404) or "/user/" not in refused.url

    # Stopped through the API: the server is gone and its kernels are back in the pool.
    assert jupyterhub.api("DELETE", f"/users/{name}/server").status_code in (202, 204)
    wait_until(
        lambda: not jupyterhub.api("GET", f"/users/{name}").json()["servers"],
        "the lab server to stop",
        jupyterhub,
    )
    assert kernel_service.api(f"/servers/{owner.id}")["kernels"] == 0
    assert not Path(f"/proc/{server_pid}").exists()

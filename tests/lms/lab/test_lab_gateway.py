"""A lab server whose kernels run on a real Jupyter Kernel Gateway (KERNEL_GATEWAY_URL): the
kernel specs, the kernels and their code are the gateway's, reached through the lab server with
the credential the hub adds for its owner, and the lab still admits no one else (an LMS cookie
opens nothing there). Without a gateway the lab's configuration is the sandboxed pool's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from lms.extensions import db
from lms.lab import server
from lms.lab.client import LabClient
from lms.lab.hub import free_port
from lms.lab.kernels import SandboxKernelSpecManager
from tests import factories
from tests.lms.lab.test_lab_identity import status

REPO = Path(__file__).resolve().parents[3]
# A kernel spec only the gateway has: the lab offering it shows its specs are the gateway's.
MARKER_SPEC = "gateway-marker"


@dataclass
class Gateway:
    url: str
    pid: int  # the gateway's process, the parent of its kernels

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def kernel_ids(self) -> set[str]:
        return {str(k["id"]) for k in self.get("/api/kernels")}


@dataclass
class Lab:
    base: str
    owner_headers: dict[str, str]  # what the hub adds to its owner's requests
    other_cookie: dict[str, str]  # another learner's LMS session


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], log: Path, what: str, cookie: str | None = None
) -> None:
    deadline = time.monotonic() + 60
    while status(url, cookie) == 0:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A Jupyter Kernel Gateway on a free local port, with Jupyter folders of its own."""
    home = tmp_path_factory.mktemp("gateway")
    jupyter_path = home / "share"
    marker = jupyter_path / "kernels" / MARKER_SPEC
    marker.mkdir(parents=True)
    (marker / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (kernel gateway)",
                "language": "python",
            }
        )
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_PATH": str(jupyter_path),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    port = free_port()
    log = home / "gateway.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kernel_gateway",
                "--KernelGatewayApp.ip=127.0.0.1",
                f"--KernelGatewayApp.port={port}",
                "--KernelGatewayApp.port_retries=0",
                # GET /api/kernels (KG_LIST_KERNELS), off by default: a lab server needs it
                # (its api/status and api/kernels ask the gateway), and so does this test.
                "--JupyterWebsocketPersonality.list_kernels=True",
            ],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url + "/api", process, log, "the kernel gateway")
        yield Gateway(url, process.pid)
    finally:
        stop(process)


def session_cookie(app: Flask, user_id: int) -> dict[str, str]:
    """The LMS's signed session cookie of a signed-in user, as the browser holds it."""
    from lms.models import User
    from lms.services import sessions

    user = db.session.get(User, user_id)
    assert user is not None
    token = sessions.start(user, "127.0.0.1", "tests")
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    name = app.config.get("SESSION_COOKIE_NAME", "session")
    return {name: str(serializer.dumps({"_user_id": str(user_id), "sid": token}))}


TOKEN = "hub-credential-of-this-lab-" + "k" * 20


@pytest.fixture
def lab(app: Flask, tmp_path: Path, gateway: Gateway) -> Iterator[Lab]:
    """The first learner's lab server, configured with the kernel gateway."""
    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    other = factories.learner(owner.enrolments[0].cohort, "other@test.org")
    root = tmp_path / "workspace"
    root.mkdir()
    config = server.write_config(tmp_path / "lab.json", owner.id, gateway_url=gateway.url)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        **server.environment(tmp_path),
        server.TOKEN_ENV: TOKEN,
        "PYTHONPATH": str(REPO),  # the identity provider, run from outside the checkout
    }
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            server.command(config, root, port),
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}{server.base_url(owner.id)}"
    try:
        wait_until_answering(base + "api/status", process, log, "the lab server")
        yield Lab(base, {"X-Lab-Token": TOKEN}, session_cookie(app, other.id))
    finally:
        stop(process)


def as_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_the_labs_kernels_run_on_the_gateway(lab: Lab, gateway: Gateway) -> None:
    owner = LabClient(lab.base, headers=lab.owner_headers, timeout=60)

    # The kernel specs the lab offers are the gateway's, not the sandboxed pool's.
    offered = owner.api("GET", "api/kernelspecs")
    on_gateway = gateway.get("/api/kernelspecs")
    assert MARKER_SPEC in offered["kernelspecs"]
    assert set(offered["kernelspecs"]) == set(on_gateway["kernelspecs"])
    assert offered["default"] == on_gateway["default"]

    before = gateway.kernel_ids()
    kernel_id = owner.start_kernel()
    try:
        assert owner.execute(kernel_id, "print(1+1)").strip() == "2"
        # It runs on the gateway: listed there, and a process the gateway started.
        assert kernel_id in gateway.kernel_ids() - before
        parent = owner.execute(kernel_id, "import os; print(os.getppid())")
        assert parent.strip() == str(gateway.pid)
        assert kernel_id in {k["id"] for k in owner.api("GET", "api/kernels")}
    finally:
        owner.shutdown_kernel(kernel_id)
    # Shut down through the lab, it is gone from the gateway too.
    assert until(lambda: kernel_id not in gateway.kernel_ids())
    assert owner.api("GET", "api/kernels") == []


def test_only_the_owner_reaches_the_gateways_kernels(lab: Lab) -> None:
    kernels = lab.base + "api/kernels"
    assert status(kernels, token=TOKEN) == 200
    assert status(kernels, as_header(lab.other_cookie)) == 403
    assert status(kernels) == 403
    assert status(lab.base + "api/kernelspecs", as_header(lab.other_cookie)) == 403


def test_without_a_gateway_the_lab_uses_the_sandboxed_pool(tmp_path: Path) -> None:
    pooled = json.loads(server.write_config(tmp_path / "pool.json", 7).read_text())
    assert "GatewayClient" not in pooled
    assert pooled["ServerApp"]["kernel_spec_manager_class"] == (
        f"{SandboxKernelSpecManager.__module__}.{SandboxKernelSpecManager.__name__}"
    )

    gateway = json.loads(
        server.write_config(tmp_path / "gateway.json", 7, gateway_url="http://gw:8888").read_text()
    )
    assert gateway["GatewayClient"]["url"] == "http://gw:8888"
    assert "kernel_spec_manager_class" not in gateway["ServerApp"]
    # The pool's kernels go back to it when no browser watches them; a gateway's are its own.
    assert pooled["ServerApp"].pop("kernel_manager_class") == "lms.lab.serverapp.LabKernelManager"
    released = pooled.pop("LabKernelManager")
    assert released["release_unwatched_after"] == 120.0 and released["cull_interval"] == 30
    culled = gateway.pop("MappingKernelManager")
    assert released["cull_idle_timeout"] == culled["cull_idle_timeout"] == 1800
    # Everything else is the same configuration.
    del pooled["ServerApp"]["kernel_spec_manager_class"], gateway["GatewayClient"]
    assert pooled == gateway


def test_a_lab_servers_config_under_jupyterhub_leaves_sign_in_to_its_extension(
    tmp_path: Path,
) -> None:
    config = json.loads(server.write_config(tmp_path / "lab.json", 7, jupyterhub=True).read_text())
    app = config["ServerApp"]
    assert app["jpserver_extensions"] == {"notebook": True, "jupyterhub": True}
    for key in ("identity_provider_class", "base_url", "tornado_settings"):
        assert key not in app  # JupyterHub's single-user extension sets them
    assert "LmsIdentityProvider" not in config
    assert app["terminals_enabled"] is False and config["LabApp"]["extension_manager"] == "readonly"
    assert app["kernel_manager_class"] == "lms.lab.serverapp.LabKernelManager"

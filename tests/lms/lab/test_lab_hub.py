"""The real lab hub (`flask lms labs`) end to end: the proxy, learners' lab servers (sandboxed
themselves), the pool of bubblewrap-sandboxed kernels they borrow, what the hub records in the
LMS database, the per-learner kernel cap, who may open a lab (checked against the LMS's
server-side sessions), and idle culling that keeps the learner's files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import websocket
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from autograder.sandbox import FIRST_UID, UID_COUNT
from lms.extensions import db
from lms.lab import hub_token
from lms.lab.client import LabClient, LabClientError
from lms.lab.hub import free_port
from lms.models import Assignment, LabKernel, LabServer, User
from lms.services import labs, sessions
from tests import factories

ROOT = Path(__file__).resolve().parents[3]
HUB_START_TIMEOUT = 60.0
# Few kernels: a small machine runs the pool, two lab servers and the tests.
HUB_ENV = {
    "LMS_LAB_KERNELS": "2",
    "LMS_LAB_KERNELS_PER_LEARNER": "1",
    "LMS_LAB_IDLE_MINUTES": "30",
    "LMS_LAB_PRELOAD": "",
}
SANDBOX_PROBE = """
import json, os, socket
try:
    socket.create_connection(("127.0.0.1", {api_port}), timeout=3).close()
    network = "reachable"
except OSError:
    network = "unreachable"
print(json.dumps({{
    "sum": 1 + 1,
    "data": open("data.csv").read(),
    "nested": open("inputs/more.txt").read(),
    "home": os.environ.get("HOME"),
    "cwd": os.getcwd(),
    "source_visible": os.path.exists({source!r}),
    "data_dir_visible": os.path.exists({data_dir!r}),
    "lms_env": sorted(k for k in os.environ if "LMS" in k),
    "secret_in_env": any({secret!r} in v for v in os.environ.values()),
    "network": network,
    "uid": os.getuid(),
}}))
"""


@dataclass
class Hub:
    port: int  # the proxy: where browsers connect
    api_url: str
    token: str
    cookie_name: str
    process: subprocess.Popen[bytes]
    log: Path

    def lab_url(self, user: User) -> str:
        return f"http://127.0.0.1:{self.port}/lab/{user.id}/"

    def api(self, path: str) -> Any:
        request = urllib.request.Request(
            self.api_url + path, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["LAB_HUB_URL"] = f"http://127.0.0.1:{free_port()}"
    return app_config


@pytest.fixture
def hub_env() -> dict[str, str]:
    """The hub's LMS_LAB_* settings (a test parametrizes this to change them)."""
    return HUB_ENV


def _lab_processes(marker: str) -> list[int]:
    """Processes whose command line names this test's lab folder: its lab servers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            found.append(int(entry.name))
    return found


def launch_hub(
    app: Flask,
    tmp_path: Path,
    hub_env: dict[str, str],
    name: str = "hub",
    lms_url: str | None = None,
) -> Hub:
    """Start `flask lms labs` on the test's database and data folder; its API answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    for key in ("DATABASE_URL", "QUEUE_URL", "DATA_DIR", "COURSES_DIR", "SECRET_KEY"):
        env[f"LMS_{key}"] = str(app.config[key])
    env.update(hub_env)
    env.update(
        LMS_LAB_HUB_URL=str(app.config["LAB_HUB_URL"]),
        LMS_INSTANCE_PATH=str(tmp_path / f"{name}-instance"),
        FLASK_APP="wsgi",
    )
    port = free_port()
    # By default no LMS runs there: the labs are tested.
    lms_url = lms_url or f"http://127.0.0.1:{free_port()}"
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "lms", "labs", "--port", str(port)]
            + ["--lms-url", lms_url],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        port,
        str(app.config["LAB_HUB_URL"]).rstrip("/"),
        hub_token(str(app.config["SECRET_KEY"])),
        str(app.config.get("SESSION_COOKIE_NAME") or "session"),
        process,
        log,
    )
    deadline = time.monotonic() + HUB_START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"the lab hub exited ({process.returncode}):\n{hub.log_tail()}")
        if time.monotonic() > deadline:
            stop_hub(hub)
            pytest.fail(f"the lab hub's API did not answer in time:\n{hub.log_tail()}")
        try:
            hub.api("/servers")
            return hub
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)


def stop_hub(hub: Hub) -> None:
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)  # stops its lab servers, closes its pool
        try:
            hub.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.process.pid, signal.SIGKILL)
            hub.process.wait()


@pytest.fixture
def hub(app: Flask, tmp_path: Path, hub_env: dict[str, str]) -> Iterator[Hub]:
    """The hub, stopped (SIGTERM, as in production) at the end, with whatever it left
    killed."""
    started: list[Hub] = []
    try:
        started.append(launch_hub(app, tmp_path, hub_env))
        yield started[0]
    finally:
        for running in started:
            stop_hub(running)
        for pid in _lab_processes(str(Path(app.config["DATA_DIR"]) / "labs")):
            try:
                os.killpg(pid, signal.SIGKILL)  # a lab server the hub failed to stop
            except OSError:
                pass
        db.session.rollback()


def session_cookie(app: Flask, user: User) -> tuple[str, str]:
    """A signed-in browser's LMS session cookie, with its server-side session: (cookie, token)."""
    token = sessions.start(user, "127.0.0.1", "tests")
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return serializer.dumps({"_user_id": str(user.id), "sid": token}), token


def lab_client(app: Flask, hub: Hub, owner: User, holder: User | None = None) -> LabClient:
    """A browser of `owner`'s lab, signed in to the LMS as `holder` (default: the owner)."""
    cookie, _token = session_cookie(app, holder or owner)
    return LabClient(hub.lab_url(owner), {hub.cookie_name: cookie}, timeout=60)


def wait_for(check: Callable[[], bool], what: str, hub: Hub, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # see what the hub committed
        if check():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; the hub's log:\n{hub.log_tail()}")
        time.sleep(0.2)


def lab_servers(user: User) -> list[LabServer]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(LabServer).where(LabServer.user_id == user.id).order_by(LabServer.id)
        )
    )


def lab_kernels(user: User) -> list[LabKernel]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(LabKernel).where(LabKernel.user_id == user.id)))


def assert_not_served(page: requests.Response) -> None:
    """A lab page refused: 401 or 403, or a redirect to the LMS's sign-in."""
    assert page.status_code in (302, 401, 403), page.status_code
    if page.status_code == 302:
        assert page.headers["Location"].startswith("/login?")
    assert "work" not in page.text


def is_running(user: User) -> bool:
    state = labs.state(user)
    assert state is not None, "the hub's API did not answer"
    return bool(state["running"])


def test_a_lab_runs_sandboxed_kernels_records_them_and_admits_only_its_owner(
    app: Flask, hub: Hub
) -> None:
    cohort = factories.cohort(factories.program())
    owner = factories.learner(cohort, "owner@test.org")
    other = factories.learner(cohort, "other@test.org")
    folder = Path(app.config["DATA_DIR"]) / "workspaces" / str(owner.id) / "work"
    (folder / "inputs").mkdir(parents=True)
    (folder / "data.csv").write_text("x,y\n1,2\n")
    (folder / "inputs" / "more.txt").write_text("nested")

    assert labs.start(owner) is True
    assert labs.start(owner) is False  # the running server is reused
    state = labs.state(owner)
    assert state is not None and state["running"] and state["url"] == f"/lab/{owner.id}/"
    [server] = lab_servers(owner)
    assert server.stopped_at is None

    client, intruder = lab_client(app, hub, owner), lab_client(app, hub, owner, holder=other)
    other_client = lab_client(app, hub, other)
    try:
        kernel = client.start_kernel("work")
        probe = SANDBOX_PROBE.format(
            api_port=hub.api_url.rsplit(":", 1)[1],
            source=str(ROOT / "lms"),
            data_dir=str(app.config["DATA_DIR"]),
            secret=str(app.config["SECRET_KEY"]),
        )
        seen = json.loads(client.execute(kernel, probe).strip().splitlines()[-1])
        uid = seen.pop("uid")
        if os.geteuid() == 0:  # a sandbox uid leased host-wide, never root's or the hub's
            assert FIRST_UID <= uid < FIRST_UID + UID_COUNT
        assert seen == {
            "sum": 2,
            "data": "x,y\n1,2\n",  # the notebook folder's files were copied into the sandbox
            "nested": "nested",
            "home": "/home/learner",
            "cwd": "/home/learner/lab",
            "source_visible": False,
            "data_dir_visible": False,
            "lms_env": [],  # neither the secret key, the hub's token nor its URL
            "secret_in_env": False,
            "network": "unreachable",
        }
        [used] = lab_kernels(owner)
        assert used.ended_at is None
        assert labs.state(owner) == {**state, "kernels": 1}

        # One kernel per learner: the second is refused with the hub's reason...
        with pytest.raises(LabClientError) as refused:
            client.start_kernel("work")
        assert "You already have 1 kernels running" in str(refused.value)
        assert len(lab_kernels(owner)) == 1
        # ...while another learner's lab still gets one, with none of the first one's files.
        assert labs.start(other) is True
        theirs = other_client.start_kernel()
        assert other_client.execute(theirs, "import os; print(sorted(os.listdir()))") == "[]\n"

        # The lab admits its owner only: not another learner, not a visitor without a session.
        assert client.request("GET", "api/contents/work").status_code == 200
        assert intruder.request("GET", "api/contents/work").status_code == 403
        tree = hub.lab_url(owner) + "tree"
        assert_not_served(intruder.http.get(tree, allow_redirects=False, timeout=30))
        assert_not_served(requests.get(tree, allow_redirects=False, timeout=30))
        contents = requests.get(hub.lab_url(owner) + "api/contents/work", timeout=30)
        assert contents.status_code == 401
        page = requests.get(
            tree, headers={"Accept": "text/html"}, allow_redirects=False, timeout=30
        )
        assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=")

        client.shutdown_kernel(kernel)
        wait_for(lambda: lab_kernels(owner)[0].ended_at is not None, "the kernel's end", hub)
        other_client.shutdown_kernel(theirs)
    finally:
        for c in (client, intruder, other_client):
            c.http.close()

    [usage] = labs.usage_by_cohort([cohort])
    assert usage.active == 2 and usage.learners == 2
    assert usage.kernel_seconds > 0
    assert [s.stopped_at for s in lab_servers(owner)] == [None]
    labs.stop(owner)
    assert not is_running(owner) and is_running(other)
    [stopped] = lab_servers(owner)
    assert stopped.stopped_at is not None and stopped.stop_reason == "stopped"


CULL_ENV = {**HUB_ENV, "LMS_LAB_KERNELS": "1", "LMS_LAB_IDLE_MINUTES": "0.1"}  # 6 s


@pytest.mark.parametrize("hub_env", [CULL_ENV], ids=["idle-6s"])
def test_an_idle_lab_is_culled_and_its_files_outlive_it(app: Flask, hub: Hub) -> None:
    owner = factories.learner(factories.cohort(factories.program()))
    notebook = {
        "cells": [{"cell_type": "markdown", "id": "kept", "metadata": {}, "source": "kept"}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    assert labs.start(owner) is True
    client = lab_client(app, hub, owner)
    try:
        client.save_notebook("kept.ipynb", notebook)
        wait_for(lambda: not is_running(owner), "the idle lab to be culled", hub, timeout=45)
        # The hub forgets the server first, then stops it and records why.
        wait_for(lambda: lab_servers(owner)[0].stopped_at is not None, "the record", hub)
        [culled] = lab_servers(owner)
        assert culled.stopped_at is not None and culled.stop_reason == "idle"
        assert hub.api("/servers")["servers"] == []

        assert labs.start(owner) is True  # a new server, on the same workspace
        assert client.notebook("kept.ipynb")["content"]["cells"][0]["source"] == "kept"
    finally:
        client.http.close()
    assert [s.stop_reason for s in lab_servers(owner)] == ["idle", ""]


# One GPU slot on GPU 1 of two (no GPU on this machine: a fake driver tree with real device
# files), GPU kernels given back after 6 s idle, one CPU kernel per learner beside it.
GPU_ENV = {
    **HUB_ENV,
    "LMS_LAB_KERNELS_PER_LEARNER": "2",
    "LMS_GPU_SLOTS": "1",
    "LMS_LAB_GPU_IDLE_MINUTES": "0.1",
}


@pytest.fixture
def gpu_hub_env(tmp_path: Path) -> dict[str, str]:
    from tests.autograder.conftest import fake_gpus

    return {**GPU_ENV, "LMS_GPU_DEVICE_ROOT": str(fake_gpus(tmp_path / "gpu-host", 2))}


def test_a_gpu_slot_is_held_while_used_and_the_next_learner_waits_in_line(
    app: Flask, tmp_path: Path, gpu_hub_env: dict[str, str]
) -> None:
    hub = launch_hub(app, tmp_path, gpu_hub_env)
    try:
        _gpu_slot_test(app, hub)
    finally:
        stop_hub(hub)


def _gpu_slot_test(app: Flask, hub: Hub) -> None:
    cohort = factories.cohort(factories.program())
    first, second = (
        factories.learner(cohort, "first@test.org"),
        factories.learner(cohort, "second@test.org"),
    )
    course = factories.course("deep-learning", "Deep learning")
    db.session.add(
        Assignment(
            course=course,
            slug="cnn",
            title="CNN",
            points=10,
            pass_mark=5,
            gpu=True,
            content_hash="x",
        )
    )
    db.session.commit()
    for learner in (first, second):
        (
            Path(app.config["DATA_DIR"]) / "workspaces" / str(learner.id) / "deep-learning" / "cnn"
        ).mkdir(parents=True)
        labs.start(learner)
    show_device = (
        "import os; os.environ['CUDA_VISIBLE_DEVICES'] = '0,1'; "
        "print(sorted(n for n in os.listdir('/dev') if n.startswith('nvidia')))"
    )
    a, b = lab_client(app, hub, first), lab_client(app, hub, second)
    try:
        gpu_kernel = a.start_kernel("deep-learning/cnn")
        # Only the slot's GPU (GPU 1) and the driver's common files: not GPU 0.
        assert a.execute(gpu_kernel, show_device) == "['nvidia-uvm', 'nvidia1', 'nvidiactl']\n"
        cpu_kernel = a.start_kernel("")  # not a GPU assignment's folder: the CPU pool
        assert a.execute(cpu_kernel, show_device) == "[]\n"

        # The second learner waits for the slot, and the hub says where in the line.
        waiting: dict[str, str] = {}
        thread = threading.Thread(
            target=lambda: waiting.update(id=b.start_kernel("deep-learning/cnn")), daemon=True
        )
        thread.start()
        wait_for(
            lambda: (labs.state(second) or {}).get("queue_position") == 1,
            "the second learner's place in the GPU queue",
            hub,
        )
        assert (labs.state(second) or {})["queue"] == "gpu"
        busy = a.execute(gpu_kernel, "import time; time.sleep(8); print('done')", timeout=30)
        assert busy == "done\n"  # a busy kernel keeps its slot past the idle time
        assert (labs.state(second) or {})["queue_position"] == 1

        # Idle, the first learner's GPU kernel is shut down and the slot passes on.
        thread.join(timeout=60)
        assert "id" in waiting, f"the GPU slot was not passed on:\n{hub.log_tail()}"
        assert b.execute(waiting["id"], show_device) == "['nvidia-uvm', 'nvidia1', 'nvidiactl']\n"
        running = [k["id"] for k in a.api("GET", "api/kernels")]
        assert gpu_kernel not in running and cpu_kernel in running
    finally:
        a.http.close()
        b.http.close()


def test_a_new_hub_stops_the_lab_servers_a_killed_one_left_running(
    app: Flask, hub: Hub, tmp_path: Path
) -> None:
    owner = factories.learner(factories.cohort(factories.program()))
    assert labs.start(owner) is True
    pid = int((Path(app.config["DATA_DIR"]) / "labs" / str(owner.id) / "server.pid").read_text())
    os.killpg(hub.process.pid, signal.SIGKILL)  # the hub dies without stopping anything
    hub.process.wait()
    assert Path(f"/proc/{pid}").exists(), "its lab server outlived it"

    second = launch_hub(app, tmp_path, HUB_ENV, name="second-hub")
    try:
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), "the orphan to be stopped", second)
        [closed] = lab_servers(owner)
        assert closed.stop_reason == "hub restarted"
        assert labs.start(owner) is True  # and the learner's lab starts afresh
    finally:
        stop_hub(second)


# --- What the security review found in labs -------------------------------------------------


def _lab_pid(app: Flask, owner: User) -> int:
    """The lab server's own process (jupyter-server), inside its sandbox."""
    config = str(Path(app.config["DATA_DIR"]) / "labs" / str(owner.id) / "lab.json")
    for _ in range(100):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "lms.lab.serverapp" in argv and f"--config={config}" in argv:
                if Path(argv[0]).name.startswith("python"):
                    return int(entry.name)
        time.sleep(0.1)
    raise AssertionError("no lab server process found")


def test_a_lab_server_holds_no_secret_and_sees_the_environment_read_only(
    app: Flask, hub: Hub
) -> None:
    """The review: lab servers held the LMS signing key and could pip-install into the shared
    environment. Now: not a byte of the secret in its environment or command line; its own uid
    (as root); the Python environment and the system read-only in its sandbox; the instance
    folder (secret key, databases) and other learners' workspaces not there at all."""
    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    other = factories.learner(owner.enrolments[0].cohort, "other@test.org")
    (Path(app.config["DATA_DIR"]) / "workspaces" / str(other.id)).mkdir(parents=True)
    assert labs.start(owner) is True
    pid = _lab_pid(app, owner)
    secret = str(app.config["SECRET_KEY"]).encode()
    for name in ("environ", "cmdline"):
        assert secret not in Path(f"/proc/{pid}/{name}").read_bytes(), name
    if os.geteuid() == 0:
        uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
        assert FIRST_UID <= uid < FIRST_UID + UID_COUNT
    inside = Path(f"/proc/{pid}/root")
    venv = inside / sys.prefix.lstrip("/")
    assert (venv / "bin").is_dir()
    assert os.statvfs(venv).f_flag & os.ST_RDONLY  # pip could not change it
    assert os.statvfs(inside / "usr").f_flag & os.ST_RDONLY
    workspace = inside / str(Path(app.config["DATA_DIR"]) / "workspaces" / str(owner.id)).lstrip(
        "/"
    )
    assert workspace.is_dir() and not os.statvfs(workspace).f_flag & os.ST_RDONLY
    for hidden in (
        Path(app.instance_path),
        Path(app.config["DATA_DIR"]) / "workspaces" / str(other.id),
        ROOT / "autograder",
        ROOT / "tests",
    ):
        assert not (inside / str(hidden).lstrip("/")).exists(), hidden

    client = lab_client(app, hub, owner)
    try:  # the extension manager, through the proxy as a learner would call it
        for command in ("install", "uninstall"):
            answer = client.request(
                "POST", "lab/api/extensions", {"cmd": command, "extension_name": "websocket-client"}
            )
            assert answer.status_code not in (200, 202), answer.text[:300]
    finally:
        client.http.close()
    done = subprocess.run([sys.executable, "-c", "import websocket"], check=False)
    assert done.returncode == 0  # still installed


def test_signing_out_or_deactivation_ends_lab_access_at_once(app: Flask, hub: Hub) -> None:
    """The review: a deactivated learner or a stolen cookie kept lab access for 12 hours, and
    signing out revoked nothing. The proxy checks the LMS's server-side sessions."""
    from lms.services import users

    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    stolen, stolen_token = session_cookie(app, owner)
    spare, _ = session_cookie(app, owner)
    assert labs.start(owner) is True
    contents = hub.lab_url(owner) + "api/contents"
    jar = {hub.cookie_name: stolen}
    assert requests.get(contents, cookies=jar, timeout=30).status_code == 200
    # A session that ended (here revoked before this proxy ever saw it) opens nothing.
    ended, ended_token = session_cookie(app, owner)
    sessions.revoke(ended_token, "sign-out")
    assert labs.state(owner) is not None
    if not is_running(owner):  # signing out stopped the lab: start it again for the check
        assert labs.start(owner) is True
    refused = requests.get(contents, cookies={hub.cookie_name: ended}, timeout=30)
    assert refused.status_code in (401, 403), refused.status_code
    assert requests.get(contents, cookies={hub.cookie_name: spare}, timeout=30).status_code == 200
    # Signing out of the stolen session: the lab is stopped there and then.
    sessions.revoke(stolen_token, "sign-out")
    wait_for(lambda: not is_running(owner), "the lab to stop at sign-out", hub, timeout=15)
    assert requests.get(contents, cookies=jar, timeout=30).status_code != 200
    # Deactivation: every session ends, the lab too, and it cannot be reopened with them.
    assert labs.start(owner) is True
    admin = factories.user("admin@test.org")
    users.deactivate(owner, admin)
    wait_for(lambda: not is_running(owner), "the lab to stop at deactivation", hub, timeout=15)
    assert labs.start(owner) is True  # (the hub would start it; no session opens it)
    answer = requests.get(contents, cookies={hub.cookie_name: spare}, timeout=30)
    assert answer.status_code in (401, 403), answer.status_code


@pytest.mark.parametrize("hub_env", [{**HUB_ENV, "LMS_LAB_KERNELS": "3"}], ids=["3-kernels"])
def test_the_kernel_cap_holds_for_parallel_requests(app: Flask, hub: Hub) -> None:
    """The review: the per-learner cap was checked before the queue wait, so parallel requests
    took every kernel. Now three at once get one kernel (the cap) and two refusals."""
    owner = factories.learner(factories.cohort(factories.program()))
    assert labs.start(owner) is True
    clients = [lab_client(app, hub, owner) for _ in range(3)]
    results: list[str] = []

    def ask(client: LabClient) -> None:
        try:
            client.start_kernel("")
            results.append("kernel")
        except LabClientError as e:
            results.append("refused" if "already have" in str(e) else f"error {e}")

    try:
        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(results) == ["kernel", "refused", "refused"], results
        assert hub.api(f"/servers/{owner.id}")["kernels"] == 1
    finally:
        for client in clients:
            client.http.close()


def test_a_lab_servers_own_api_token_reaches_only_its_owners_kernels(app: Flask, hub: Hub) -> None:
    """A lab server's hub token (in its environment) cannot start or stop other labs, nor
    borrow a kernel in another learner's name."""
    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    other = factories.learner(owner.enrolments[0].cohort, "other@test.org")
    assert labs.start(owner) is True
    environ = Path(f"/proc/{_lab_pid(app, owner)}/environ").read_bytes().split(b"\0")
    token = next(e for e in environ if e.startswith(b"LMS_LAB_HUB_TOKEN=")).split(b"=", 1)[1]

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> int:
        request = urllib.request.Request(
            hub.api_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {token.decode()}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    assert call("GET", "/servers") == 403
    assert call("POST", f"/servers/{other.id}", {}) == 403
    assert call("DELETE", f"/servers/{other.id}") == 403
    assert call("POST", "/kernels", {"owner": other.id, "cwd": ""}) == 403
    assert call("POST", "/cull", {}) == 403


def test_forwarded_headers_are_the_proxys_own(app: Flask, tmp_path: Path) -> None:
    """The review: a client's X-Forwarded-Host passed the proxy and was believed (spoofed hosts
    in verification links). What reaches the LMS is what the proxy saw."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: dict[str, str] = {}

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.update({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    lms = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=lms.serve_forever, daemon=True)
    thread.start()
    hub = launch_hub(app, tmp_path, HUB_ENV, lms_url=f"http://127.0.0.1:{lms.server_address[1]}")
    try:
        answer = requests.get(
            f"http://127.0.0.1:{hub.port}/verify",
            headers={
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Proto": "https",
                "X-Lab-Token": "made-up",
            },
            timeout=30,
        )
        assert answer.status_code == 200
        assert seen["x-forwarded-host"] == f"127.0.0.1:{hub.port}"
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert seen["x-forwarded-proto"] == "http"
        assert "x-lab-token" not in seen
    finally:
        stop_hub(hub)
        lms.shutdown()
        lms.server_close()


def test_the_lms_cookies_never_reach_a_lab_server() -> None:
    """The lab server (and so anything that reaches into it) never sees the LMS's session or
    device cookie, whatever the site names its session cookie; Jupyter's own cookies pass."""
    from lms.lab.hub import _without_lms_cookies

    header = "session=a.b.c; _xsrf=2|x; lms_device=d.e; site_session=f.g; username-x=y"
    assert _without_lms_cookies(header, "site_session") == "_xsrf=2|x; username-x=y"
    assert _without_lms_cookies(header, "session") == "_xsrf=2|x; site_session=f.g; username-x=y"
    assert _without_lms_cookies("session=only", "session") == ""


def test_a_lab_reopened_while_its_stop_is_under_way_starts_once_the_old_one_is_gone(
    app: Flask, hub: Hub
) -> None:
    """The e2e run saw it: a learner reopened their lab while its idle stop (seconds: the
    kernels shut down first) was under way. The new server started beside the old one, and the
    old one's end then recorded the lab as stopped (and would give back the new one's kernels).
    Now the start waits for the stop, and what runs afterwards is the new server."""
    owner = factories.learner(factories.cohort(factories.program()))
    assert labs.start(owner) is True
    client = lab_client(app, hub, owner)

    def call(method: str, path: str) -> Any:
        request = urllib.request.Request(
            hub.api_url + path,
            method=method,
            data=b"{}" if method == "POST" else None,
            headers={"Authorization": f"token {hub.token}"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    try:
        client.start_kernel("")  # its shutdown is what keeps the stop busy
        stopped: list[Any] = []
        stopping = threading.Thread(
            target=lambda: stopped.append(call("DELETE", f"/servers/{owner.id}?reason=idle"))
        )
        stopping.start()
        wait_for(lambda: hub.api("/servers")["servers"] == [], "the stop to begin", hub)
        assert stopping.is_alive(), "the stop was over before the reopen: nothing was tested"
        assert call("POST", f"/servers/{owner.id}")["started"] is True
        stopping.join(timeout=120)
        assert stopped == [{"stopped": True}]

        assert hub.api(f"/servers/{owner.id}")["running"] is True
        records = lab_servers(owner)
        assert [r.stop_reason for r in records] == ["idle", ""]
        assert records[-1].stopped_at is None, "the new server is recorded as running"
        client.start_kernel("")
        time.sleep(1)
        assert hub.api(f"/servers/{owner.id}")["kernels"] == 1
        assert client.api("GET", "api/contents")["type"] == "directory"
    finally:
        client.http.close()


def test_the_lab_speaks_the_learners_lms_language(app: Flask, hub: Hub) -> None:
    """Jupyter's interface follows the learner's LMS language, set each time the lab opens,
    from the language packs installed with the LMS (no download)."""
    owner = factories.learner(factories.cohort(factories.program()), "owner@test.org")
    assert labs.start(owner, "vi") is True
    client = lab_client(app, hub, owner)
    setting = "lab/api/settings/@jupyterlab/translation-extension:plugin"
    try:
        assert json.loads(client.api("GET", setting)["raw"]) == {"locale": "vi_VN"}
        packs = client.api("GET", "lab/api/translations")["data"]
        assert {"vi_VN", "ko_KR"} <= set(packs), packs
        vietnamese = client.api("GET", "lab/api/translations/vi_VN")["data"]["jupyterlab"]
        assert vietnamese["File Changed"] == ["Các tệp đã thay đổi"]  # the pack's own words
        # Opened again in another language (the server is running): the next page load has it.
        assert labs.start(owner, "ko") is False
        assert json.loads(client.api("GET", setting)["raw"]) == {"locale": "ko_KR"}
        assert labs.start(owner, "fr") is False  # no pack: English
        assert json.loads(client.api("GET", setting)["raw"]) == {"locale": "en"}
    finally:
        client.http.close()


@pytest.mark.parametrize(
    "hub_env", [{**HUB_ENV, "LMS_LAB_KERNEL_RELEASE_SECONDS": "3"}], ids=["release-3s"]
)
def test_a_kernel_no_browser_watches_goes_back_to_the_pool_and_a_watched_one_stays(
    app: Flask, hub: Hub
) -> None:
    """A learner who closed the tab gives their kernel back within the release time (the
    notebook stays saved); one whose browser is still connected keeps theirs."""
    cohort = factories.cohort(factories.program())
    gone, watching = (factories.learner(cohort, f"{n}@test.org") for n in ("gone", "watching"))
    for learner in (gone, watching):
        assert labs.start(learner) is True
    gone_client, watching_client = lab_client(app, hub, gone), lab_client(app, hub, watching)
    socket = None
    try:
        gone_kernel = gone_client.start_kernel("")
        assert gone_client.execute(gone_kernel, "print(6 * 7)") == "42\n"  # then disconnects
        watched_kernel = watching_client.start_kernel("")
        url = watching_client.base.replace("http", "ws", 1) + (
            f"api/kernels/{watched_kernel}/channels"
        )
        cookie = "; ".join(f"{k}={v}" for k, v in watching_client.http.cookies.items())
        socket = websocket.create_connection(url, cookie=cookie, timeout=10)  # the open tab
        assert hub.api("/servers")["kernels"]["lent"] == 2

        wait_for(
            lambda: (
                hub.api(f"/servers/{gone.id}")["kernels"] == 0
                and gone_client.api("GET", "api/kernels") == []
            ),
            "the unwatched kernel to go back to the pool",
            hub,
            timeout=30,
        )
        time.sleep(4)  # past the release time: the watched kernel is still there
        assert [k["id"] for k in watching_client.api("GET", "api/kernels")] == [watched_kernel]
        assert hub.api(f"/servers/{watching.id}")["kernels"] == 1
        # The freed kernel is lent again at once: the learner who left comes back (not run
        # here: with a 3 s release, a slow handshake on a loaded machine would count as left).
        gone_client.start_kernel("")
        assert hub.api(f"/servers/{gone.id}")["kernels"] == 1
    finally:
        if socket is not None:
            socket.close()
        gone_client.http.close()
        watching_client.http.close()

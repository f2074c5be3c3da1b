"""Labs: from "Open lab" in a signed-in learner's browser session to a kernel that has run
`1+1`, cold (no lab server running yet) and warm (the learner's server runs; the kernel comes
from the hub's warm sandbox pool).

    .venv/bin/python -m benchmarks.labs [--runs 5]

It sets up its own instance in /tmp/lms-bench-labs (demo data, one released course), starts
gunicorn and the lab hub as `make run` does, signs in over HTTP, and then times, per run:
GET the lab page (which starts or reuses the lab server), start a kernel in the assignment's
folder through the proxy, and execute `1+1` over the kernel's websocket. The baseline, in the
same run: a plain local ipykernel (no sandbox, no pool) started and asked `1+1` by
jupyter_client. Then the density: the PSS (shared pages split among sharers) of the idle lab
server and of one idle pool slot (sandbox, fork server, warm kernel with the preloads), and the
labs a 64 GB machine holds (lms.lab.capacity's reserve kept). Prints `name: value` lines, the
warm start over the plain kernel start last.
The issue's budget: warm_start_seconds <= 2 (goal 1).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from jupyter_client.manager import start_new_kernel

from lms.lab import capacity, hub_token
from lms.lab.client import LabClient
from lms.lab.hub import free_port

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path("/tmp/lms-bench-labs")
COURSE = "python-numpy-for-ai"
COHORT = "gwangju-ai-school-autumn"
ASSIGNMENT = "traffic-linear-algebra"
SECRET = "bench-labs-secret"


def environment(hub_api: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(
        FLASK_APP="wsgi",
        LMS_INSTANCE_PATH=str(INSTANCE),
        LMS_SECRET_KEY=SECRET,
        LMS_LAB_HUB_URL=f"http://127.0.0.1:{hub_api}",
        LMS_TRUSTED_PROXIES="1",
        LMS_LAB_KERNELS="2",
        PATH=f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
    )
    return env


def flask(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def site(env: dict[str, str], port: int, hub_api: int) -> Iterator[str]:
    """gunicorn and the lab hub in front of it, as `make run` starts them."""
    lms_port = free_port()
    log = (INSTANCE / "site.log").open("wb")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{lms_port}", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "flask", "lms", "labs", "--port", str(port)]
            + ["--lms-url", f"http://127.0.0.1:{lms_port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"the site did not start; see {INSTANCE / 'site.log'}")
            time.sleep(0.3)
        yield base
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        log.close()


def sign_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/login", timeout=30).text
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    if match is None:
        raise SystemExit("no CSRF token on the sign-in page")
    form = {"csrf_token": match.group(1), "email": "learner@example.org"}
    form["password"] = "demo-password"
    answer = session.post(base + "/login", data=form, timeout=30)
    if "session" not in session.cookies or answer.status_code != 200:
        raise SystemExit(f"sign-in failed: {answer.status_code}")
    return session


class Hub:
    """The hub's API, to wait for a warm pool and to stop the learner's server (cold runs)."""

    def __init__(self, hub_api: int) -> None:
        self.url = f"http://127.0.0.1:{hub_api}"
        self.headers = {"Authorization": f"token {hub_token(SECRET)}"}

    def wait_warm(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = requests.get(self.url + "/servers", headers=self.headers, timeout=5).json()
            kernels = state["kernels"]
            if kernels["lent"] == 0 and kernels["warm"] == kernels["size"]:
                return
            time.sleep(0.2)
        raise SystemExit("the kernel pool did not warm up")

    def stop_servers(self) -> None:
        state = requests.get(self.url + "/servers", headers=self.headers, timeout=5).json()
        for server in state["servers"]:
            requests.delete(
                f"{self.url}/servers/{server['owner']}", headers=self.headers, timeout=60
            )


def open_lab_and_run(base: str, session: requests.Session) -> float:
    """The time from "Open lab" to `1+1` answered by a kernel of the lab."""
    assignment = f"{base}/learn/cohorts/{COHORT}/courses/{COURSE}/{ASSIGNMENT}/"
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', session.get(assignment).text
    )
    if token is None:
        raise SystemExit("no Open lab form on the assignment page")
    start = time.perf_counter()
    # "Open lab" is a form: the POST starts the lab, then the lab page frames it.
    page = session.post(assignment + "lab/open", data={"csrf_token": token.group(1)}, timeout=120)
    found = re.search(r'class="lms-lab-frame" src="(/lab/\d+/)', page.text)
    if page.status_code != 200 or found is None:
        raise SystemExit(f"the lab page did not open a lab: {page.status_code}")
    cookies = {k: v for k, v in session.cookies.get_dict().items() if v is not None}
    client = LabClient(base + found.group(1), cookies)
    kernel = client.start_kernel(f"{COURSE}/{ASSIGNMENT}")
    answer = client.execute(kernel, "1+1")
    elapsed = time.perf_counter() - start
    if answer.strip() != "2":
        raise SystemExit(f"1+1 gave {answer!r}")
    client.shutdown_kernel(kernel)
    return elapsed


def _tree(pid: int) -> set[int]:
    """The process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def pss_mb(pids: set[int]) -> float:
    """Proportional set size of the processes (shared pages split among their sharers): what
    each adds to the machine's memory."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def density() -> tuple[float, float]:
    """PSS of the running lab server (its sandbox and jupyter-server) and of one idle pool
    slot (its sandbox's fork server with the warm kernel, preloads imported), in MB."""
    servers = [int(p.read_text()) for p in (INSTANCE / "data" / "labs").glob("*/server.pid")]
    if not servers:
        raise SystemExit("no lab server running to measure")
    server_mb = statistics.mean(pss_mb(_tree(pid)) for pid in servers)
    slots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"autograder.forkserver" in command and b"--uid" in command:
            slots.append(pss_mb(_tree(int(entry.name))))
    if not slots:
        raise SystemExit("no kernel pool sandbox found to measure")
    return server_mb, statistics.mean(slots)


def plain_kernel() -> float:
    """A local ipykernel, unsandboxed and not pooled, started and asked 1+1."""
    start = time.perf_counter()
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.execute_interactive("1+1", timeout=60, output_hook=lambda _msg: None)
        assert reply["content"]["status"] == "ok"
        return time.perf_counter() - start
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def median(action: Callable[[], float], before: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        before()
        times.append(action())
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    shutil.rmtree(INSTANCE, ignore_errors=True)
    INSTANCE.mkdir(parents=True)
    port, hub_api = free_port(), free_port()
    env = environment(hub_api)
    flask(env, "db", "upgrade")
    flask(env, "lms", "demo")
    flask(env, "lms", "release", "--course", COURSE)
    hub = Hub(hub_api)
    with site(env, port, hub_api) as base:
        session = sign_in(base)

        def cold_before() -> None:
            hub.stop_servers()
            hub.wait_warm()

        cold = median(lambda: open_lab_and_run(base, session), cold_before, args.runs)
        warm = median(lambda: open_lab_and_run(base, session), hub.wait_warm, args.runs)
        hub.wait_warm()
        server_mb, kernel_mb = density()
    plain = statistics.median(plain_kernel() for _ in range(args.runs))
    usable = 64 * 1024 * (1 - capacity.RESERVED_FRACTION)  # MB of a 64 GB machine
    print(f"runs: {args.runs}")
    print(f"plain_local_kernel_seconds: {plain:.3f}")
    print(f"cold_start_seconds: {cold:.3f}")
    print(f"warm_start_seconds: {warm:.3f}")
    print(f"idle_lab_server_pss_mb: {server_mb:.0f}")
    print(f"idle_kernel_pss_mb: {kernel_mb:.0f}")
    # On 64 GB, less the reserve: learners each with a server and a kernel of their own, and
    # with one kernel per four learners (the pool's sharing when most are reading).
    print(f"labs_per_64gb_own_kernel: {usable // (server_mb + kernel_mb):.0f}")
    print(f"labs_per_64gb_shared_kernels: {usable // (server_mb + kernel_mb / 4):.0f}")
    print(f"warm_over_plain_kernel_ratio: {warm / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

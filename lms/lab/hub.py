"""The lab hub: one process that is the browser's entry point and runs the learners' labs.

- **Proxy.** The public port is configurable-http-proxy (its Python implementation, as
  JupyterHub's proxy): every path goes to the LMS (gunicorn) but /lab/<user>/, which goes to
  that learner's lab server while it runs. Learners use one host and port.
- **Lab servers.** One jupyter-server per learner (lms.lab.server), started on "Open lab",
  reused while it runs, stopped when idle for LMS_LAB_IDLE_MINUTES (its own /api/status says
  when it last saw the learner or a kernel do anything), with a cap on how many run at once.
- **Kernels.** Lab servers do not start kernels: they borrow them from this hub's warm pool of
  sandboxed kernels (autograder.pool, the grading sandbox), at most LMS_LAB_KERNELS at once and
  LMS_LAB_KERNELS_PER_LEARNER per learner; a learner beyond the pool waits in a queue whose
  place the lab page shows. The folder of the notebook is copied into the kernel's sandbox.
- **API.** Lab servers and the LMS speak to the hub on a private port with a token derived
  from the LMS secret key (lms.services.labs on the LMS side, lms.lab.kernels in lab servers).

It is started by `flask lms labs` (make run does); what it does is recorded through a
Recorder (lms.services.labs), which the LMS pages read.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import os
import queue
import secrets
import signal
import socket
import stat
import subprocess
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from autograder.pool import Kernel, KernelPool, run_coroutine
from lms.lab import base_url, hub_token, kernels, server
from lms.lab.client import LabClient, LabClientError
from lms.lab.identity import session_serializer

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVER_START_TIMEOUT = 60.0
# Files of the notebook's folder copied into a kernel's sandbox: at most this many, this big.
KERNEL_FILES_MAX = 500
KERNEL_FILES_MAX_BYTES = 256 * 1024 * 1024
SKIPPED_FOLDERS = {".ipynb_checkpoints", "__pycache__", ".git"}


CPU, GPU = "cpu", "gpu"
# The lab pools' sandbox uids (as root): a range of their own, away from grading's (61000+).
LAB_FIRST_UID = 63000


class HubError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Recorder(Protocol):
    """Where the hub writes what happened (the LMS database); every call may block."""

    def server_started(self, owner: int) -> None: ...
    def server_stopped(self, owner: int, reason: str) -> None: ...
    def needs_gpu(self, folder: str) -> bool: ...
    def kernel_started(self, owner: int, folder: str) -> int: ...
    def kernel_stopped(self, usage: int) -> None: ...
    def all_stopped(self, reason: str) -> None: ...


@dataclass
class Settings:
    secret_key: str
    data_dir: Path  # LMS_DATA_DIR: workspaces/<user>/ are the servers' roots
    session_cookie: str = "session"
    session_max_age: int = 12 * 3600
    max_servers: int = 50
    kernels: int = 4
    kernels_per_learner: int = 2
    idle_seconds: float = 30 * 60
    cull_every_seconds: float = 60.0
    gateway_url: str = ""  # kernels from a Jupyter Kernel Gateway instead of the pool
    gateway_token: str = ""  # the gateway's KG_AUTH_TOKEN, if it has one
    gpu_devices: tuple[str, ...] = ()  # LMS_GPU_SLOTS: one entry per concurrent GPU kernel
    gpu_idle_seconds: float = 10 * 60  # a GPU kernel idle this long gives its slot back


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    owner: int
    port: int
    process: subprocess.Popen[bytes]
    started_at: datetime
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: str | None = None
    last_activity: datetime | None = None

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class LentKernel:
    id: str
    owner: int
    kernel: Kernel | None  # None while reserved, before the pool hands it over
    usage: int
    started_at: datetime
    kind: str = CPU
    device: str | None = None  # the GPU slot's device, for a GPU kernel
    lab_kernel_id: str = ""  # the lab server's id of this kernel (to shut it down there)


class LabHub:
    def __init__(
        self,
        settings: Settings,
        pools: dict[str, KernelPool],
        recorder: Recorder,
        proxy: Any = None,
        api_port: int = 0,
        api_host: str = "127.0.0.1",
    ) -> None:
        self.settings = settings
        self.api_port = api_port  # where lab servers (on this host) reach the API
        self.api_host = api_host
        self.pools = pools  # CPU kernels; GPU kernels (with the GPU devices) when slots exist
        self.recorder = recorder
        self.proxy = proxy
        self.token = hub_token(settings.secret_key)
        self.servers: dict[int, LabServer] = {}
        self.kernels: dict[str, LentKernel] = {}
        # Per pool, the learners waiting for a kernel, first first.
        self.queues: dict[str, deque[int]] = {kind: deque() for kind in pools}
        self._kernel_freed = asyncio.Condition()
        self.runtime = settings.data_dir / "labs"
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lab-hub")
        self._signer = session_serializer(settings.secret_key, settings.session_max_age)

    async def blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    # Lab servers -----------------------------------------------------------------------------

    def workspace(self, owner: int) -> Path:
        return self.settings.data_dir / "workspaces" / str(owner)

    async def start_server(self, owner: int) -> tuple[LabServer, bool]:
        """The learner's running server, started if needed; (server, whether it was started)."""
        running = self.servers.get(owner)
        if running is not None and running.process.poll() is None and running.failed is None:
            await asyncio.wait_for(running.ready.wait(), SERVER_START_TIMEOUT)
            if running.failed is None:
                return running, False
        if running is not None:
            await self.stop_server(owner, "failed")
        if len(self.servers) >= self.settings.max_servers:
            raise HubError(503, "lab-servers-full")
        lab = self._spawn(owner)
        self.servers[owner] = lab
        try:
            await self._wait_until_serving(lab)
        except HubError as e:
            lab.failed = str(e)
            lab.ready.set()
            await self.stop_server(owner, "failed")
            raise
        lab.last_activity = datetime.now(UTC)
        if self.proxy is not None:
            self.proxy.add_route(base_url(owner), {"target": lab.target})
        lab.ready.set()
        await self.blocking(self.recorder.server_started, owner)
        log.info("lab server of learner %s started on port %s", owner, lab.port)
        return lab, True

    def _spawn(self, owner: int) -> LabServer:
        private = self.runtime / str(owner)
        for name in ("runtime", "data", "config/labconfig"):
            (private / name).mkdir(parents=True, exist_ok=True)
        os.chmod(private, 0o700)
        # nbgrader's front end (its menu, the Validate button) talks to server extensions the
        # lab does not run: the LMS grades.
        (private / "config" / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyter/nbgrader": True}})
        )
        root = self.workspace(owner)
        root.mkdir(parents=True, exist_ok=True)
        config = server.write_config(
            private / "lab.json",
            owner,
            self.settings.session_cookie,
            self.settings.session_max_age,
            idle_seconds=self.settings.idle_seconds,
            gateway_url=self.settings.gateway_url,
        )
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(private),
            "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
            "JUPYTER_DATA_DIR": str(private / "data"),
            "JUPYTER_CONFIG_DIR": str(private / "config"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            server.SECRET_ENV: self.settings.secret_key,
            kernels.HUB_URL_ENV: f"http://127.0.0.1:{self.api_port}",
            kernels.HUB_TOKEN_ENV: self.token,
            kernels.OWNER_ENV: str(owner),
        }
        if self.settings.gateway_url and self.settings.gateway_token:
            # jupyter-server's gateway client reads it there: never on a command line.
            env["JUPYTER_GATEWAY_AUTH_TOKEN"] = self.settings.gateway_token
        log_file = open(private / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            process = subprocess.Popen(
                server.command(config, root, port),
                env=env,
                cwd=private,  # never the workspace: no config file of the learner's is read
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()
        (private / "server.pid").write_text(str(process.pid))
        return LabServer(owner, port, process, datetime.now(UTC))

    def stop_orphans(self) -> list[int]:
        """Stop the lab servers a previous hub left running (it was killed, not stopped):
        each server's pid file names it; its command line must name its own folder."""
        stopped = []
        for pid_file in sorted(self.runtime.glob("*/server.pid")):
            try:
                pid = int(pid_file.read_text())
                command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except (OSError, ValueError):
                pid_file.unlink(missing_ok=True)
                continue
            if str(pid_file.parent) in command:
                try:
                    os.killpg(pid, signal.SIGTERM)  # its own session: the server and children
                    stopped.append(pid)
                except OSError:
                    pass
            pid_file.unlink(missing_ok=True)
        return stopped

    async def _wait_until_serving(self, lab: LabServer) -> None:
        url = f"{lab.target}{base_url(lab.owner)}api"
        client = AsyncHTTPClient()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if lab.process.poll() is not None:
                raise HubError(500, f"lab server exited: {self._log_tail(lab.owner)}")
            try:
                await client.fetch(url, request_timeout=2)
                return
            except (HTTPClientError, OSError):
                await asyncio.sleep(0.1)
        raise HubError(504, "lab server did not start in time")

    def _log_tail(self, owner: int) -> str:
        try:
            text = (self.runtime / str(owner) / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-10:])

    async def stop_server(self, owner: int, reason: str) -> bool:
        lab = self.servers.pop(owner, None)
        if lab is None:
            return False
        if self.proxy is not None:
            try:
                self.proxy.remove_route(base_url(owner))
            except KeyError:
                pass
        if lab.process.poll() is None:
            lab.process.send_signal(signal.SIGTERM)  # the server shuts its kernels down first
            for _ in range(100):
                if lab.process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                os.killpg(lab.process.pid, signal.SIGKILL)
                await self.blocking(lab.process.wait)
        for lent in [k for k in self.kernels.values() if k.owner == owner]:
            await self.give_back(lent.id)  # what a killed server could not give back
        await self.blocking(self.recorder.server_stopped, owner, reason)
        log.info("lab server of learner %s stopped (%s)", owner, reason)
        return True

    async def stop_all(self, reason: str) -> None:
        for owner in list(self.servers):
            await self.stop_server(owner, reason)

    # Kernels ---------------------------------------------------------------------------------

    def queue_position(self, owner: int) -> tuple[int | None, str | None]:
        """(1 for the first learner waiting, the pool waited for); (None, None) when not
        waiting."""
        for kind, waiting in self.queues.items():
            if owner in waiting:
                return waiting.index(owner) + 1, kind
        return None, None

    def lent(self, kind: str | None = None, owner: int | None = None) -> list[LentKernel]:
        return [
            k
            for k in self.kernels.values()
            if (kind is None or k.kind == kind) and (owner is None or k.owner == owner)
        ]

    async def lend(
        self, owner: int, cwd: str, lab_kernel_id: str = "", timeout: float = 600.0
    ) -> LentKernel:
        if not self.pools:
            raise HubError(501, "this hub lends no kernels (kernel gateway in use)")
        folder = self._kernel_folder(owner, cwd)
        relative = folder.relative_to(Path(os.path.realpath(self.workspace(owner)))).as_posix()
        kind = CPU
        if GPU in self.pools and await self.blocking(self.recorder.needs_gpu, relative):
            kind = GPU
        held = len(self.lent(owner=owner))
        if held >= self.settings.kernels_per_learner:
            raise HubError(
                429,
                f"You already have {held} kernels running: shut one down "
                "(Running tab or Kernel menu) to start another.",
            )
        if kind == GPU and self.lent(GPU, owner):
            raise HubError(429, "You already have a GPU kernel: shut it down to start another one.")
        pool, waiting = self.pools[kind], self.queues[kind]
        reference, started = secrets.token_hex(8), datetime.now(UTC)
        waiting.append(owner)
        try:
            async with self._kernel_freed:
                await asyncio.wait_for(
                    self._kernel_freed.wait_for(
                        lambda: waiting[0] == owner and len(self.lent(kind)) < pool.size
                    ),
                    timeout,
                )
                # Reserved before the lock is let go: the next in the queue waits for another.
                device = self._free_device() if kind == GPU else None
                self.kernels[reference] = LentKernel(
                    reference, owner, None, 0, started, kind, device, lab_kernel_id
                )
        except TimeoutError:
            raise HubError(503, "no kernel became free in time: try again later") from None
        finally:
            waiting.remove(owner)
            await self._notify()
        try:
            kernel = await self.blocking(pool.lend, 120.0)
            try:
                files = await self.blocking(_folder_files, folder)
                await self.blocking(kernel.put_files, pool.folder, files)
                if device is not None:
                    await self.blocking(_show_only_device, kernel, device)
            except BaseException:
                pool.give_back(kernel)
                raise
        except BaseException:
            self.kernels.pop(reference, None)
            await self._notify()
            raise
        if reference not in self.kernels:  # the server stopped meanwhile
            pool.give_back(kernel)
            raise HubError(409, "the lab server stopped")
        usage = await self.blocking(self.recorder.kernel_started, owner, relative)
        lent = LentKernel(reference, owner, kernel, usage, started, kind, device, lab_kernel_id)
        self.kernels[reference] = lent
        return lent

    def _free_device(self) -> str:
        """A GPU slot no lent kernel holds (there is one: the pool is as big as the slots)."""
        devices = list(self.settings.gpu_devices)
        for held in self.lent(GPU):
            if held.device in devices:
                devices.remove(held.device)
        return devices[0]

    def pool_size(self, kind: str = CPU) -> int:
        pool = self.pools.get(kind)
        return pool.size if pool is not None else 0

    def _kernel_folder(self, owner: int, cwd: str) -> Path:
        """The folder (in the owner's workspace) whose files the kernel gets."""
        root = Path(os.path.realpath(self.workspace(owner)))
        folder = Path(os.path.realpath(cwd or root))
        if folder != root and root not in folder.parents:
            raise HubError(403, "that folder is not in your workspace")
        return folder

    async def give_back(self, reference: str) -> bool:
        lent = self.kernels.pop(reference, None)
        if lent is None:
            return False
        if lent.kernel is not None:
            self.pools[lent.kind].give_back(lent.kernel)
            await self.blocking(self.recorder.kernel_stopped, lent.usage)
        await self._notify()
        return True

    async def _notify(self) -> None:
        async with self._kernel_freed:
            self._kernel_freed.notify_all()

    def alive(self, reference: str) -> bool:
        lent = self.kernels.get(reference)
        if lent is None or lent.kernel is None:
            return False
        reply = lent.kernel.server.request({"op": "alive"})
        return bool(reply.get("alive"))

    def interrupt(self, reference: str) -> None:
        lent = self.kernels.get(reference)
        if lent is not None and lent.kernel is not None:
            lent.kernel.server.request({"op": "interrupt"})

    # Idle culling ----------------------------------------------------------------------------

    def owner_cookies(self, owner: int) -> dict[str, str]:
        """An LMS session of the owner: how the hub asks a lab server about itself."""
        return {self.settings.session_cookie: self._signer.dumps({"_user_id": str(owner)})}

    async def last_activity(self, lab: LabServer) -> datetime | None:
        """When the server last saw its learner or a kernel do anything (its /api/status)."""
        url = f"{lab.target}{base_url(lab.owner)}api/status"
        cookie = "; ".join(f"{k}={v}" for k, v in self.owner_cookies(lab.owner).items())
        request = HTTPRequest(url, headers={"Cookie": cookie}, request_timeout=5)
        try:
            response = await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError):
            return None
        stamp = json.loads(response.body).get("last_activity")
        if not stamp:
            return None
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    async def cull(self, idle_seconds: float | None = None) -> list[int]:
        """Stop the servers idle longer than idle_seconds (default: the setting)."""
        limit = self.settings.idle_seconds if idle_seconds is None else idle_seconds
        now = datetime.now(UTC)
        culled = []
        for owner, lab in list(self.servers.items()):
            if not lab.ready.is_set():
                continue
            if lab.process.poll() is not None:
                await self.stop_server(owner, "exited")
                continue
            seen = await self.last_activity(lab)
            if seen is not None:
                lab.last_activity = max(seen, lab.last_activity or seen)
            last = lab.last_activity or lab.started_at
            if (now - last).total_seconds() >= limit:
                await self.stop_server(owner, "idle")
                culled.append(owner)
        await self.cull_gpu_kernels(now)
        return culled

    async def cull_gpu_kernels(self, now: datetime) -> list[str]:
        """Shut down GPU kernels idle longer than the GPU idle time, through their lab server
        (which then knows the kernel is gone): the slot goes to the next learner waiting."""
        culled = []
        for lent in self.lent(GPU):
            lab = self.servers.get(lent.owner)
            if lab is None or not lent.lab_kernel_id:
                continue
            client = LabClient(
                lab.target + base_url(lab.owner), self.owner_cookies(lab.owner), timeout=10
            )
            try:
                models = await self.blocking(client.api, "GET", "api/kernels")
                model = next((m for m in models if m["id"] == lent.lab_kernel_id), None)
                if model is None or model.get("execution_state") == "busy":
                    continue
                stamp = datetime.fromisoformat(model["last_activity"].replace("Z", "+00:00"))
                if (now - stamp).total_seconds() < self.settings.gpu_idle_seconds:
                    continue
                await self.blocking(client.shutdown_kernel, lent.lab_kernel_id)
            except (LabClientError, OSError, ValueError, KeyError):
                log.warning("could not ask learner %s's lab about its GPU kernel", lent.owner)
                continue
            log.info("GPU kernel of learner %s idle: shut down, slot freed", lent.owner)
            culled.append(lent.lab_kernel_id)
        return culled

    async def cull_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cull_every_seconds)
            try:
                await self.cull()
            except Exception:  # the culler must outlive any one failure
                log.exception("culling lab servers failed")

    # What the LMS shows ----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "servers": [
                {
                    "owner": lab.owner,
                    "started_at": lab.started_at.isoformat(),
                    "last_activity": (lab.last_activity or lab.started_at).isoformat(),
                    "kernels": len(self.lent(owner=lab.owner)),
                }
                for lab in self.servers.values()
            ],
            "kernels": {
                "lent": len(self.lent(CPU)),
                "size": self.pool_size(CPU),
                "warm": self.pools[CPU].warm_count if CPU in self.pools else 0,
            },
            "gpu_kernels": {"lent": len(self.lent(GPU)), "size": self.pool_size(GPU)},
            "queue": sum(len(waiting) for waiting in self.queues.values()),
        }

    def describe_owner(self, owner: int) -> dict[str, Any]:
        lab = self.servers.get(owner)
        place, kind = self.queue_position(owner)
        return {
            "running": lab is not None and lab.ready.is_set() and lab.failed is None,
            "url": base_url(owner),
            "kernels": len(self.lent(owner=owner)),
            "queue_position": place,
            "queue": kind,  # "cpu" or "gpu": which kernels the learner waits for
        }


def _show_only_device(kernel: Kernel, device: str) -> None:
    """Point the kernel at its GPU slot before the learner's first cell: CUDA reads
    CUDA_VISIBLE_DEVICES when it starts in the process, which nothing has made it do yet."""
    code = f"import os as _os; _os.environ['CUDA_VISIBLE_DEVICES'] = {device!r}; del _os"

    async def run() -> None:
        client = kernel.client()
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.execute(code, silent=True, store_history=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    reply = await client.get_shell_msg(timeout=1.0)
                except queue.Empty:
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    if reply["content"].get("status") != "ok":
                        raise HubError(500, "the GPU kernel could not be set up")
                    return
            raise HubError(504, "the GPU kernel did not answer")
        finally:
            client.stop_channels()
            kernel.close_context()

    run_coroutine(run())


def _folder_files(folder: Path) -> dict[str, bytes]:
    """The regular files under folder (links are never followed), for a kernel's sandbox."""
    files: dict[str, bytes] = {}
    total = 0
    for directory, subfolders, names in os.walk(folder, followlinks=False):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED_FOLDERS)
        for name in sorted(names):
            if ".before-reset-" in name:
                continue
            path = Path(directory) / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOENT, errno.EACCES):
                    continue
                raise
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    continue
                if len(files) >= KERNEL_FILES_MAX or total + info.st_size > KERNEL_FILES_MAX_BYTES:
                    log.warning("%s: more files than a kernel is given; the rest left out", folder)
                    return files
                data = f.read(info.st_size + 1)[: info.st_size]
            files[path.relative_to(folder).as_posix()] = data
            total += len(data)
    return files


# The API ---------------------------------------------------------------------------------------


class ApiHandler(web.RequestHandler):
    hub: LabHub

    def initialize(self, hub: LabHub) -> None:
        self.hub = hub

    def prepare(self) -> None:
        given = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"token {self.hub.token}".encode()):
            raise web.HTTPError(403)

    def body(self) -> dict[str, Any]:
        try:
            value = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400) from None
        if not isinstance(value, dict):
            raise web.HTTPError(400)
        return value

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": self._reason})

    def check_xsrf_cookie(self) -> None:
        return None  # token-authenticated, not a browser form


def _fail(e: HubError) -> web.HTTPError:
    return web.HTTPError(e.status, reason=str(e)[:400].replace("\n", " "))


class ServersHandler(ApiHandler):
    def get(self) -> None:
        self.finish(self.hub.describe())


class ServerHandler(ApiHandler):
    async def post(self, owner: str) -> None:
        try:
            lab, started = await self.hub.start_server(int(owner))
        except HubError as e:
            raise _fail(e) from e
        self.finish({"url": base_url(lab.owner), "started": started})

    async def delete(self, owner: str) -> None:
        stopped = await self.hub.stop_server(int(owner), self.get_argument("reason", "stopped"))
        self.finish({"stopped": stopped})

    def get(self, owner: str) -> None:
        self.finish(self.hub.describe_owner(int(owner)))


class KernelsHandler(ApiHandler):
    async def post(self) -> None:
        body = self.body()
        try:
            lent = await self.hub.lend(
                int(body["owner"]), str(body.get("cwd", "")), str(body.get("kernel_id", ""))
            )
        except HubError as e:
            raise _fail(e) from e
        except (KeyError, ValueError):
            raise web.HTTPError(400) from None
        assert lent.kernel is not None
        connection = {k: v for k, v in lent.kernel.connection.items() if k != "kernel_name"}
        self.finish({"id": lent.id, "connection": connection})


class KernelHandler(ApiHandler):
    async def get(self, reference: str) -> None:
        if reference not in self.hub.kernels:
            raise web.HTTPError(404)
        alive = await self.hub.blocking(self.hub.alive, reference)
        self.finish({"alive": alive})

    async def delete(self, reference: str) -> None:
        self.finish({"given_back": await self.hub.give_back(reference)})


class InterruptHandler(ApiHandler):
    async def post(self, reference: str) -> None:
        if reference not in self.hub.kernels:
            raise web.HTTPError(404)
        await self.hub.blocking(self.hub.interrupt, reference)
        self.finish({"ok": True})


class CullHandler(ApiHandler):
    async def post(self) -> None:
        idle = self.body().get("idle_seconds")
        culled = await self.hub.cull(None if idle is None else float(idle))
        self.finish({"culled": culled})


def api_app(hub: LabHub) -> web.Application:
    args = {"hub": hub}
    return web.Application(
        [
            (r"/servers", ServersHandler, args),
            (r"/servers/(\d+)", ServerHandler, args),
            (r"/kernels", KernelsHandler, args),
            (r"/kernels/([0-9a-f]+)", KernelHandler, args),
            (r"/kernels/([0-9a-f]+)/interrupt", InterruptHandler, args),
            (r"/cull", CullHandler, args),
        ]
    )


def make_proxy(lms_url: str) -> Any:
    """configurable-http-proxy (Python): everything to the LMS but the running labs."""
    import configurable_http_proxy
    from configurable_http_proxy.configproxy import PythonProxy

    # It adds a handler to the root logger when imported: ours already prints everything.
    logging.root.removeHandler(configurable_http_proxy.handler)

    return PythonProxy(
        {
            "default_target": lms_url,
            "x_forward": True,
            "proxy_timeout": 300,  # a large export may take a while
            "log": logging.getLogger("lms.lab.proxy"),
        }
    )


async def serve(hub: LabHub, public: tuple[str, int], stop: asyncio.Event) -> None:
    """Serve the proxy and the API until `stop` is set; then stop every lab server."""
    orphans = hub.stop_orphans()
    if orphans:
        log.warning("stopped %d lab servers a previous hub left running", len(orphans))
    api_server = api_app(hub).listen(hub.api_port, hub.api_host)
    public_server = None
    if hub.proxy is not None:
        public_server = hub.proxy.proxy_app.listen(public[1], public[0], xheaders=False)
    culler = asyncio.create_task(hub.cull_forever())
    try:
        await stop.wait()
    finally:
        culler.cancel()
        if public_server is not None:
            public_server.stop()
        await hub.stop_all("hub stopped")
        api_server.stop()
        hub._threads.shutdown(wait=False)

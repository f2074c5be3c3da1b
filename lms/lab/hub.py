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
- **Who gets in.** The proxy itself checks every request to /lab/<owner>/ against the LMS's
  server-side sessions (session_owner: a signed-out, revoked or deactivated session is refused at
  once, answers are cached for a few seconds), removes the LMS's cookies, forwarded headers a
  client made up, and adds the lab server's own credential. Lab servers hold no secret of the LMS.
- **Lab servers in a sandbox.** Each runs in bubblewrap under a uid of its own (as root): the
  system and the Python environment read-only, only its owner's workspace and its private folder
  writable, the seccomp filter of the kernels, a cgroup capping its memory and processes.
- **API.** The LMS speaks to the hub on a private port with a token derived from the LMS secret
  key (lms.services.labs); each lab server has a token of its own that only lends and returns
  its owner's kernels (lms.lab.kernels).

It is started by `flask lms labs` (make run does); what it does is recorded through a
Recorder (lms.services.labs), which the LMS pages read.

Over 400 lines: the labs-at-scale issue replaces this hub with JupyterHub, so it is not
split meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from autograder import cgroups, leases
from autograder.pool import Kernel, KernelPool
from lms.lab import base_url, hub_token, kernels, launch, relay, server
from lms.lab.client import LabClient, LabClientError
from lms.lab.identity import TOKEN_HEADER

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVER_START_TIMEOUT = 60.0
# Files of the notebook's folder copied into a kernel's sandbox: at most this many, this big.
KERNEL_FILES_MAX = 500
KERNEL_FILES_MAX_BYTES = 256 * 1024 * 1024
SKIPPED_FOLDERS = {".ipynb_checkpoints", "__pycache__", ".git"}


CPU, GPU = "cpu", "gpu"
# The kernels given back in this many seconds set the pace of the queue (estimated_wait).
RETURN_WINDOW = 15 * 60
# How long the proxy trusts an answer about a session (sign-out also stops the lab at once).
SESSION_CACHE_SECONDS = 5.0
# Cookies of the LMS that never reach a lab server (besides the session cookie, whatever the
# site names it).
LMS_COOKIES = ("session", "lms_device")
# Forwarded headers a client may have made up: the proxy sets its own.
FORWARDED = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port")


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
    # The LMS's answer to "whose valid session is this cookie?" (blocking; None: nobody's).
    session_owner: Callable[[str], int | None] | None = None
    trusted_proxies: int = 1  # LMS_TRUSTED_PROXIES: this hub and any proxy in front of it
    sandbox: str = "bwrap"  # lab servers run in bubblewrap ("off": development only)
    max_servers: int = 50
    kernels: int = 4
    kernels_per_learner: int = 2
    idle_seconds: float = 30 * 60
    cull_every_seconds: float = 60.0
    gateway_url: str = ""  # kernels from a Jupyter Kernel Gateway instead of the pool
    gateway_token: str = ""  # the gateway's KG_AUTH_TOKEN, if it has one
    gpu_idle_seconds: float = 10 * 60  # a GPU kernel idle this long gives its slot back
    # A kernel no browser has been connected to for this long goes back to the pool.
    kernel_release_seconds: float = 120.0


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
    token: str = ""  # the server's credential: the proxy adds it to its owner's requests
    api_token: str = ""  # what the server shows the hub's API (its owner's kernels only)
    lease: leases.Lease | None = None  # its sandbox uid (as root)
    cgroup: cgroups.SandboxCgroup | None = None
    relay_folder: Path | None = None  # where its kernels' channels are relayed (lms.lab.relay)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: str | None = None
    last_activity: datetime | None = None

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Registration:
    """A lab server started by JupyterHub's spawner (lms.lab.spawner), not by this hub: what
    lending it kernels needs."""

    owner: int
    api_token: str  # what the server shows this API (its owner's kernels only)
    relay_folder: Path
    uid: int | None


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
    relay: relay.KernelRelay | None = None  # its channels, as its lab server reaches them


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
        # Lab servers JupyterHub started, by owner (their kernels are lent here too).
        self.registered: dict[int, Registration] = {}
        # Per pool, the learners waiting for a kernel, first first.
        self.queues: dict[str, deque[int]] = {kind: deque() for kind in pools}
        # Per pool, when kernels went back to it lately (monotonic seconds): the rate at which
        # the queue moves, for the wait a learner is told.
        self.returns: dict[str, deque[float]] = {kind: deque(maxlen=200) for kind in pools}
        self._kernel_freed = asyncio.Condition()
        self.runtime = settings.data_dir / "labs"
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lab-hub")
        # cookie value -> (owner or None, until when the answer holds)
        self._sessions: dict[str, tuple[int | None, float]] = {}
        self._owner_locks: dict[int, asyncio.Lock] = {}

    async def blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    # Who may reach a lab --------------------------------------------------------------------

    async def session_owner(self, cookie: str) -> int | None:
        """The LMS user whose valid server-side session this cookie value is (None: nobody's,
        or signed out, revoked, deactivated). Answers are kept SESSION_CACHE_SECONDS."""
        check = self.settings.session_owner
        if not cookie or check is None:
            return None
        now = time.monotonic()
        cached = self._sessions.get(cookie)
        if cached is not None and cached[1] > now:
            return cached[0]
        owner = await self.blocking(check, cookie)
        if len(self._sessions) > 10_000:  # a flood of made-up cookies stays bounded
            self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
            if len(self._sessions) > 10_000:
                self._sessions.clear()
        self._sessions[cookie] = (owner, now + SESSION_CACHE_SECONDS)
        return owner

    def forget_sessions(self, owner: int) -> None:
        """The LMS says this learner's sessions changed (signed out somewhere)."""
        self._sessions = {k: v for k, v in self._sessions.items() if v[0] != owner}

    def api_owner(self, token: str) -> int | None:
        """The owner whose lab server holds this API token (None: no server's)."""
        holders = [(lab.owner, lab.api_token) for lab in self.servers.values()]
        holders += [(held.owner, held.api_token) for held in self.registered.values()]
        for owner, api_token in holders:
            if api_token and hmac.compare_digest(token.encode(), api_token.encode()):
                return owner
        return None

    async def register(self, registration: Registration) -> None:
        """A lab server JupyterHub started: its kernels are lent from here."""
        await self.unregister(registration.owner)
        self.registered[registration.owner] = registration

    async def unregister(self, owner: int) -> bool:
        """The server is gone: its kernels go back to the pool."""
        found = self.registered.pop(owner, None)
        for lent in [k for k in self.kernels.values() if k.owner == owner]:
            await self.give_back(lent.id)
        return found is not None

    def _relay_of(self, owner: int) -> tuple[Path, int | None] | None:
        """Where the owner's server takes its kernels' channels, and its uid."""
        lab = self.servers.get(owner)
        if lab is not None and lab.relay_folder is not None:
            return lab.relay_folder, lab.lease.value if lab.lease is not None else None
        held = self.registered.get(owner)
        return None if held is None else (held.relay_folder, held.uid)

    # Lab servers -----------------------------------------------------------------------------

    def workspace(self, owner: int) -> Path:
        return self.settings.data_dir / "workspaces" / str(owner)

    def _owner_lock(self, owner: int) -> asyncio.Lock:
        """One start or stop of a learner's server at a time: a lab reopened while its idle
        stop is still under way starts only once the old one (and its kernels) is gone."""
        return self._owner_locks.setdefault(owner, asyncio.Lock())

    async def start_server(self, owner: int, language: str | None = None) -> tuple[LabServer, bool]:
        """The learner's running server, started if needed; (server, whether it was started).
        Its interface speaks `language` (the learner's LMS language) from the next page load."""
        async with self._owner_lock(owner):
            self._set_language(owner, language)
            return await self._start_server(owner)

    def _set_language(self, owner: int, language: str | None) -> None:
        config = self.runtime / str(owner) / "config"
        server.write_language(config, language)
        running = self.servers.get(owner)
        if running is not None and running.lease is not None:  # its sandbox uid owns its files
            launch.own_tree(config / "lab", running.lease.value)

    async def _start_server(self, owner: int) -> tuple[LabServer, bool]:
        running = self.servers.get(owner)
        if running is not None and running.process.poll() is None and running.failed is None:
            await asyncio.wait_for(running.ready.wait(), SERVER_START_TIMEOUT)
            if running.failed is None:
                return running, False
        if running is not None:
            await self._stop_server(owner, running, "failed")
        if len(self.servers) >= self.settings.max_servers:
            raise HubError(503, "lab-servers-full")
        lab = self._spawn(owner)
        self.servers[owner] = lab
        try:
            await self._wait_until_serving(lab)
        except HubError as e:
            lab.failed = str(e)
            lab.ready.set()
            await self._stop_server(owner, lab, "failed")
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
        for name in ("runtime", "data", "config"):
            (private / name).mkdir(parents=True, exist_ok=True)
        os.chmod(private, 0o700)
        root = self.workspace(owner)
        root.mkdir(parents=True, exist_ok=True)
        config = server.write_config(
            private / "lab.json",
            owner,
            idle_seconds=self.settings.idle_seconds,
            gateway_url=self.settings.gateway_url,
            release_seconds=self.settings.kernel_release_seconds,
        )
        port = free_port()
        token, api_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "USER": f"learner-{owner}",
            **server.environment(private),
            "PYTHONPATH": str(launch.REPOSITORY),
            server.TOKEN_ENV: token,
            kernels.HUB_URL_ENV: f"http://127.0.0.1:{self.api_port}",
            kernels.HUB_TOKEN_ENV: api_token,
            kernels.OWNER_ENV: str(owner),
        }
        if self.settings.gateway_url and self.settings.gateway_token:
            # jupyter-server's gateway client reads it there: never on a command line.
            env["JUPYTER_GATEWAY_AUTH_TOKEN"] = self.settings.gateway_token
        launched = launch.launch(
            owner,
            server.command(config, root, port),
            env,
            root=root,
            private=private,
            sandboxed=self.settings.sandbox == "bwrap",
        )
        return LabServer(
            owner,
            port,
            launched.process,
            datetime.now(UTC),
            token,
            api_token,
            launched.lease,
            launched.cgroup,
            launched.relay_folder,
        )

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
                await client.fetch(url, headers=self.server_headers(lab), request_timeout=2)
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

    async def stop_server(self, owner: int, reason: str, only: LabServer | None = None) -> bool:
        """Stop the learner's server (only that one when `only` is given: not a newer one
        started meanwhile); False when there was none to stop."""
        async with self._owner_lock(owner):
            lab = self.servers.get(owner)
            if lab is None or (only is not None and lab is not only):
                return False
            return await self._stop_server(owner, lab, reason)

    async def _stop_server(self, owner: int, lab: LabServer, reason: str) -> bool:
        if self.servers.get(owner) is lab:
            del self.servers[owner]
        if self.proxy is not None:
            try:
                self.proxy.remove_route(base_url(owner))
            except KeyError:
                pass
        if lab.process.poll() is None:
            await self._ask_to_shut_down(lab)  # the server shuts its kernels down first
            for _ in range(100):
                if lab.process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                try:
                    os.killpg(lab.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await self.blocking(lab.process.wait)
        if lab.cgroup is not None:
            await self.blocking(lab.cgroup.remove)
        if lab.lease is not None:
            lab.lease.release()
        self._sessions = {k: v for k, v in self._sessions.items() if v[0] != owner}
        for lent in [k for k in self.kernels.values() if k.owner == owner]:
            await self.give_back(lent.id)  # what a killed server could not give back
        await self.blocking(self.recorder.server_stopped, owner, reason)
        log.info("lab server of learner %s stopped (%s)", owner, reason)
        return True

    async def _ask_to_shut_down(self, lab: LabServer) -> None:
        """jupyter-server's own shutdown (kernels first); a signal to its sandbox otherwise."""
        url = f"{lab.target}{base_url(lab.owner)}api/shutdown"
        request = HTTPRequest(
            url, method="POST", body=b"", headers=self.server_headers(lab), request_timeout=5
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError):
            try:
                os.killpg(lab.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

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

    def estimated_wait(self, place: int, kind: str, now: float | None = None) -> float | None:
        """Seconds until the learner at `place` gets a kernel, at the rate kernels went back
        to the pool in the last RETURN_WINDOW seconds; None until two have gone back."""
        now = time.monotonic() if now is None else now
        recent = [t for t in self.returns.get(kind, ()) if now - t <= RETURN_WINDOW]
        if len(recent) < 2:
            return None
        per_second = len(recent) / max(now - recent[0], 60.0)
        return place / per_second

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
        self._check_cap(owner, kind)  # at once, when the learner is over it already
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
                # Again now, with the lock held: parallel requests of one learner queued
                # together, and each reservation counts before the next is looked at.
                self._check_cap(owner, kind)
                # Reserved before the lock is let go: the next in the queue waits for another.
                self.kernels[reference] = LentKernel(
                    reference, owner, None, 0, started, kind, None, lab_kernel_id
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
        where = self._relay_of(owner)
        try:
            if where is None:
                raise HubError(409, "the lab server is not running")
            folder, uid = where
            inside = relay.INSIDE if self.settings.sandbox == "bwrap" else str(folder)
            channels = await self.blocking(
                relay.KernelRelay, kernel.connection, folder, f"k{reference}", uid, inside
            )
        except BaseException:
            self.kernels.pop(reference, None)
            pool.give_back(kernel)
            await self._notify()
            raise
        usage = await self.blocking(self.recorder.kernel_started, owner, relative)
        # A GPU kernel's sandbox holds one slot, and sees only that device's files.
        device = kernel.device.partition(":")[2] if kind == GPU else None
        lent = LentKernel(
            reference, owner, kernel, usage, started, kind, device, lab_kernel_id, channels
        )
        self.kernels[reference] = lent
        return lent

    def _check_cap(self, owner: int, kind: str) -> None:
        """Refuse a kernel over the learner's cap (reservations included)."""
        held = len(self.lent(owner=owner))
        if held >= self.settings.kernels_per_learner:
            raise HubError(
                429,
                f"You already have {held} kernels running: shut one down "
                "(Running tab or Kernel menu) to start another.",
            )
        if kind == GPU and self.lent(GPU, owner):
            raise HubError(429, "You already have a GPU kernel: shut it down to start another one.")

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
        if lent.relay is not None:
            await self.blocking(lent.relay.close)
        if lent.kernel is not None:
            self.pools[lent.kind].give_back(lent.kernel)
            self.returns[lent.kind].append(time.monotonic())
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

    @staticmethod
    def server_headers(lab: LabServer) -> dict[str, str]:
        """How the hub speaks to a lab server as its owner: the server's own credential."""
        return {TOKEN_HEADER: lab.token}

    async def last_activity(self, lab: LabServer) -> datetime | None:
        """When the server last saw its learner or a kernel do anything (its /api/status)."""
        url = f"{lab.target}{base_url(lab.owner)}api/status"
        request = HTTPRequest(url, headers=self.server_headers(lab), request_timeout=5)
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
                await self.stop_server(owner, "exited", only=lab)
                continue
            seen = await self.last_activity(lab)
            if seen is not None:
                lab.last_activity = max(seen, lab.last_activity or seen)
            last = lab.last_activity or lab.started_at
            if (now - last).total_seconds() >= limit:
                if await self.stop_server(owner, "idle", only=lab):
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
                lab.target + base_url(lab.owner), headers=self.server_headers(lab), timeout=10
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
        wait = None if place is None or kind is None else self.estimated_wait(place, kind)
        return {
            "running": lab is not None and lab.ready.is_set() and lab.failed is None,
            "url": base_url(owner),
            "kernels": len(self.lent(owner=owner)),
            "queue_position": place,
            "queue": kind,  # "cpu" or "gpu": which kernels the learner waits for
            "estimated_wait_seconds": None if wait is None else round(wait),
        }


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
    """The LMS's token may do anything; a lab server's token only what KernelScoped allows,
    for its own owner."""

    hub: LabHub
    server_may_call = False  # a lab server's own token is good here (its kernels)
    server_owner: int | None = None  # set when a lab server's token was shown

    def initialize(self, hub: LabHub) -> None:
        self.hub = hub

    def prepare(self) -> None:
        given = self.request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"token {self.hub.token}".encode()):
            return
        owner = self.hub.api_owner(given[6:]) if given.startswith("token ") else None
        if owner is None or not self.server_may_call:
            raise web.HTTPError(403)
        self.server_owner = owner

    def check_owner(self, owner: int) -> None:
        if self.server_owner is not None and owner != self.server_owner:
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
            lab, started = await self.hub.start_server(
                int(owner), self.get_argument("language", None)
            )
        except HubError as e:
            raise _fail(e) from e
        self.finish({"url": base_url(lab.owner), "started": started})

    async def delete(self, owner: str) -> None:
        stopped = await self.hub.stop_server(int(owner), self.get_argument("reason", "stopped"))
        self.finish({"stopped": stopped})

    def get(self, owner: str) -> None:
        self.finish(self.hub.describe_owner(int(owner)))


class RegistrationHandler(ApiHandler):
    """JupyterHub's spawner (the hub's own token): a lab server it started, or stopped."""

    async def put(self, owner: str) -> None:
        body = self.body()
        try:
            uid = body.get("uid")
            registration = Registration(
                int(owner),
                str(body["api_token"]),
                Path(str(body["relay_folder"])),
                None if uid is None else int(uid),
            )
        except (KeyError, ValueError, TypeError):
            raise web.HTTPError(400) from None
        if len(registration.api_token) < 32:
            raise web.HTTPError(400, reason="the server's token is too short")
        await self.hub.register(registration)
        self.finish({"registered": True})

    async def delete(self, owner: str) -> None:
        self.finish({"unregistered": await self.hub.unregister(int(owner))})


class KernelsHandler(ApiHandler):
    server_may_call = True

    async def post(self) -> None:
        body = self.body()
        try:
            owner = int(body["owner"])
            self.check_owner(owner)
            lent = await self.hub.lend(
                owner, str(body.get("cwd", "")), str(body.get("kernel_id", ""))
            )
        except HubError as e:
            raise _fail(e) from e
        except (KeyError, ValueError):
            raise web.HTTPError(400) from None
        assert lent.relay is not None
        connection = {k: v for k, v in lent.relay.connection.items() if k != "kernel_name"}
        self.finish({"id": lent.id, "connection": connection})


class KernelHandler(ApiHandler):
    server_may_call = True

    def lent_here(self, reference: str) -> None:
        lent = self.hub.kernels.get(reference)
        if lent is None:
            raise web.HTTPError(404)
        if self.server_owner is not None and lent.owner != self.server_owner:
            raise web.HTTPError(404)  # another learner's kernel: not there for this server

    async def get(self, reference: str) -> None:
        self.lent_here(reference)
        alive = await self.hub.blocking(self.hub.alive, reference)
        self.finish({"alive": alive})

    async def delete(self, reference: str) -> None:
        if reference in self.hub.kernels:
            self.lent_here(reference)
        self.finish({"given_back": await self.hub.give_back(reference)})


class InterruptHandler(KernelHandler):
    async def post(self, reference: str) -> None:
        self.lent_here(reference)
        await self.hub.blocking(self.hub.interrupt, reference)
        self.finish({"ok": True})


class SessionsHandler(ApiHandler):
    def post(self, owner: str) -> None:
        """The LMS: this learner signed out somewhere; ask again about their cookies."""
        self.hub.forget_sessions(int(owner))
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
            (r"/servers/(\d+)/registration", RegistrationHandler, args),
            (r"/kernels", KernelsHandler, args),
            (r"/kernels/([0-9a-f]+)", KernelHandler, args),
            (r"/kernels/([0-9a-f]+)/interrupt", InterruptHandler, args),
            (r"/sessions/(\d+)", SessionsHandler, args),
            (r"/cull", CullHandler, args),
        ]
    )


LAB_PATH = re.compile(r"^/lab/(\d+)(?:/|$)")


def make_proxy(lms_url: str, hub: LabHub | None = None) -> Any:
    """configurable-http-proxy (Python): everything to the LMS but the running labs, whose
    requests the hub lets through only for their owner's valid session (LabProxyHandler)."""
    import configurable_http_proxy
    from configurable_http_proxy.configproxy import PythonProxy
    from configurable_http_proxy.handlers import ProxyHandler

    # It adds a handler to the root logger when imported: ours already prints everything.
    logging.root.removeHandler(configurable_http_proxy.handler)

    class LabProxyHandler(ProxyHandler):  # type: ignore[misc]
        """Forwarded headers as this proxy saw the request (never as a client wrote them),
        and, for a lab, the owner's session checked and the LMS's cookies left behind."""

        async def prepare(self) -> None:
            self.lab_headers: dict[str, str] = {}
            found = LAB_PATH.match(self.request.path)
            if hub is None or found is None:
                return
            owner = int(found.group(1))
            lab = hub.servers.get(owner)
            if lab is None or not lab.ready.is_set() or lab.failed is not None:
                return  # not running: the LMS answers (its "your lab is stopped" page)
            cookie = self.get_cookie(hub.settings.session_cookie) or ""
            signed_in = await hub.session_owner(cookie)
            if signed_in != owner:
                self._refuse(signed_in)
                return
            self.lab_headers = hub.server_headers(lab)

        def select_subprotocol(self, subprotocols: list[str]) -> str | None:
            """The subprotocol the lab server chose (Jupyter's kernel protocol v1): without it
            the browser drops the socket and falls back, an error on every lab open."""
            client = getattr(self, "ws_client", None)
            chosen = client.selected_subprotocol if client is not None else None
            return chosen if chosen in subprotocols else None

        def on_message(self, message: str | bytes) -> None:
            """As the base class, but binary frames stay binary: Jupyter's kernel protocol v1
            sends binary, which the base class forwards as (invalid) text."""
            if self.ws_client:
                prefix = self.target["prefix"] if self.target else ""
                if prefix:
                    self.proxy.update_last_activity(prefix)
                self.ws_client.write_message(message, binary=isinstance(message, bytes))

        def _refuse(self, signed_in: int | None) -> None:
            page = self.request.method == "GET" and "text/html" in self.request.headers.get(
                "Accept", ""
            )
            if signed_in is None and page:
                self.redirect("/login?next=" + urllib.parse.quote(self.request.uri or "/"))
            else:
                self.set_status(403 if signed_in is not None else 401)
                self.finish({"message": "this lab is not yours, or your session has ended"})

        def _get_proxy_request(self, url: str) -> Any:
            request = super()._get_proxy_request(url)
            headers = request.headers
            for name in FORWARDED:
                kept = _trusted_values(self.request.headers.get(name, ""), hub)
                headers.pop(name, None)
                if kept:
                    headers[name] = kept
            headers["x-forwarded-for"] = _joined(
                headers.get("x-forwarded-for"), self.request.remote_ip
            )
            headers["x-forwarded-proto"] = _joined(headers.get("x-forwarded-proto"), "http")
            host = self.request.headers.get("Host", "")
            headers["x-forwarded-host"] = _joined(headers.get("x-forwarded-host"), host)
            if self.lab_headers and hub is not None:
                headers["Cookie"] = _without_lms_cookies(
                    self.request.headers.get("Cookie", ""), hub.settings.session_cookie
                )
                if not headers["Cookie"]:
                    del headers["Cookie"]
                headers.update(self.lab_headers)
            else:
                headers.pop(TOKEN_HEADER, None)  # never a client's made-up credential
            return request

    proxy = PythonProxy(
        {
            "default_target": lms_url,
            "x_forward": True,
            "proxy_timeout": 300,  # a large export may take a while
            "log": logging.getLogger("lms.lab.proxy"),
        }
    )
    proxy.proxy_app = web.Application([(r"/(.*)", LabProxyHandler, {"proxy": proxy})])
    return proxy


def _trusted_values(header: str, hub: LabHub | None) -> str:
    """Of a client's X-Forwarded-* header, only what trusted proxies in front of this one
    added (the last LMS_TRUSTED_PROXIES - 1 values); nothing when this hub is the front."""
    outer = (hub.settings.trusted_proxies if hub is not None else 1) - 1
    if outer <= 0 or not header:
        return ""
    values = [v.strip() for v in header.split(",") if v.strip()]
    return ", ".join(values[-outer:])


def _joined(existing: str | None, value: str) -> str:
    return f"{existing}, {value}" if existing else value


def _without_lms_cookies(header: str, session_cookie: str) -> str:
    kept = []
    for part in header.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name not in LMS_COOKIES and name != session_cookie:
            kept.append(part.strip())
    return "; ".join(kept)


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

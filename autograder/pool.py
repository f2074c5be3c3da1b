"""The warm kernel pool: sandboxes whose next kernel is already started and connected.

Each slot is one sandbox (autograder.sandbox) with a fork server in it. A slot is *warm* when its
server has forked a fresh kernel and our client has had its kernel_info reply: a submission then
only waits for its files to be written. After use the slot is recycled in the background: every
process of the sandbox is killed, its home wiped, and the next kernel forked and connected. No
state is ever shared between two learners: a new process per learner, and one learner per sandbox
at a time.

Each sandbox gets, for its whole life: two uids leased host-wide (as root), a cgroup capping its
memory and processes (where the host has cgroups), the seccomp filter, and for a GPU pool one GPU
slot leased host-wide, whose device files are the only ones it sees. Everything read from a
sandbox is framed, size-capped and timed: a sandbox can neither flood nor stall this process.

Over 400 lines on purpose: the fork server's client, the kernel client and the pool share
the framing, size caps and timeouts that keep a sandbox from flooding or stalling us.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import queue
import secrets
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TypeVar

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient

from autograder import cgroups, leases, sandbox, seccomp
from autograder.gpu import GpuSlots, slot_environment
from autograder.sandbox import SandboxPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

# The largest single message a kernel may send us: a bigger one disconnects it.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]  # what nbgrader passes its kernels
SERVER_START_TIMEOUT = 120.0
KERNEL_READY_TIMEOUT = 60.0
SEND_TIMEOUT_MS = 5000
# The largest reply a fork server may send (the guard's reports are capped at 4 MiB).
MAX_REPLY_BYTES = 8 * 1024 * 1024


class KernelPoolError(RuntimeError):
    pass


class KernelStartError(KernelPoolError):
    """A kernel was lost before any learner code ran in it: the grader's failure, not the
    learner's, so the notebook is run again on another kernel."""


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from a thread whose event loop is already running (an embedding app,
    Playwright's sync API in tests): then in a short-lived thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="grading-loop") as executor:
        return executor.submit(asyncio.run, coroutine).result()


class ForkServer:
    """A sandbox with a fork server in it: JSON lines to it, length-prefixed frames back."""

    def __init__(
        self,
        slot: int,
        policy: SandboxPolicy,
        preload: list[str],
        work: Path,
        launcher: ThreadPoolExecutor,
        first_uid: int = sandbox.FIRST_UID,
        gpu_device: str | None = None,
    ) -> None:
        self.slot = slot
        self.policy = policy
        self.run_dir = work / f"slot-{slot}"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file: IO[bytes] = open(work / f"slot-{slot}.log", "wb")  # noqa: SIM115
        self.lock = threading.Lock()
        self.leases: list[leases.Lease] = []
        self.cgroup: cgroups.SandboxCgroup | None = None
        self.gpu_device = gpu_device
        self.process: subprocess.Popen[bytes] | None = None
        sandboxed = policy.mode == "bwrap"
        self.uids: tuple[int, int] | None = None
        try:
            if sandboxed and os.geteuid() == 0:
                candidates = range(first_uid, first_uid + sandbox.UID_COUNT)
                self.leases += [leases.claim("sandbox-uid", candidates) for _ in range(2)]
                self.uids = (self.leases[0].value, self.leases[1].value)
            if sandboxed:
                self.cgroup = cgroups.SandboxCgroup.create(
                    f"slot-{slot}", policy.sandbox_memory_bytes, policy.processes
                )
            self.process, self.root = self._start(policy, launcher)
            home = sandbox.HOME if sandboxed else str(self.run_dir / "home")
            run = sandbox.RUN_DIR if sandboxed else str(self.run_dir)
            self.home, self.inner_run_dir = home, run
            # Where this process reaches the sandbox's run folder (its sockets).
            self.outer_run_dir = f"{self.root}{run}" if sandboxed else run
            if not sandboxed:
                Path(home).mkdir(parents=True, exist_ok=True)
            env = {**sandbox.server_environment(), "HOME": home}
            config = {"env": env, "home": home, "run_dir": run}
            self.hello = self.request({**config, "preload": preload}, timeout=SERVER_START_TIMEOUT)
            if not self.hello.get("ready"):
                raise KernelPoolError(f"fork server failed to start: {self.hello}")
        except BaseException:
            self.close()
            raise

    def _start(
        self, policy: SandboxPolicy, launcher: ThreadPoolExecutor
    ) -> tuple[subprocess.Popen[bytes], str]:
        """Start bwrap (or, unsandboxed, the server itself); (the process, the host path of
        the sandbox's root: /proc/<sandbox pid>/root)."""
        if policy.mode != "bwrap":
            command = sandbox.server_command(policy, self.run_dir, None)
            process = self._popen(launcher, command, ())
            return process, ""
        seccomp_fd = seccomp.program_fd()
        info_read, info_write = os.pipe()
        try:
            command = sandbox.server_command(
                policy, self.run_dir, self.uids, seccomp_fd, info_write
            )
            if self.cgroup is not None:
                command = self.cgroup.wrap(command)
            process = self._popen(launcher, command, (seccomp_fd, info_write))
        finally:
            os.close(seccomp_fd)
            os.close(info_write)
        try:
            info = _read_all(info_read, 64 * 1024, SERVER_START_TIMEOUT)
        finally:
            os.close(info_read)
        try:
            pid = int(json.loads(info)["child-pid"])
        except (ValueError, KeyError, TypeError) as e:
            process.kill()
            raise KernelPoolError(f"sandbox {self.slot} did not start: {self.log_tail()}") from e
        return process, f"/proc/{pid}/root"

    def _popen(
        self, launcher: ThreadPoolExecutor, command: list[str], fds: tuple[int, ...]
    ) -> subprocess.Popen[bytes]:
        # Started from the pool's long-lived launcher thread: bwrap --die-with-parent is bound to
        # the thread that started it, and a sandbox must not die with a short-lived one.
        return launcher.submit(
            subprocess.Popen,
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            cwd=self.run_dir,
            env=self._environment(),
            pass_fds=fds,
            bufsize=0,
        ).result()

    def log_tail(self, lines: int = 8) -> str:
        self.log_file.flush()
        try:
            text = self.log_file.name and Path(self.log_file.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(str(text).strip().splitlines()[-lines:])

    def _environment(self) -> dict[str, str]:
        if self.policy.mode == "bwrap":
            return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env = sandbox.server_environment()
        env["PYTHONPATH"] = str(sandbox.PACKAGE_DIR.parent)
        return env

    def request(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send one request and read its reply frame: at most MAX_REPLY_BYTES, within timeout."""
        with self.lock:
            process = self.process
            assert process is not None and process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(message).encode() + b"\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError) as e:
                raise KernelPoolError(f"sandbox {self.slot} is gone: {self.log_tail()}") from e
            fd = process.stdout.fileno()
            deadline = time.monotonic() + timeout
            try:
                header = _read_exact(fd, 4, deadline)
                length = int.from_bytes(header, "big")
                if length > MAX_REPLY_BYTES:
                    raise KernelPoolError(
                        f"sandbox {self.slot} sent a {length}-byte reply (over the cap)"
                    )
                data = _read_exact(fd, length, deadline)
            except KernelPoolError as e:
                self._kill()  # its channel is out of step now: the sandbox is replaced
                raise KernelPoolError(
                    f"sandbox {self.slot} did not answer {message.get('op')}: {e}. "
                    f"{self.log_tail()}"
                ) from e
            try:
                reply: dict[str, Any] = json.loads(data)
            except ValueError as e:
                self._kill()
                raise KernelPoolError(f"sandbox {self.slot} sent a garbled reply") from e
            return reply

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def stop(self) -> None:
        """Ask the server to kill its sandbox's processes and exit (without waiting)."""
        if self.alive() and self.process is not None and self.process.stdin is not None:
            try:
                with self.lock:
                    self.process.stdin.write(b'{"op": "exit"}\n')
                    self.process.stdin.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        self.stop()
        process = self.process
        if process is not None:
            if self.alive():
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:  # a dead server's stdin: buffered bytes cannot be flushed
                        pass
        if self.cgroup is not None:
            self.cgroup.remove()
        for lease in self.leases:
            lease.release()
        self.log_file.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    """Exactly `size` bytes from fd before the deadline (KernelPoolError otherwise)."""
    chunks: list[bytes] = []
    missing = size
    while missing:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise KernelPoolError("timed out")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            raise KernelPoolError("timed out")
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            raise KernelPoolError("closed its channel")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _read_all(fd: int, limit: int, timeout: float) -> bytes:
    """Everything written to fd until its writer closes it (capped, timed)."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) <= limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


class SandboxedKernelClient(AsyncKernelClient):
    """A kernel client that asks the fork server, not a heartbeat, whether the kernel lives,
    and sends a test cell as the guard's own message type (autograder.guard)."""

    server: ForkServer | None = None
    next_test: tuple[str, bool] | None = None  # (nonce, has hidden tests) of the next execute

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
    ) -> str:
        test, self.next_test = self.next_test, None
        if test is None:
            return str(
                super().execute(
                    code, silent, store_history, user_expressions, allow_stdin, stop_on_error
                )
            )
        from autograder.guard import TEST_REQUEST, test_content

        msg = self.session.msg(TEST_REQUEST, test_content(code, test[0], test[1]))
        self.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    async def _async_is_alive(self) -> bool:
        if self.server is None:
            return True
        try:
            return bool(self.server.request({"op": "alive"}).get("alive"))
        except KernelPoolError:
            return False

    is_alive = _async_is_alive


class SandboxKernelManager:
    """What nbclient asks of a kernel manager, answered by the fork server."""

    def __init__(self, server: ForkServer) -> None:
        self.server = server
        self.has_kernel = True
        self.ipykernel = True

    async def interrupt_kernel(self) -> None:
        self.server.request({"op": "interrupt"})

    async def is_alive(self) -> bool:
        try:
            return bool(self.server.request({"op": "alive"}).get("alive"))
        except KernelPoolError:
            return False


@dataclass
class Kernel:
    """A started, connected kernel in its sandbox, lent to one submission."""

    server: ForkServer
    connection: dict[str, Any]
    device: str
    gpu_slot: int | None = None
    context: zmq.asyncio.Context | None = field(default=None, repr=False)

    @property
    def home(self) -> str:
        return self.server.home

    def put_files(self, folder: str, files: dict[str, bytes]) -> None:
        encoded = [[rel, base64.b64encode(data).decode()] for rel, data in files.items()]
        reply = self.server.request({"op": "put", "dir": folder, "files": encoded}, timeout=120)
        if "error" in reply:
            raise KernelPoolError(reply["error"])

    def client(self) -> SandboxedKernelClient:
        """A new client (own zmq context: clients are used from one event loop each)."""
        self.context = zmq.asyncio.Context()
        self.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        # A kernel that stopped reading (broken by its own code) must not block a send forever.
        self.context.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        self.context.setsockopt(zmq.LINGER, 0)
        client = SandboxedKernelClient(context=self.context)
        client.load_connection_info(self.connection)  # type: ignore[arg-type]
        client.server = self.server
        return client

    async def connect(self, timeout: float = 30.0) -> SandboxedKernelClient:
        """A client whose IOPub subscription is live: the kernel has welcomed it.

        A subscription made just before executing may otherwise miss the first outputs (ZeroMQ's
        slow joiner); ipykernel greets each new subscriber with `iopub_welcome`.
        """
        client = self.client()
        client.start_channels(hb=False)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await client.is_alive():
                client.stop_channels()
                self.close_context()
                raise KernelStartError(f"the kernel did not start: {self.server.log_tail()}")
            try:
                message = await client.get_iopub_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if message["msg_type"] == "iopub_welcome":
                return client

    def manager(self) -> SandboxKernelManager:
        return SandboxKernelManager(self.server)

    def reports(self) -> dict[str, Any]:
        """The guard's authentic reports by nonce, and whether forged or flooding lines were
        written to its pipe (read by the trusted fork server)."""
        try:
            reply = self.server.request({"op": "reports"}, timeout=30)
        except KernelPoolError:
            return {"reports": {}, "forged": 0, "flooded": False, "lost": True}
        return reply

    def close_context(self) -> None:
        if self.context is not None:
            self.context.destroy(linger=0)
            self.context = None


class KernelPool:
    """`size` sandboxes, each keeping one kernel warm; `kernel()` lends the next warm one."""

    def __init__(
        self,
        size: int,
        policy: SandboxPolicy,
        preload: list[str] | None = None,
        gpu: bool = False,
        gpu_slots: GpuSlots | None = None,
        cell_limits: dict[str, int] | None = None,
        folder: str = "submission",
        unset_env: tuple[str, ...] = (),
        first_uid: int = sandbox.FIRST_UID,
        guard: bool = True,
    ) -> None:
        sandbox.check_available(policy)
        self.size = max(1, size)
        self.policy = policy
        self.preload = list(preload or [])
        self.gpu = gpu
        self.gpu_slots = gpu_slots or GpuSlots(())
        self.limits = cell_limits or policy.kernel_limits()
        self.folder = folder  # the kernels' working folder in their home, where files go
        self.unset_env = unset_env  # of the sandbox's environment, what these kernels lack
        self.first_uid = first_uid  # as root: the range sandbox uids are leased from
        self.guard = guard  # grading kernels run the guard; lab kernels are not graded
        if gpu and self.gpu_slots.available and policy.mode == "bwrap":
            self.size = min(self.size, len(self.gpu_slots.devices))  # a sandbox per slot
        self.work = Path(tempfile.mkdtemp(prefix="kernel-pool-"))
        os.chmod(self.work, 0o711)
        self.warm: queue.Queue[Kernel | BaseException] = queue.Queue()
        self.servers: list[ForkServer] = []
        self.closed = False
        self.started = time.perf_counter()
        self._threads: list[threading.Thread] = []
        self._slot_lock = threading.Lock()
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-launcher")
        for slot in range(self.size):
            self._in_background(self._start_slot, slot)

    def _in_background(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _start_slot(self, slot: int) -> None:
        gpu_lease = None
        try:
            policy, device = self.policy, None
            if self.gpu and self.gpu_slots.available and self.policy.mode == "bwrap":
                # One GPU slot per sandbox for its whole life, leased host-wide (several
                # workers and the lab hub share the slots); only its device files go in.
                gpu_lease = leases.claim(
                    "gpu-slot", range(len(self.gpu_slots.devices)), wait=SERVER_START_TIMEOUT
                )
                device = self.gpu_slots.device(gpu_lease.value)
                policy = replace(
                    self.policy, gpu_devices=self.gpu_slots.bind_pairs(gpu_lease.value)
                )
            server = ForkServer(
                slot, policy, self.preload, self.work, self._launcher, self.first_uid, device
            )
            if gpu_lease is not None:
                server.leases.append(gpu_lease)
                gpu_lease = None
            with self._slot_lock:
                self.servers.append(server)
            self.warm.put(self._spawn(server))
        except BaseException as e:  # surfaces in kernel() instead of dying silently
            if gpu_lease is not None:
                gpu_lease.release()
            self.warm.put(e)

    def _spawn(self, server: ForkServer) -> Kernel:
        gpu_slot, device = None, "cpu"
        env = sandbox.server_environment()
        env["HOME"] = server.home
        env["TMPDIR"] = f"{server.home}/.tmp"
        for name in self.unset_env:
            env.pop(name, None)
        if server.gpu_device is not None:
            env.update(slot_environment(server.gpu_device))
            device = f"gpu:{server.gpu_device}"
        elif self.gpu and self.gpu_slots.available:  # unsandboxed: the variable is all there is
            gpu_slot = self.gpu_slots.acquire()
            env["CUDA_VISIBLE_DEVICES"] = self.gpu_slots.device(gpu_slot)
            device = f"gpu:{self.gpu_slots.device(gpu_slot)}"
        elif self.gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        connection = {
            "transport": "ipc",
            "ip": f"{server.inner_run_dir}/kernel",
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "key": secrets.token_hex(32),
            "signature_scheme": "hmac-sha256",
            "kernel_name": "python3",
        }
        reply = server.request(
            {
                "op": "spawn",
                "connection": connection,
                "connection_file": f"{server.inner_run_dir}/kernel.json",
                "cwd": f"{server.home}/{self.folder}",
                "env": env,
                "limits": self.limits,
                "kernel_args": KERNEL_ARGS,
                "guard": self.guard,
                "hide_paths": [sandbox.GRADER_PATH, str(sandbox.PACKAGE_DIR.parent)],
            }
        )
        if "error" in reply:
            if gpu_slot is not None:
                self.gpu_slots.release(gpu_slot)
            raise KernelPoolError(reply["error"])
        outside = {**connection, "ip": f"{server.outer_run_dir}/kernel"}
        kernel = Kernel(server, outside, device, gpu_slot)
        self._wait_ready(kernel)
        return kernel

    def _wait_ready(self, kernel: Kernel) -> None:
        """Until the kernel answers kernel_info (shell only: its IOPub is left to the grader)."""

        async def ready() -> None:
            client = kernel.client()
            client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
            try:
                msg_id = client.kernel_info()
                deadline = time.monotonic() + KERNEL_READY_TIMEOUT
                while time.monotonic() < deadline:
                    try:
                        reply = await client.get_shell_msg(timeout=1.0)
                    except queue.Empty:
                        if not await client.is_alive():
                            break
                        continue
                    if reply["parent_header"].get("msg_id") == msg_id:
                        return
                raise KernelPoolError(f"the kernel did not start: {kernel.server.log_tail()}")
            finally:
                client.stop_channels()
                kernel.close_context()

        run_coroutine(ready())

    def _recycle(self, kernel: Kernel) -> None:
        server = kernel.server
        try:
            try:
                if server.alive():
                    server.request({"op": "reset"}, timeout=60)
            finally:
                if kernel.gpu_slot is not None:
                    self.gpu_slots.release(kernel.gpu_slot)
            if self.closed:
                return
            if not server.alive():
                raise KernelPoolError("sandbox died")
            self.warm.put(self._spawn(server))
        except BaseException:
            if self.closed:
                return
            log.warning("sandbox %s is replaced after a failure", server.slot)
            with self._slot_lock:
                if server in self.servers:
                    self.servers.remove(server)
            server.close()
            self._start_slot(server.slot)

    def lend(self, timeout: float = 300.0) -> Kernel:
        """The next warm kernel, until give_back(): for a holder that outlives one call (a
        learner's lab); a submission uses kernel()."""
        try:
            item = self.warm.get(timeout=timeout)
        except queue.Empty as e:
            raise KernelPoolError(f"no kernel became ready within {timeout:.0f} s") from e
        if isinstance(item, BaseException):
            raise KernelPoolError(f"the kernel pool could not start a kernel: {item}") from item
        return item

    def give_back(self, kernel: Kernel) -> None:
        """Kill the kernel with its sandbox's processes and warm the next one, in the
        background."""
        kernel.close_context()
        self._in_background(self._recycle, kernel)

    @property
    def warm_count(self) -> int:
        return self.warm.qsize()

    @contextmanager
    def kernel(self, timeout: float = 300.0) -> Iterator[Kernel]:
        """Lend the next warm kernel; it is killed with its sandbox's processes afterwards."""
        item = self.lend(timeout)
        try:
            yield item
        finally:
            self.give_back(item)

    def close(self) -> None:
        self.closed = True  # recycling stops before forking another kernel
        for thread in list(self._threads):
            thread.join(timeout=30)
        with self._slot_lock:
            servers, self.servers = self.servers, []
        for server in servers:
            server.stop()  # all at once, then wait for each
        for server in servers:
            server.close()
        self._launcher.shutdown()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

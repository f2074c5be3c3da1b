"""Fork server: runs inside one sandbox and forks a fresh ipykernel per learner in milliseconds.

The server imports ipykernel and the assignment's heavy modules once (numpy, pandas, torch without
initialising CUDA...), then reads JSON lines on stdin and answers length-prefixed JSON frames on
its own copy of stdout. `spawn` forks a child that becomes a brand-new kernel, so no learner ever
shares a process, a namespace or a module object with another. `reset` kills every other process
of the sandbox (its own PID namespace: `kill(-1)` reaches exactly them) and wipes the learner's
home, so the next learner finds nothing left over.

The kernel cannot reach its server: the child closes every descriptor but its own report pipe
before becoming a kernel (the control channel is gone), and, when the sandbox was started as
root, runs under a uid of its own without any capability while the server keeps only those it
needs (to change uids, signal and wipe the kernel's processes and files). The guard's reports
are read through autograder.guard.ReportReader: the first line carries the key, later lines
count only when signed with it, and the reading is capped.

Only the standard library is imported at the top: this module also runs unsandboxed
(LMS_SANDBOX=off) and its import must not start threads, which would not survive fork().

Over 400 lines on purpose: it runs inside the sandbox as one standalone script and may
import nothing of ours.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import fcntl
import importlib
import json
import os
import resource
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, BinaryIO

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
F_SETPIPE_SZ = 1031
# Linux capability numbers the server keeps after leaving root (see _drop_privileges).
CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID = 0, 1, 3, 5, 6, 7
SERVER_CAPABILITIES = (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID)
# A reply frame: 4 bytes of length, then that much JSON.
FRAME_HEADER = 4

# Imported before any fork: what every kernel imports while it starts (measured: without them a
# forked kernel spends 0.3 s importing the debugger and friends).
KERNEL_MODULES = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
    "IPython", "IPython.core.debugger", "IPython.core.completerlib", "IPython.core.oinspect",
    "matplotlib_inline", "sqlite3", "tornado.gen", "tornado.locks", "tornado.queues", "pdb",
    "pydoc", "mimetypes", "faulthandler", "code",
)  # fmt: skip


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _set_capabilities(capabilities: tuple[int, ...]) -> None:
    """Exactly these capabilities, permitted and effective (capset(2), version 3)."""
    mask = 0
    for number in capabilities:
        mask |= 1 << number
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = mask >> 32
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _become(uid: int, capabilities: tuple[int, ...]) -> None:
    """Change to `uid` (and its group) for good, keeping only `capabilities`."""
    if capabilities:
        _prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _set_capabilities(capabilities)
    if capabilities:
        _prctl(PR_SET_KEEPCAPS, 0)


def preload(names: list[str], probe: bool = True) -> tuple[list[str], list[str]]:
    """Import what kernels will need, except a module whose import warns or starts a thread.

    A warning at import is shown in the learner's cell by stock nbgrader (and costs a test its
    points if the import is in a test: nbgrader scores stderr as failure), so such a module is left
    for the kernel to import itself, exactly as stock does. A forked probe tries the imports first:
    a module half-imported into this process could not be imported again.
    """
    wanted = [name for name in names if name not in sys.modules]
    clean = set(_probe_imports(wanted)) if probe else set(wanted)
    loaded = [name for name in names if name in sys.modules or name in clean]
    for name in wanted:
        if name in clean:
            importlib.import_module(name)
    return loaded, [name for name in names if name not in loaded]


def _probe_imports(names: list[str]) -> list[str]:
    """The names that import in a forked child without a warning, an error or a thread."""
    if not names:
        return []
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            clean = []
            for name in names:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    try:
                        importlib.import_module(name)
                    except Exception:
                        continue
                if not caught and threading.active_count() == 1:
                    clean.append(name)
            os.write(write_end, json.dumps(clean).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return list(json.loads(data or b"[]"))


class Server:
    def __init__(
        self,
        home: Path,
        run_dir: Path,
        control_out: BinaryIO,
        own_pid_namespace: bool,
        kernel_uid: int | None = None,
    ) -> None:
        self.own_pid_namespace = own_pid_namespace
        self.home = home
        self.run_dir = run_dir
        self.out = control_out
        self.kernel_uid = kernel_uid  # the kernel's own uid (None: the server's)
        self.kernel_pid: int | None = None
        self.exit_status: int | None = None
        self.reports_fd: int | None = None
        self.report_reader: Any = None

    def reply(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        self.out.write(len(data).to_bytes(FRAME_HEADER, "big") + data)
        self.out.flush()

    # --- operations -------------------------------------------------------------------------
    def spawn(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.kernel_pid is not None:
            return {"error": "a kernel is already running; reset first"}
        from autograder.guard import ReportReader

        connection_file = Path(spec["connection_file"])
        connection_file.write_text(json.dumps(spec["connection"]))
        if self.kernel_uid is not None:
            os.chown(connection_file, self.kernel_uid, self.kernel_uid)
        os.chmod(connection_file, 0o600)
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        try:  # room for every report of a long notebook without the guard ever waiting
            fcntl.fcntl(read_end, F_SETPIPE_SZ, 1024 * 1024)
        except OSError:
            pass
        pid = os.fork()
        if pid == 0:  # the child never returns into the server loop
            try:
                os.close(read_end)
                _become_kernel(spec, write_end, self.kernel_uid)
            finally:
                os._exit(70)
        os.close(write_end)
        self.kernel_pid, self.exit_status, self.reports_fd = pid, None, read_end
        self.report_reader = ReportReader()
        return {"pid": pid}

    def put(self, spec: dict[str, Any]) -> dict[str, Any]:
        root = (self.home / spec["dir"]).resolve()
        written = 0
        for relpath, encoded in spec["files"]:
            target = (root / relpath).resolve()
            if not target.is_relative_to(root):
                return {"error": f"refusing to write outside the work folder: {relpath}"}
            target.parent.mkdir(parents=True, exist_ok=True)
            data = base64.b64decode(encoded)
            target.write_bytes(data)
            written += len(data)
        return {"written": written}

    def alive(self) -> dict[str, Any]:
        if self.kernel_pid is None:
            return {"alive": False, "status": self.exit_status}
        try:
            pid, status = os.waitpid(self.kernel_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.kernel_pid, -1
        if pid == 0:
            return {"alive": True}
        self.exit_status = status
        self.kernel_pid = None
        return {"alive": False, "status": status}

    def signal_kernel(self, number: int) -> dict[str, Any]:
        if self.kernel_pid is not None:
            try:
                os.kill(self.kernel_pid, number)
            except ProcessLookupError:
                pass
        return {"ok": True}

    def reports(self) -> dict[str, Any]:
        """The guard's authentic reports so far (read with caps: a flood is noted, not kept)."""
        reader = self.report_reader
        if reader is None:
            return {"reports": {}, "forged": 0, "flooded": False}
        if self.reports_fd is not None:
            while not reader.flooded:
                try:
                    chunk = os.read(self.reports_fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                reader.feed(chunk)
        result: dict[str, Any] = reader.result()
        return result

    def reset(self) -> dict[str, Any]:
        """Kill every process of the sandbox but this one, then wipe the learner's files."""
        if self.own_pid_namespace:
            killed = _kill_all_others()
        else:
            killed = _kill_session(self.kernel_pid) if self.kernel_pid else 0
        self.kernel_pid = None
        if self.reports_fd is not None:
            os.close(self.reports_fd)
            self.reports_fd = None
        self.report_reader = None
        for root in (self.home, self.run_dir):
            for entry in root.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            if self.kernel_uid is not None:  # the learner may have chmod-ed or chowned it
                os.chown(root, self.kernel_uid, self.kernel_uid)
                os.chmod(root, 0o755)
        return {"killed": killed}

    def serve(self, control_in: BinaryIO) -> None:
        handlers = {
            "spawn": self.spawn,
            "put": self.put,
            "alive": lambda _spec: self.alive(),
            "interrupt": lambda _spec: self.signal_kernel(signal.SIGINT),
            "reports": lambda _spec: self.reports(),
            "reset": lambda _spec: self.reset(),
        }
        for line in control_in:
            request = json.loads(line)
            op = request.get("op")
            if op == "exit":
                if self.own_pid_namespace:
                    _kill_all_others()
                elif self.kernel_pid:
                    _kill_session(self.kernel_pid)
                os._exit(0)  # no interpreter teardown: nothing here needs flushing
            handler = handlers.get(op)
            try:
                self.reply(handler(request) if handler else {"error": f"unknown op {op!r}"})
            except Exception as e:  # the server must outlive any one request
                self.reply({"error": f"{type(e).__name__}: {e}"})


def _warm_tracebacks() -> None:
    """Format one traceback before forking: a kernel's first error then costs milliseconds, not
    the 50 ms of IPython loading its traceback machinery (pygments, stack_data) per learner."""
    from IPython.core.ultratb import AutoFormattedTB

    try:
        raise ZeroDivisionError("warm-up")
    except ZeroDivisionError:
        AutoFormattedTB(mode="Context").structured_traceback(*sys.exc_info())


def _kill_all_others() -> int:
    """SIGKILL every process this one may signal, until none is left; reap them all.

    In the sandbox's PID namespace kill(-1) reaches exactly the learner's processes (never the
    namespace's init or this server). Repeated because a fork bomb may fork between two sweeps.
    """
    if os.getpid() > 2:  # bwrap's init is 1 and this server 2: anything else is not a sandbox
        raise RuntimeError("refusing kill(-1) outside the sandbox's own PID namespace")
    killed = 0
    for _ in range(1000):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while True:  # reap our own children; orphans are reaped by the namespace's init
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            killed += 1
        if not _other_processes():
            break
        time.sleep(0.002)
    return killed


def _other_processes() -> list[int]:
    """Processes of this PID namespace other than its init and this server (from its /proc)."""
    me = os.getpid()
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me)]


def _kill_session(session: int) -> int:
    """Unsandboxed (development) only: kill the kernel's session, never kill(-1) on a host."""
    killed = 0
    for _ in range(50):
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == session:  # field 6 of stat: the session id
                    found.append(int(entry.name))
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    return killed


def _become_kernel(spec: dict[str, Any], report_fd: int, kernel_uid: int | None) -> None:
    """In the forked child: confine this process, then run an ipykernel until it is killed."""
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    # Only stdin/out/err (all /dev/null) and the report pipe survive: the server's control
    # channel and anything else it holds are closed before any learner code exists.
    report_fd = _keep_only(report_fd)
    if kernel_uid is not None:
        _become(kernel_uid, ())
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    for name, value in spec.get("limits", {}).items():
        limit = getattr(resource, name)
        resource.setrlimit(limit, (value, value))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(spec["env"])
    cwd = Path(spec["cwd"])
    cwd.mkdir(parents=True, exist_ok=True)
    if "TMPDIR" in spec["env"]:
        Path(spec["env"]["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    os.chdir(cwd)
    # As ipykernel_launcher leaves it: no grader folder on the path.
    sys.path[:] = [p for p in sys.path if p and p not in spec.get("hide_paths", [])]

    from ipykernel.kernelapp import IPKernelApp

    from autograder import guard

    app = IPKernelApp.instance()
    app.initialize(["-f", spec["connection_file"], *spec.get("kernel_args", [])])
    if spec.get("guard", True):
        guard.install(app.shell, app.kernel, report_fd)
    else:
        os.close(report_fd)
    _prctl(PR_SET_DUMPABLE, 0)
    app.start()


def _keep_only(report_fd: int) -> int:
    """Close every descriptor but 0, 1, 2 and the report pipe (moved to 3); return 3."""
    if report_fd != 3:
        os.dup2(report_fd, 3)
        os.close(report_fd)
    os.closerange(4, _max_fd())
    return 3


def _max_fd() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _drop_privileges(argv: list[str]) -> int | None:
    """`--uid A --kernel-uid B`: started as root by bwrap, the server becomes A for good with
    only the capabilities it needs to run kernels as B (change uids, signal and wipe B's
    processes and files); its folders `--own` go to B. Returns B (None: one uid for both)."""
    kernel_uid = None
    if "--uid" in argv:
        uid = int(argv[argv.index("--uid") + 1])
        kernel_uid = int(argv[argv.index("--kernel-uid") + 1])
        for index, arg in enumerate(argv):
            if arg == "--own":
                os.chown(argv[index + 1], kernel_uid, kernel_uid)
        _become(uid, SERVER_CAPABILITIES)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    return kernel_uid


def main() -> None:
    kernel_uid = _drop_privileges(sys.argv)
    control_in = os.fdopen(0, "rb", buffering=0)
    control_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must never corrupt the control channel
    config = json.loads(control_in.readline())
    os.environ.clear()
    os.environ.update(config["env"])
    started = time.perf_counter()
    # As ipykernel_launcher does: the start folder is not on the path (IPython adds '' itself).
    sys.path[:] = [p for p in sys.path if p and p != os.getcwd()]
    # The kernel's own modules: stock imports them before any cell runs, warnings or not.
    kernel_loaded, kernel_skipped = preload(list(KERNEL_MODULES), probe=False)
    before = {name.partition(".")[0] for name in sys.modules}
    course_loaded, course_skipped = preload(config.get("preload", []))
    loaded, skipped = kernel_loaded + course_loaded, kernel_skipped + course_skipped
    _warm_tracebacks()
    from autograder import guard

    # The course's libraries are not touched by a kernel's start-up: no need to re-check them.
    guard.prepare(static={name.partition(".")[0] for name in sys.modules} - before)
    server = Server(
        Path(config["home"]),
        Path(config["run_dir"]),
        control_out,
        "--pid-namespace" in sys.argv,
        kernel_uid,
    )
    server.reply(
        {
            "ready": True,
            "preloaded": loaded,
            "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 3),
            "pid": os.getpid(),
        }
    )
    try:
        server.serve(control_in)
    except (BrokenPipeError, OSError) as e:
        if e.errno not in (errno.EPIPE, None):
            raise


if __name__ == "__main__":
    main()

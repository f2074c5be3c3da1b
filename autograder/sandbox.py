"""The sandbox every learner kernel runs in: bubblewrap, or (development only) nothing.

One sandbox holds one fork server and, at any time, at most one learner's kernel. Inside it:
no network (a private network namespace), a private PID namespace, an empty environment but for
what the kernel needs, the Python installation read-only, and one writable, size-capped tmpfs
home that the fork server wipes between learners. Nothing else of the host is visible: not the
source notebooks, the hidden tests, the gradebook, the database or other learners' files.
Per-kernel limits (memory, processes, file size) are set by the fork server as rlimits.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

HOME = "/home/learner"
RUN_DIR = "/run/kernel"
GRADER_PATH = "/opt/grader"
PACKAGE_DIR = Path(__file__).resolve().parent
# Sandbox uids: one per slot, so the process limit counts one sandbox's processes only. Grading
# pools start here; the lab hub's pools have ranges of their own (lms.lab), so a learner's lab
# never shares a process limit with a grading kernel.
FIRST_UID = 61000

MiB = 1024 * 1024
GiB = 1024 * MiB


class SandboxUnavailable(RuntimeError):
    """bubblewrap is required to grade, and is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class SandboxPolicy:
    mode: str = "bwrap"  # "bwrap" | "off" (development only: learner code runs unconfined)
    memory_bytes: int = 4 * GiB  # RLIMIT_DATA: heap and anonymous mappings of one process
    processes: int = 256  # RLIMIT_NPROC: processes and threads of one sandbox
    file_bytes: int = 256 * MiB  # RLIMIT_FSIZE: the largest file a kernel may write
    open_files: int = 1024
    home_bytes: int = 1 * GiB  # the writable tmpfs
    gpu_devices: tuple[str, ...] = field(default=())  # /dev/nvidia* to expose to GPU kernels

    def kernel_limits(self) -> dict[str, int]:
        return {
            "RLIMIT_DATA": self.memory_bytes,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_FSIZE": self.file_bytes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_CORE": 0,
        }


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check_available(policy: SandboxPolicy) -> None:
    if policy.mode == "off":
        log.warning(
            "LMS_SANDBOX=off: learner code runs UNSANDBOXED with the grader's rights. "
            "Development only; never on a host that grades real submissions."
        )
        return
    if policy.mode != "bwrap":
        raise SandboxUnavailable(f"unknown sandbox mode {policy.mode!r} (use bwrap or off)")
    if bwrap_path() is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed: refusing to run learner code. Install the "
            "'bubblewrap' package, or set LMS_SANDBOX=off on a development machine only."
        )


def sandbox_uid(slot: int, first_uid: int = FIRST_UID) -> int | None:
    """The uid to run a slot's sandbox as: a dedicated one when we are root, else our own."""
    return first_uid + slot if os.geteuid() == 0 else None


def server_environment() -> dict[str, str]:
    """The whole environment inside the sandbox: nothing of the grader's leaks in."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "USER": "learner",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "xterm-color",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "NBGRADER_EXECUTION": "autograde",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def server_command(policy: SandboxPolicy, run_dir: Path, uid: int | None) -> list[str]:
    """The command that starts a fork server in a fresh sandbox.

    As root, bwrap sets the sandbox up with real privileges (no user namespace) and the fork
    server then drops to `uid` for good, so the kernel's process limit counts this sandbox only.
    As any other user, bwrap builds it in a user namespace, which the learner may not nest.
    """
    python = [sys.executable, "-m", "autograder.forkserver"]
    if policy.mode == "off":
        return python
    python.append("--pid-namespace")  # the fork server may then kill(-1): only its own sandbox
    command = [bwrap_path() or "bwrap", "--die-with-parent", "--new-session", "--clearenv"]
    if uid is not None:
        command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        command += ["--unshare-cgroup-try"]
        for capability in ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"):
            command += ["--cap-add", capability]
        python += ["--uid", str(uid), "--own", HOME]
    else:
        command += ["--unshare-all", "--unshare-user", "--disable-userns"]
    command += ["--hostname", "grader"]
    made: set[str] = set()
    bound: list[str] = []

    def parents(dest: str) -> list[str]:
        """Folders on the way to a mount point, made traversable (bwrap makes them 0700)."""
        args = []
        for parent in reversed(Path(dest).parents[:-1]):
            name = str(parent)
            inside_bind = any(name == b or name.startswith(b + "/") for b in bound)
            if name not in made and not inside_bind:
                args += ["--perms", "0755", "--dir", name]
                made.add(name)
        return args

    for path in _read_only_paths():
        if os.path.islink(path) and path.count("/") == 1:  # merged /usr: /lib -> usr/lib
            command += ["--symlink", os.readlink(path), path]
        else:
            command += [*parents(path), "--ro-bind", path, path]
        bound.append(path)
    grader = f"{GRADER_PATH}/autograder"
    command += [*parents(grader), "--ro-bind", str(PACKAGE_DIR), grader]
    command += ["--proc", "/proc", "--dev", "/dev"]
    for device in policy.gpu_devices:
        command += ["--dev-bind", device, device]
    command += [*parents(HOME), "--size", str(policy.home_bytes), "--tmpfs", HOME]
    command += [*parents(RUN_DIR), "--bind", str(run_dir), RUN_DIR, "--chdir", HOME]
    for name, value in {**server_environment(), "PYTHONPATH": GRADER_PATH}.items():
        command += ["--setenv", name, value]
    return [*command, "--", *python]


def _read_only_paths() -> list[str]:
    """The system and the Python installation (interpreter, standard library, packages)."""
    wanted = ["/usr", "/lib", "/lib64", "/bin", "/etc/alternatives", "/etc/ld.so.cache"]
    wanted += [sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent.parent)]
    if os.path.isdir("/etc/fonts"):
        wanted.append("/etc/fonts")
    paths: list[str] = []
    for path in wanted:
        if os.path.lexists(path) and not any(path == p or path.startswith(p + "/") for p in paths):
            paths.append(path)
    return sorted(paths, key=len)

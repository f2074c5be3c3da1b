"""The sandbox every learner kernel runs in: bubblewrap, or (development only) nothing.

One sandbox holds one fork server and, at any time, at most one learner's kernel. Inside it:
no network (a private network namespace), a private PID namespace, an empty environment but for
what the kernel needs, the Python installation read-only, and size-capped tmpfs for every
writable path (the learner's home, which the fork server wipes between learners, the kernel's
socket folder and /dev/shm). Nothing else of the host is visible: not the source notebooks, the
hidden tests, the gradebook, the database or other learners' files. The host reaches the
kernel's sockets through /proc/<sandbox pid>/root.

Around it (autograder.pool): a seccomp filter (autograder.seccomp: no new namespaces, no ptrace,
no kexec, bpf, mount or keyrings), a cgroup capping the whole sandbox's memory and processes
(autograder.cgroups, where the host has them), and, when the grader runs as root, two uids of
the sandbox's own leased host-wide (autograder.leases): one for the fork server, one for its
kernels. A GPU sandbox sees only the device files of its one slot (autograder.gpu).
Per-process limits (memory, processes, file size) are set by the fork server as rlimits too.
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
# Sandbox uids (as root): leased host-wide from this range, two per sandbox (its fork server's
# and its kernels'), so no two sandboxes on a host ever share a uid or a process limit.
FIRST_UID = 61000
UID_COUNT = 4000
# The capabilities bwrap leaves the fork server, which it narrows further when it leaves root.
SERVER_CAPABILITIES = (
    "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL",
)  # fmt: skip

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
    run_bytes: int = 4 * MiB  # the kernel's socket folder (a tmpfs: sockets take no room)
    shm_bytes: int = 256 * MiB  # /dev/shm (torch's DataLoader workers share tensors there)
    sandbox_memory_bytes: int = 6 * GiB  # the whole sandbox (cgroup), all processes together
    # (host file, file in the sandbox): the device files of the sandbox's GPU slot, and no other.
    gpu_devices: tuple[tuple[str, str], ...] = field(default=())

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
        # GPU indexes as nvidia-smi numbers them (a slot names its device that way).
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }


def server_command(
    policy: SandboxPolicy,
    run_dir: Path,
    uids: tuple[int, int] | None,
    seccomp_fd: int | None = None,
    info_fd: int | None = None,
) -> list[str]:
    """The command that starts a fork server in a fresh sandbox.

    As root (`uids` given: the server's and its kernels'), bwrap sets the sandbox up with real
    privileges (no user namespace) and leaves the server only the capabilities it needs to run
    its kernels under the second uid; the seccomp filter refuses new user namespaces. As any
    other user, bwrap builds the sandbox in a user namespace which the learner may not nest
    (and the filter refuses too). `run_dir` is only used unsandboxed (LMS_SANDBOX=off).
    """
    python = [sys.executable, "-m", "autograder.forkserver"]
    if policy.mode == "off":
        return python
    python.append("--pid-namespace")  # the fork server may then kill(-1): only its own sandbox
    command = [bwrap_path() or "bwrap", "--die-with-parent", "--new-session", "--clearenv"]
    if uids is not None:
        command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        command += ["--unshare-cgroup-try"]
        for capability in SERVER_CAPABILITIES:
            command += ["--cap-add", capability]
        python += ["--uid", str(uids[0]), "--kernel-uid", str(uids[1])]
        python += ["--own", HOME, "--own", RUN_DIR]
    else:
        command += ["--unshare-all", "--unshare-user", "--disable-userns"]
    command += ["--hostname", "grader"]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        command += ["--info-fd", str(info_fd)]
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
    command += ["--perms", "1777", "--size", str(policy.shm_bytes), "--tmpfs", "/dev/shm"]
    for host_file, device in policy.gpu_devices:
        command += [*parents(device), "--dev-bind", host_file, device]
    command += [*parents(HOME), "--size", str(policy.home_bytes), "--tmpfs", HOME]
    command += [*parents(RUN_DIR), "--size", str(policy.run_bytes), "--tmpfs", RUN_DIR]
    command += ["--chdir", HOME]
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

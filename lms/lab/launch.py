"""A learner's lab server started in its sandbox: bubblewrap with the system read-only, its
workspace and private folder writable, its own PID namespace, a uid of its own (as root), the
kernels' seccomp filter and a cgroup capping memory and processes. The one place that starts a
lab server, for the lab hub (lms.lab.hub) and JupyterHub's spawner (lms.lab.spawner).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from autograder import cgroups, leases, sandbox, seccomp
from lms.lab import relay

# What a lab server's sandbox may use (it runs no learner code: Jupyter's own server only).
LAB_SERVER_MEMORY = 2 * 1024**3
LAB_SERVER_PROCESSES = 256
LAB_SERVER_TMP = 64 * 1024**2


# The project's root: lab servers import lms.lab from it (only its lms/ folder is mounted).
REPOSITORY = Path(__file__).resolve().parents[2]


def lab_sandbox_command(
    command: list[str],
    root: Path,
    private: Path,
    uid: int | None,
    seccomp_fd: int,
    relays: Path,
) -> list[str]:
    """A lab server in bubblewrap: the system, the Python environment and the project's lms/
    package read-only; its owner's workspace and its private folder writable; a capped /tmp;
    its own PID namespace (it cannot see or signal another server); the network shared (it
    listens on the loopback for the proxy). As root it then runs under `uid` with no capability
    left (setpriv); otherwise bwrap's user namespace keeps it unprivileged."""
    wrapped = [sandbox.bwrap_path() or "bwrap", "--die-with-parent", "--new-session"]
    wrapped += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if uid is not None:
        wrapped += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        wrapped += ["--unshare-user", "--disable-userns"]
    wrapped += ["--seccomp", str(seccomp_fd)]
    bound: list[str] = []
    made: set[str] = set()

    def parents(dest: str) -> list[str]:
        """Folders on the way to a mount point, made traversable (bwrap makes them 0700)."""
        args = []
        for parent in reversed(Path(dest).parents[:-1]):
            name = str(parent)
            if name not in made and not any(name == b or name.startswith(b + "/") for b in bound):
                args += ["--perms", "0755", "--dir", name]
                made.add(name)
        return args

    for path in [*_system_paths(), str(REPOSITORY / "lms")]:
        if os.path.islink(path) and path.count("/") == 1:  # merged /usr: /lib -> usr/lib
            wrapped += ["--symlink", os.readlink(path), path]
        elif not any(path == b or path.startswith(b + "/") for b in bound):
            wrapped += [*parents(path), "--ro-bind", path, path]
        bound.append(path)
    wrapped += ["--proc", "/proc", "--dev", "/dev"]
    wrapped += ["--size", str(LAB_SERVER_TMP), "--perms", "1777", "--tmpfs", "/tmp"]
    made.add("/tmp")  # a tmpfs now: folders below it are made traversable, it stays 1777
    # After /tmp: the data folder may live under it (tests), and a later mount would hide it.
    for folder in (str(root), str(private)):
        wrapped += [*parents(folder), "--bind", folder, folder]
    wrapped += [*parents(relay.INSIDE), "--bind", str(relays), relay.INSIDE]
    wrapped += ["--chdir", str(private), "--"]
    if uid is not None:
        wrapped += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        wrapped += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return wrapped + command


def _system_paths() -> list[str]:
    """What a lab server reads: the system, the interpreter and its packages (as a kernel's
    sandbox does), and the certificates and time zones libraries may look up."""
    from autograder.sandbox import _read_only_paths

    extra = [p for p in ("/etc/ssl", "/usr/share/zoneinfo", "/etc/localtime") if os.path.exists(p)]
    return [*_read_only_paths(), *extra]


def own_tree(folder: Path, uid: int) -> None:
    """The folder and everything in it to uid (links are changed, never followed)."""
    os.chown(folder, uid, uid, follow_symlinks=False)
    for directory, subfolders, names in os.walk(folder, followlinks=False):
        for name in [*subfolders, *names]:
            try:
                os.chown(Path(directory) / name, uid, uid, follow_symlinks=False)
            except FileNotFoundError:
                pass


@dataclass
class Launched:
    process: subprocess.Popen[bytes]
    lease: leases.Lease | None  # its sandbox uid (as root)
    cgroup: cgroups.SandboxCgroup | None
    relay_folder: Path  # where its kernels' channels are relayed (lms.lab.relay)

    @property
    def uid(self) -> int | None:
        return self.lease.value if self.lease is not None else None

    def release(self) -> None:
        """Give back the uid and remove the cgroup, once the process has ended."""
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.lease is not None:
            self.lease.release()


def launch(
    owner: int,
    command: list[str],
    env: dict[str, str],
    *,
    root: Path,
    private: Path,
    sandboxed: bool,
) -> Launched:
    """Start `command` as the owner's lab server, its output in private/server.log and its
    pid in private/server.pid. sandboxed False: development only (LMS_SANDBOX=off)."""
    lease, cgroup = None, None
    fds: tuple[int, ...] = ()
    if sandboxed:
        if os.geteuid() == 0:
            lease = leases.claim(
                "sandbox-uid", range(sandbox.FIRST_UID, sandbox.FIRST_UID + sandbox.UID_COUNT)
            )
            own_tree(root, lease.value)
            own_tree(private, lease.value)
        relays = relay.owner_folder(owner, lease.value if lease else None)
        cgroup = cgroups.SandboxCgroup.create(
            f"lab-{owner}", LAB_SERVER_MEMORY, LAB_SERVER_PROCESSES
        )
        fds = (seccomp.program_fd(),)
        command = lab_sandbox_command(
            command, root, private, lease.value if lease else None, fds[0], relays
        )
        if cgroup is not None:
            command = cgroup.wrap(command)
    else:
        relays = relay.owner_folder(owner, None)
    log_file = open(private / "server.log", "ab")  # noqa: SIM115 - the child keeps it
    try:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=private,  # never the workspace: no config file of the learner's is read
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=fds,
        )
    except BaseException:
        if lease is not None:
            lease.release()
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        log_file.close()
        for fd in fds:
            os.close(fd)
    (private / "server.pid").write_text(str(process.pid))
    return Launched(process, lease, cgroup, relays)

"""Per-sandbox memory and process caps with control groups, and a sure way to kill a sandbox.

rlimits (autograder.sandbox) bound one process at a time; a cgroup bounds a whole sandbox: the
sum of its processes' memory (page cache and kernel memory included) and the number of its
processes and threads, whatever they fork or however they escape their session. When the kernel
runs out of the cgroup's memory it kills a process of *that* cgroup (never the grader or another
learner's sandbox), and a fork beyond the cap fails with EAGAIN inside the sandbox only.

What this module guarantees:

- `mode()` says which mechanism is in use: "v2" (the unified hierarchy, where it offers the
  memory and pids controllers to us: a subtree `lms-sandboxes` with both enabled for its
  children), else "v1" (separate memory and pids hierarchies, each with an `lms-sandboxes`
  folder), else "none", and then `unavailable_reason()` says why (for logs and SECURITY docs).
  LMS_CGROUP=off forces "none".
- `SandboxCgroup.create(name, memory_bytes, max_pids)` makes a fresh cgroup (per hierarchy) with a
  unique name, limits set before any process enters it. `wrap(command)` returns a command that
  moves itself into the cgroup and only then execs `command`, or exits 125 without running it:
  nothing runs outside the cgroup by accident, and no preexec_fn is needed (unsafe with threads).
- No swap: on v2 memory.swap.max is 0; on v1 memory.memsw.limit_in_bytes equals the memory limit
  where swap accounting exists, and the cgroup's swappiness is 0.
- `remove()` kills every process left in the cgroup (cgroup.kill where the kernel has it, else
  SIGKILL to every listed pid until none is left: a fork bomb cannot outrun it, its forks being
  capped) and removes the cgroup.

The cgroups live outside the sandbox, which mounts no /sys (and, as root, sees its own cgroup as
the root of a cgroup namespace): learner code can neither change its limits nor leave it.

Over 400 lines on purpose: the v2 and v1 hierarchies and the kill path are one guarantee;
apart, a change to one would not be read against the others.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import shlex
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

PARENT = "lms-sandboxes"
MOUNTINFO = "/proc/self/mountinfo"
CONTROLLERS = ("memory", "pids")
ENTER_FAILED = 125  # the wrapped command's exit status when it could not enter its cgroup

_counter = itertools.count()
_counter_lock = threading.Lock()


@dataclass(frozen=True)
class _Setup:
    mode: str  # "v2" | "v1" | "none"
    reason: str | None = None  # why "none" (or why v2 was not used, for v1)
    parents: tuple[Path, ...] = ()  # v2: (subtree,); v1: (memory parent, pids parent)


def mode() -> str:
    """How sandboxes are capped on this host: "v2", "v1" or "none"."""
    return _setup().mode


def describe() -> str:
    """One line for logs: the mode, and why a better one was not used."""
    setup = _setup()
    return f"{setup.mode} ({setup.reason})" if setup.reason else setup.mode


def unavailable_reason() -> str | None:
    """Why sandboxes are not capped by cgroups (None when they are)."""
    setup = _setup()
    return setup.reason if setup.mode == "none" else None


def _setup() -> _Setup:
    if os.environ.get("LMS_CGROUP", "").strip().lower() in ("off", "0", "no", "false", "none"):
        return _Setup("none", "LMS_CGROUP=off")
    return _detect()


@cache
def _detect() -> _Setup:
    """Probe once per process: v2 where it has both controllers for us, else v1, else none."""
    mounts = _cgroup_mounts()
    reasons = []
    try:
        return _Setup("v2", parents=(_prepare_v2(mounts),))
    except _Unavailable as e:
        reasons.append(f"cgroup v2: {e}")
    try:
        setup = _Setup("v1", reason="; ".join(reasons), parents=_prepare_v1(mounts))
        log.info("sandbox cgroups: v1 (%s)", setup.reason)
        return setup
    except _Unavailable as e:
        reasons.append(f"cgroup v1: {e}")
    reason = "; ".join(reasons)
    log.warning("sandboxes run without cgroup limits: %s", reason)
    return _Setup("none", reason)


class _Unavailable(Exception):
    pass


@dataclass(frozen=True)
class _Mount:
    point: Path
    fstype: str  # "cgroup2" | "cgroup"
    options: frozenset[str]  # v1: the controllers bound to this hierarchy


def _cgroup_mounts() -> list[_Mount]:
    mounts = []
    try:
        lines = Path(MOUNTINFO).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        # id parent major:minor root mount-point options [optional...] - fstype source super
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        mounts.append(_Mount(Path(point), tail[0], frozenset(tail[2].split(","))))
    return mounts


def _write(path: Path, value: str) -> None:
    # One write() call: cgroup files parse each write on its own.
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _prepare_v2(mounts: list[_Mount]) -> Path:
    """The v2 folder whose children get memory and pids limits, set up; or _Unavailable."""
    v2 = [m.point for m in mounts if m.fstype == "cgroup2"]
    if not v2:
        raise _Unavailable("no cgroup2 file system is mounted")
    mount = v2[0]
    available = set(_read(mount / "cgroup.controllers").split())
    missing = [c for c in CONTROLLERS if c not in available]
    if missing:
        raise _Unavailable(
            f"{mount} does not offer the {'+'.join(missing)} controller(s) (bound to v1?)"
        )
    if not (mount / "cgroup.type").exists() and os.access(mount, os.W_OK):
        # The real root cgroup (only it lacks cgroup.type): exempt from the "no internal
        # processes" rule, so its controllers can be enabled for children with processes in it.
        base = mount
    else:
        base = _delegated_base(mount)
    try:
        _enable(base)
        subtree = base / PARENT
        subtree.mkdir(mode=0o755, exist_ok=True)
        _enable(subtree)  # lms-sandboxes holds no process itself: only its children do
    except OSError as e:
        raise _Unavailable(f"cannot set up {base / PARENT}: {e}") from e
    return subtree


def _delegated_base(mount: Path) -> Path:
    """Our own cgroup, delegated to us (a systemd unit with Delegate=yes, a container's cgroup
    namespace), made usable under the "no internal processes" rule: controllers can be enabled
    for a cgroup's children only while it holds no process, so we move into a leaf of our own.
    Done only when we are the cgroup's sole process, never moving anyone else."""
    own = None
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        if line.startswith("0::"):
            own = mount / line[3:].lstrip("/")
    if own is None or not own.is_dir():
        raise _Unavailable("this process is in no cgroup of the v2 hierarchy")
    if not os.access(own, os.W_OK):
        raise _Unavailable(f"{own} is not delegated to us (not writable)")
    wanted = set(CONTROLLERS)
    if wanted <= set(_read(own / "cgroup.subtree_control").split()):
        return own  # already set up (by us earlier, or by whoever delegated it)
    members = [int(p) for p in _read(own / "cgroup.procs").split()]
    if members != [os.getpid()]:
        raise _Unavailable(
            f"{own} holds other processes ({len(members)} in all): cannot enable controllers "
            "there (no internal processes rule); run the grader alone in a delegated cgroup"
        )
    try:
        leaf = own / "lms-supervisor"
        leaf.mkdir(mode=0o755, exist_ok=True)
        _write(leaf / "cgroup.procs", str(os.getpid()))
    except OSError as e:
        raise _Unavailable(f"cannot move into a leaf of {own}: {e}") from e
    return own


def _enable(cgroup: Path) -> None:
    present = set(_read(cgroup / "cgroup.subtree_control").split())
    missing = [c for c in CONTROLLERS if c not in present]
    if missing:
        _write(cgroup / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))


def _prepare_v1(mounts: list[_Mount]) -> tuple[Path, ...]:
    parents = []
    for controller in CONTROLLERS:
        found = [m.point for m in mounts if m.fstype == "cgroup" and controller in m.options]
        if not found:
            raise _Unavailable(f"no {controller} hierarchy is mounted")
        parent = found[0] / PARENT
        try:
            parent.mkdir(mode=0o755, exist_ok=True)
        except OSError as e:
            raise _Unavailable(f"cannot create {parent}: {e}") from e
        parents.append(parent)
    return tuple(dict.fromkeys(parents))  # memory and pids may share one hierarchy


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise _Unavailable(f"cannot read {path}: {e}") from e


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64].lstrip(".") or "sandbox"


class SandboxCgroup:
    """One sandbox's cgroup (v2), or its pair of memory and pids cgroups (v1)."""

    def __init__(self, mode: str, paths: tuple[Path, ...], memory_bytes: int, max_pids: int):
        self.mode = mode
        # v2: (cgroup,); v1: (memory cgroup, pids cgroup), one if both share a hierarchy.
        self.paths = paths
        self.memory_path, self.pids_path = paths[0], paths[-1]
        self.memory_bytes = memory_bytes
        self.max_pids = max_pids
        self.removed = False

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_pids: int) -> SandboxCgroup | None:
        """A new cgroup capped at `memory_bytes` (no swap) and `max_pids` processes+threads;
        None when cgroups are unavailable (unavailable_reason() says why). OSError when they
        are available but this one cannot be made (it is then not left behind)."""
        if memory_bytes <= 0 or max_pids <= 0:
            raise ValueError("memory_bytes and max_pids must be positive")
        setup = _setup()
        if setup.mode == "none":
            return None
        with _counter_lock:
            number = next(_counter)
        unique = f"{_safe_name(name)}-{os.getpid()}-{number}-{uuid.uuid4().hex[:8]}"
        cgroup = cls(setup.mode, tuple(p / unique for p in setup.parents), memory_bytes, max_pids)
        try:
            for path in cgroup.paths:
                path.mkdir(mode=0o755)  # unique name: never someone else's (FileExistsError)
            cgroup._limit()
        except BaseException:
            cgroup.remove()
            raise
        return cgroup

    def _limit(self) -> None:
        memory = str(self.memory_bytes)
        if self.mode == "v2":
            path = self.memory_path
            _write(path / "memory.max", memory)
            if (path / "memory.swap.max").exists():  # absent without swap accounting
                _write(path / "memory.swap.max", "0")
            _write(path / "pids.max", str(self.max_pids))
            return
        memory_path, pids_path = self.memory_path, self.pids_path
        # limit_in_bytes first: memsw may never be below it.
        _write(memory_path / "memory.limit_in_bytes", memory)
        if (memory_path / "memory.memsw.limit_in_bytes").exists():
            _write(memory_path / "memory.memsw.limit_in_bytes", memory)
        if (memory_path / "memory.swappiness").exists():
            try:
                _write(memory_path / "memory.swappiness", "0")
            except OSError:  # refused under some hierarchies' settings: memsw still caps swap
                pass
        # memory.oom_control is left at its default (the OOM killer enabled): a sandbox over its
        # limit loses a process rather than hanging forever, frozen, in an OOM wait.
        _write(pids_path / "pids.max", str(self.max_pids))

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return tuple(path / "cgroup.procs" for path in self.paths)

    def wrap(self, command: list[str]) -> list[str]:
        """`command`, run so that it enters this cgroup before it starts (same pid: exec)."""
        if self.removed or not self.paths:
            raise RuntimeError(f"{self!r} was removed: it cannot confine a command")
        script = "".join(
            f'echo "$$" > {shlex.quote(str(f))} || exit {ENTER_FAILED}\n' for f in self.procs_files
        )
        return ["/bin/sh", "-c", script + 'exec "$@"', "lms-cgroup-enter", *command]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            try:
                found.update(int(p) for p in procs.read_text().split())
            except OSError:
                pass
        return found

    def kill(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process of the cgroup; True once none is left (within `timeout`)."""
        deadline = time.monotonic() + timeout
        kill_file = self.memory_path / "cgroup.kill" if self.mode == "v2" else None
        while True:
            left = self.pids()
            if not left:
                return True
            if kill_file is not None and kill_file.exists():
                try:
                    _write(kill_file, "1")  # atomic: forks racing with it are killed too
                except OSError:
                    kill_file = None
            else:
                # Without cgroup.kill, a process may fork between reading the list and killing:
                # repeat until the list is empty (pids.max bounds how many there can be).
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def remove(self, timeout: float = 10.0) -> bool:
        """Kill what is left and delete the cgroup(s); True when nothing remains. Idempotent."""
        self.removed = True
        self.kill(timeout)
        deadline = time.monotonic() + timeout
        remaining = []
        for path in self.paths:
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    # EBUSY while a killed process has not finished exiting.
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        log.warning("cannot remove cgroup %s: %s", path, e)
                        remaining.append(path)
                        break
                    self.kill(max(0.0, deadline - time.monotonic()))
                    time.sleep(0.005)
        self.paths = tuple(remaining)
        return not remaining

    def memory_events(self) -> dict[str, int]:
        """The kernel's memory event counters (v2 memory.events, v1 memory.oom_control):
        `oom_kill` counts processes the OOM killer took from this sandbox."""
        if self.mode == "v2":
            return _counters(self.memory_path / "memory.events")
        return _counters(self.memory_path / "memory.oom_control")

    def oom_killed(self) -> bool:
        """Whether the OOM killer has killed a process of this sandbox."""
        return self.memory_events().get("oom_kill", 0) > 0

    def fork_failures(self) -> int:
        """How many forks (or thread starts) failed on the process cap (pids.events `max`)."""
        return _counters(self.pids_path / "pids.events").get("max", 0)

    def __repr__(self) -> str:
        return f"SandboxCgroup({self.mode}, {[str(p) for p in self.paths]})"


def _counters(path: Path) -> dict[str, int]:
    counters = {}
    try:
        text = path.read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            counters[key] = int(value)
    return counters


def remove_stale() -> int:
    """Remove empty sandbox cgroups whose creating process is gone (a worker that crashed before
    its remove()); the number removed. A cgroup still holding processes is left alone."""
    setup = _setup()
    removed = 0
    for parent in setup.parents:
        try:
            children = [p for p in parent.iterdir() if p.is_dir()]
        except OSError:
            continue
        for child in children:
            match = re.search(r"-(\d+)-\d+-[0-9a-f]{8}$", child.name)
            if match is None or _alive(int(match.group(1))):
                continue
            try:
                child.rmdir()  # fails (EBUSY) unless empty: never kills anything
                removed += 1
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

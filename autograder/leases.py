"""Host-wide exclusive leases: a sandbox uid or a GPU slot is held by one process at a time.

Several processes on one host start sandboxes (grading workers, the lab hub). Two sandboxes that
shared a uid could signal, ptrace-check and read each other's processes and files, and share one
process limit; two kernels given the same GPU slot would share its memory. A lease is an
exclusive `flock` on `<lease dir>/<kind>-<value>.lock`:

- `claim(kind, candidates)` returns the first candidate no other holder has, on this whole host
  (every process that uses the same lease directory), or raises LeaseUnavailable once `wait`
  seconds have passed. Two claims in one process get different values too (flock locks belong
  to an open file, not to a process).
- A lease is held until `release()` (idempotent) or until its holder dies: the kernel drops the
  lock of a crashed or killed worker, so its values are free again, with no stale state to clean.
  Garbage collection never releases one: a lost Lease keeps its value until the process exits,
  which is the safe failure (a uid is never handed out twice).
- Lock files are opened close-on-exec: a sandbox or other child started with exec never inherits
  one (and so can neither keep a lease alive nor release it). `release()` unlocks before closing,
  so a forked child that shares the file does not keep the lease either.
- Lock files are never deleted (deleting one while another process opens it would let two
  holders lock two different files of the same name).

The lease directory: LMS_LEASE_DIR if set; else /run/lms-sandboxes when we are root (mode 0755);
else `<tmp>/lms-sandboxes-<uid>` (mode 0700). It must be owned by us or root and writable by no
one else, or claims fail rather than trust it. Every process that must not overlap with another
has to use the same directory: run them as the same user, or set LMS_LEASE_DIR for all of them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

RUN_DIR = Path("/run/lms-sandboxes")
POLL_INTERVAL = 0.05
_KIND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


class LeaseError(RuntimeError):
    """The lease directory cannot be used (missing, unsafe, unwritable)."""


class LeaseUnavailable(LeaseError):
    """Every candidate is held by another lease, and stayed so for the whole wait."""


class Lease:
    """One held value of one kind; release() or leave the `with` block to free it."""

    def __init__(self, kind: str, value: int, path: Path, fd: int) -> None:
        self.kind = kind
        self.value = value
        self.path = path
        self._fd: int | None = fd
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Free the value for other claims. Safe to call more than once."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Unlock first: a child forked while we held the lease shares this open file, and
            # closing our descriptor alone would leave the lock held by the child's.
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"Lease({self.kind}={self.value}, {state})"


def lease_dir() -> Path:
    """The directory that holds the lock files, created if needed, checked for safety."""
    configured = os.environ.get("LMS_LEASE_DIR")
    if configured:
        return _ensure(Path(configured), 0o700)
    if os.geteuid() == 0 and os.access(RUN_DIR.parent, os.W_OK):
        # An unsafe /run/lms-sandboxes raises rather than falls back: every process must agree
        # on one directory, and a silent fallback in some of them would split the host in two.
        return _ensure(RUN_DIR, 0o755)
    return _ensure(Path(tempfile.gettempdir()) / f"lms-sandboxes-{os.geteuid()}", 0o700)


def _ensure(path: Path, mode: int) -> Path:
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    except OSError as e:
        raise LeaseError(f"cannot create the lease directory {path}: {e}") from e
    try:
        info = os.lstat(path)
    except OSError as e:
        raise LeaseError(f"cannot use the lease directory {path}: {e}") from e
    # Refuse a directory someone else could have prepared (in a shared /tmp): a symlink, or one
    # another user owns or may write to, could hand out a uid that is already in use.
    if not stat.S_ISDIR(info.st_mode):
        raise LeaseError(f"the lease directory {path} is not a directory (or is a symlink)")
    if info.st_uid not in (os.geteuid(), 0):
        raise LeaseError(f"the lease directory {path} belongs to uid {info.st_uid}")
    if info.st_mode & 0o022:
        raise LeaseError(f"the lease directory {path} is writable by others")
    return path


def claim(kind: str, candidates: Sequence[int], *, wait: float = 0) -> Lease:
    """Hold the first of `candidates` that nobody on this host holds (as `kind`).

    Retries every 50 ms until `wait` seconds have passed, then raises LeaseUnavailable.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"invalid lease kind {kind!r}")
    folder = lease_dir()
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        for value in candidates:
            lease = _try(kind, int(value), folder)
            if lease is not None:
                return lease
        if time.monotonic() >= deadline:
            raise LeaseUnavailable(
                f"no {kind} lease free among {len(candidates)} candidate(s) in {folder}"
            )
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


def _try(kind: str, value: int, folder: Path) -> Lease | None:
    path = folder / f"{kind}-{value}.lock"
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o644)
    except PermissionError:
        # Created by another user sharing LMS_LEASE_DIR: flock needs no write access.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    try:
        # For whoever investigates: which process holds this value.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # read-only file: the lock alone is what counts
    return Lease(kind, value, path, fd)

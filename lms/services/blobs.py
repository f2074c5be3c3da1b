"""Files stored once by content hash under LMS_DATA_DIR/blobs/ (ab/cdef...: sha256)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app


def root() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "blobs"


def path_of(digest: str) -> Path:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return root() / digest[:2] / digest[2:]


def put(data: bytes) -> str:
    """Store data (once) and return its sha256. Written whole to a temp file then renamed,
    so a reader never sees half a file, even if the process dies mid-write."""
    digest = hashlib.sha256(data).hexdigest()
    target = path_of(digest)
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def get(digest: str) -> bytes:
    return path_of(digest).read_bytes()

"""Files stored once by content hash (sha256), under the storage keys blobs/ab/cdef…."""

from __future__ import annotations

import hashlib

from lms.storage import storage


def key_of(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"blobs/{digest[:2]}/{digest[2:]}"


def put(data: bytes) -> str:
    """Store data (once) and return its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    key = key_of(digest)
    if not storage().exists(key):
        storage().write(key, data)
    return digest


def get(digest: str) -> bytes:
    return storage().read(key_of(digest))


def exists(digest: str) -> bool:
    return storage().exists(key_of(digest))


def delete(digest: str) -> None:
    storage().delete(key_of(digest))

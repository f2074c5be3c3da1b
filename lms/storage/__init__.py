"""Where the LMS keeps its files: one interface, bound at app start, so that a shared folder or
an object store can replace the local disk without touching a caller.

Files are named by keys, "/"-separated like an object store's:
- ``blobs/ab/cdef…``: submissions and feedback, stored once by content hash (lms.storage.blobs);
- ``releases/<course>/<assignment>/v<n>/…``: the learner version of an assignment version,
  written whole by put_folder and never changed (Release.path is its prefix);
- ``exports/<job id>.<ext>``: finished report files;
- ``workspaces/<user id>/…``: learners' lab folders. Lab servers work in them as folders, so this
  one area is always a real filesystem: local_folder() (a shared one when labs run elsewhere).

LocalStorage (under LMS_DATA_DIR) is the first backend. Callers use storage() and the Storage
methods only, never a path under LMS_DATA_DIR.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from flask import Flask, current_app


class Storage(ABC):
    @abstractmethod
    def read(self, key: str) -> bytes:
        """The file's bytes (FileNotFoundError when there is none)."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The file, open for reading (FileNotFoundError when there is none)."""

    @abstractmethod
    def write(self, key: str, data: bytes | BinaryIO) -> None:
        """Store the file (bytes, or a file read from its start) whole: a reader sees the old
        file or the new one, never a part."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file if it is there."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """The files under the folder `prefix`, as sorted keys relative to it."""

    @abstractmethod
    def put_folder(self, prefix: str, folder: Path) -> None:
        """Store every file of a local folder under `prefix`, all at once: a reader finds the
        whole folder or nothing (a crash midway leaves nothing behind)."""

    @abstractmethod
    def local_folder(self, key: str) -> Path:
        """The real folder for this key (which may not exist yet), for what must work in
        files: lab workspaces."""


def _parts(key: str) -> tuple[str, ...]:
    """The key's parts; refuses what could leave the store (absolute, "..", empty parts)."""
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in ("", "..", ".") for part in key.split("/")):
        raise ValueError(f"not a storage key: {key!r}")
    return path.parts


class LocalStorage(Storage):
    """Files under one folder of this machine (LMS_DATA_DIR)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root.joinpath(*_parts(key))

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def write(self, key: str, data: bytes | BinaryIO) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(data, bytes):
                    f.write(data)
                else:
                    shutil.copyfileobj(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        folder = self.path(prefix)
        return sorted(
            path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        )

    def put_folder(self, prefix: str, folder: Path) -> None:
        target = self.path(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copied beside the target, then renamed into place in one step.
        staging = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(folder, staging)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def local_folder(self, key: str) -> Path:
        return self.path(key)


def init_app(app: Flask) -> None:
    app.extensions["storage"] = LocalStorage(Path(app.config["DATA_DIR"]))


def storage() -> Storage:
    found: Storage = current_app.extensions["storage"]
    return found

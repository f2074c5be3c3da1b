"""The storage interface: the local backend's guarantees, and callers that work unchanged on
another backend bound at app start."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms import storage as storage_module
from lms.services import submissions
from lms.storage import LocalStorage, Storage, blobs, storage
from tests import grading_world
from tests.conftest import Auth

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class MemoryStorage(Storage):
    """Another backend, as an object store would be: keys and bytes, no folders."""

    def __init__(self, workspaces: Path) -> None:
        self.files: dict[str, bytes] = {}
        self.workspaces = workspaces

    def read(self, key: str) -> bytes:
        if key not in self.files:
            raise FileNotFoundError(key)
        return self.files[key]

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.read(key))

    def write(self, key: str, data: bytes | BinaryIO) -> None:
        self.files[key] = data if isinstance(data, bytes) else data.read()

    def exists(self, key: str) -> bool:
        return key in self.files

    def delete(self, key: str) -> None:
        self.files.pop(key, None)

    def list(self, prefix: str) -> list[str]:
        start = prefix.rstrip("/") + "/"
        return sorted(key.removeprefix(start) for key in self.files if key.startswith(start))

    def put_folder(self, prefix: str, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.files[f"{prefix}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()

    def local_folder(self, key: str) -> Path:
        return self.workspaces / key


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "a//b", "a/./b", "", "a/.."])
def test_a_key_that_could_leave_the_store_is_refused(tmp_path: Path, key: str) -> None:
    local = LocalStorage(tmp_path / "data")
    with pytest.raises(ValueError, match="not a storage key"):
        local.write(key, b"x")


def test_local_files_are_written_whole_listed_and_deleted(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "data")
    local.write("exports/1.csv", b"first")
    local.write("exports/1.csv", io.BytesIO(b"second"))  # replaced whole, from a stream
    local.write("exports/sub/2.csv", b"other")
    assert local.read("exports/1.csv") == b"second"
    assert local.list("exports") == ["1.csv", "sub/2.csv"]
    assert not [p for p in (tmp_path / "data").rglob(".tmp-*")]  # no temporary file is left
    local.delete("exports/1.csv")
    local.delete("exports/1.csv")  # already gone: no error
    assert not local.exists("exports/1.csv")
    with pytest.raises(FileNotFoundError):
        local.read("exports/1.csv")
    assert local.list("nothing/here") == []


def test_a_folder_that_cannot_be_stored_whole_leaves_nothing(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "data")
    folder = tmp_path / "generated"
    folder.mkdir()
    (folder / "a.ipynb").write_bytes(b"{}")
    os.mkfifo(folder / "z-pipe")  # copying a pipe fails midway, after a.ipynb
    with pytest.raises(OSError):
        local.put_folder("releases/c/a/v1", folder)
    assert local.list("releases/c/a/v1") == []
    assert [p.name for p in (tmp_path / "data" / "releases" / "c" / "a").iterdir()] == []
    (folder / "z-pipe").unlink()
    local.put_folder("releases/c/a/v1", folder)
    assert local.list("releases/c/a/v1") == ["a.ipynb"]


def test_the_app_stores_under_its_data_dir(app: Flask) -> None:
    bound = storage()
    assert isinstance(bound, LocalStorage) and bound.root == Path(app.config["DATA_DIR"])
    digest = blobs.put(b"notebook bytes")
    assert (Path(app.config["DATA_DIR"]) / "blobs" / digest[:2] / digest[2:]).is_file()


@sqlite_only
def test_releases_submissions_and_downloads_work_on_another_backend(
    courses_dir: Path, app: Flask, client: FlaskClient, auth: Auth, tmp_path: Path
) -> None:
    """No caller knows the backend: bound at app start, everything goes through it."""
    memory = MemoryStorage(tmp_path / "workspaces")
    app.extensions["storage"] = memory
    world = grading_world.build(courses_dir, learners=1)
    release = world.assignment.current_release
    assert release is not None and memory.list(release.path) == [grading_world.NOTEBOOK]
    assert not (Path(app.config["DATA_DIR"]) / "releases").exists()

    learner = world.learners[0]
    answer = grading_world.answer(world.assignment, grading_world.RIGHT)
    submission = submissions.submit(learner, world.assignment, world.cohort, [answer]).submission
    (digest,) = submission.files.values()
    assert f"blobs/{digest[:2]}/{digest[2:]}" in memory.files

    auth.login(learner.email)
    a = world.assignment
    response = client.get(
        f"/learn/cohorts/{world.cohort.slug}/courses/{a.course.slug}/{a.slug}.zip"
    )
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.namelist() == [f"{a.slug}/{grading_world.NOTEBOOK}"]
    assert storage_module.storage() is memory

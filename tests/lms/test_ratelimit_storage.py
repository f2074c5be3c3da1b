"""Flask-Limiter's counts in a SQLite file of the instance (lmssqlite://), shared by every
process: two app instances (two gunicorn workers) see one count, and concurrent processes lose
no increment."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from limits.storage import storage_from_string

from lms import create_app
from lms.extensions import db, limiter
from lms.ratelimit_storage import SQLiteStorage
from tests.conftest import IsolatedClient
from tests.lms.test_config import bare_app


def test_the_default_storage_is_a_shared_file_in_the_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = bare_app(tmp_path, monkeypatch)
    uri = app.config["RATELIMIT_STORAGE_URI"]
    assert uri == f"lmssqlite://{tmp_path / 'instance' / 'ratelimit.sqlite3'}"
    storage = storage_from_string(uri)
    assert isinstance(storage, SQLiteStorage) and storage.check()


def test_counts_expire_and_clear(tmp_path: Path) -> None:
    storage = SQLiteStorage(f"lmssqlite://{tmp_path / 'limits.sqlite3'}")
    assert storage.incr("k", 1) == 1
    assert storage.incr("k", 1, amount=2) == 3
    assert storage.get("k") == 3
    assert time.time() < storage.get_expiry("k") <= time.time() + 1
    time.sleep(1.1)
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1  # a new window
    storage.clear("k")
    assert storage.get("k") == 0
    storage.incr("a", 60)
    storage.incr("b", 60)
    assert storage.reset() == 2


def _hammer(uri: str, times: int) -> None:
    storage = SQLiteStorage(uri)
    for _ in range(times):
        storage.incr("shared", 60)


def test_processes_share_one_count_and_lose_no_increment(tmp_path: Path) -> None:
    uri = f"lmssqlite://{tmp_path / 'limits.sqlite3'}"
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_hammer, args=(uri, 200)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert SQLiteStorage(uri).get("shared") == 800


@pytest.fixture
def shared_limits(app_config: dict[str, Any], tmp_path: Path) -> None:
    app_config["RATELIMIT_STORAGE_URI"] = f"lmssqlite://{tmp_path / 'instance-limits.sqlite3'}"
    app_config["VERIFY_LIMIT"] = "3 per minute"


@pytest.mark.usefixtures("shared_limits")
def test_two_app_instances_share_one_count(app: Flask, app_config: dict[str, Any]) -> None:
    """Each gunicorn worker builds its own app and limiter storage: the count is the file's."""
    for _ in range(2):
        assert app.test_client().get("/verify").status_code == 200
    other = create_app(app_config)  # the second worker: a storage of its own, the same file
    other.test_client_class = IsolatedClient
    try:
        assert other.test_client().get("/verify").status_code == 200
        assert other.test_client().get("/verify").status_code == 429
        assert app.test_client().get("/verify").status_code == 429
    finally:
        with other.app_context():
            db.engine.dispose()
        limiter.init_app(app)

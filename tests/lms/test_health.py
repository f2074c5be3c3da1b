"""GET /healthz over real connections to the database and the queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lms import create_app
from tests.conftest import REDIS_URL, make_config


def test_healthy(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "db": "ok", "queue": "ok"}


def health_of(tmp_path: Path, **overrides: Any) -> tuple[int, dict[str, Any]]:
    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'h.sqlite3'}", **overrides)
    response = create_app(config).test_client().get("/healthz")
    assert response.json is not None
    return response.status_code, response.json


def test_redis_queue_is_pinged(tmp_path: Path) -> None:
    assert health_of(tmp_path, QUEUE_URL=REDIS_URL) == (
        200,
        {"status": "ok", "db": "ok", "queue": "ok"},
    )


def test_unreachable_redis_names_the_queue(tmp_path: Path) -> None:
    status, body = health_of(tmp_path, QUEUE_URL="redis://127.0.0.1:1/0")
    assert status == 503
    assert body["failing"] == ["queue"] and body["db"] == "ok"
    assert body["queue"].startswith("error")


def test_unreachable_database_names_the_db(tmp_path: Path) -> None:
    status, body = health_of(
        tmp_path, DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/none"
    )
    assert status == 503
    assert body["failing"] == ["db"] and body["queue"] == "ok"


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-dir/queue.sqlite3", "amqp://x"])
def test_bad_embedded_queue_location(tmp_path: Path, url: str) -> None:
    status, body = health_of(tmp_path, QUEUE_URL=url)
    assert status == 503 and body["failing"] == ["queue"]

"""Configuration from LMS_* variables, the generated secret key, security headers."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from flask import Flask

from lms import create_app


def bare_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Flask:
    """An app configured by the environment alone, with its instance folder under tmp_path."""
    for name in ("LMS_SECRET_KEY", "LMS_DATABASE_URL", "LMS_QUEUE_URL", "LMS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LMS_INSTANCE_PATH", str(tmp_path / "instance"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app()


def test_defaults_are_embedded_in_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = bare_app(tmp_path, monkeypatch)
    instance = tmp_path / "instance"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'lms.sqlite3'}"
    assert app.config["QUEUE_URL"] == f"sqlite:///{instance / 'queue.sqlite3'}"
    assert app.config["DATA_DIR"] == str(instance / "data")
    # Shared by all gunicorn workers (lms.ratelimit_storage), never one process's memory.
    assert app.config["RATELIMIT_STORAGE_URI"] == f"lmssqlite://{instance / 'ratelimit.sqlite3'}"


def test_secret_key_is_generated_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = bare_app(tmp_path, monkeypatch)
    second = bare_app(tmp_path, monkeypatch)
    key_file = tmp_path / "instance" / "secret_key"
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_environment_variables_configure_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = bare_app(
        tmp_path,
        monkeypatch,
        LMS_SECRET_KEY="from-env",
        LMS_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        LMS_QUEUE_URL="redis://127.0.0.1:6379/0",
        LMS_MAX_UPLOAD_MB="5",
        LMS_GPU_SLOTS="0,0,1,1",
        LMS_SANDBOX="off",
        LMS_KERNEL_POOL_SIZE="8",
    )
    assert app.config["SECRET_KEY"] == "from-env"
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    assert app.config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024
    assert app.config["GPU_SLOTS"] == "0,0,1,1"
    assert app.config["SANDBOX"] == "off"
    assert app.config["KERNEL_POOL_SIZE"] == 8


def test_pages_carry_security_headers(app: Flask) -> None:
    response = app.test_client().get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"

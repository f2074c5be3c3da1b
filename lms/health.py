"""GET /healthz: is the database reachable, is the queue reachable."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import redis
import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from lms.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    checks = {"db": _check_db(), "queue": _check_queue(str(current_app.config["QUEUE_URL"]))}
    failing = [name for name, result in checks.items() if result != "ok"]
    body: dict[str, object] = {"status": "ok" if not failing else "error", **checks}
    if failing:
        body["failing"] = failing
    return jsonify(body), 503 if failing else 200


def _check_db() -> str:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return "ok"
    except Exception as e:  # any driver error means "not reachable"; say which
        db.session.rollback()
        current_app.logger.warning("healthz: database check failed: %s", e)
        return f"error: {type(e).__name__}"


def _check_queue(url: str) -> str:
    """Redis answers PING; the embedded SQLite queue's folder exists and is writable."""
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            try:
                client.ping()
            finally:
                client.close()
            return "ok"
        if url.startswith("sqlite:///"):
            folder = Path(urlsplit(url).path).parent
            if folder.is_dir() and os.access(folder, os.W_OK):
                return "ok"
            return "error: queue folder missing or not writable"
        return "error: unsupported queue URL"
    except Exception as e:
        current_app.logger.warning("healthz: queue check failed: %s", e)
        return f"error: {type(e).__name__}"

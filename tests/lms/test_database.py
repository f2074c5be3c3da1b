"""Database sessions on PostgreSQL: one left idle inside a transaction (its host died, its
link was cut) is ended by the server after DATABASE_IDLE_TRANSACTION_SECONDS, locks and all."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from lms.extensions import db
from lms.models import GradingBatch


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["DATABASE_IDLE_TRANSACTION_SECONDS"] = 1
    return app_config


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_transaction_left_idle_is_ended_and_its_locks_freed(app: Flask) -> None:
    with db.engine.connect() as stuck, db.engine.connect() as other:
        assert stuck.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "1s"
        stuck.execute(sa.select(GradingBatch.id).with_for_update())  # holds locks, then idles
        time.sleep(1.5)
        with pytest.raises(sa.exc.DBAPIError, match="idle-in-transaction timeout"):
            stuck.execute(sa.text("SELECT 1"))
        stuck.rollback()
        other.execute(sa.text("SET lock_timeout = '2s'"))
        assert other.execute(sa.select(sa.func.count(GradingBatch.id))).scalar() == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_has_no_such_setting_and_needs_none(app: Flask) -> None:
    with db.engine.connect() as conn:  # one process holds SQLite's locks: none are orphaned
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1

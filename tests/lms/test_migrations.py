"""The Alembic migrations build the whole schema from empty, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from lms import create_app
from lms.extensions import db
from lms.models import Base
from tests.conftest import PG_URL, make_config, pg_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    schema = f"m_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield pg_schema_url(schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_upgrade_from_empty_matches_the_models_and_downgrades(
    empty_database: str, tmp_path: Path
) -> None:
    app = create_app(make_config(tmp_path, empty_database))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert set(Base.metadata.tables) | {"alembic_version"} == tables
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diffs == [], f"models and migrations disagree: {diffs}"
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
        db.engine.dispose()

"""Fixtures shared by the whole suite.

Every database test runs twice: on a SQLite file and on the PostgreSQL server named by
LMS_TEST_DATABASE_URL (default: the local server, database `test`). PostgreSQL tests use a
schema of their own per run, so runs never see each other's rows. An unreachable server makes
those tests fail, never skip.
"""

from __future__ import annotations

import contextvars
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from lms import create_app
from lms.extensions import db
from lms.models import Base
from tests.mailserver import MailServer

PG_URL = os.environ.get(
    "LMS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _redis_of_this_worker(url: str) -> str:
    """Under pytest-xdist each worker (gw0, gw1, ...) gets a Redis database of its own, counting
    down from the URL's (tests flush theirs)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 15) - int(worker[2:])
    if database < 0:
        raise RuntimeError(f"too many test workers for the Redis databases below {url}")
    return urlunsplit(parts._replace(path=f"/{database}"))


REDIS_URL = _redis_of_this_worker(os.environ.get("LMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
PASSWORD = "correct-horse-battery"


def pg_schema_url(schema: str) -> str:
    """The PostgreSQL URL with every connection's search_path set to one schema."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A schema of this run's own on the PostgreSQL server, with the tables created once."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        schema_engine = sa.create_engine(pg_schema_url(schema))
        Base.metadata.create_all(schema_engine)
        schema_engine.dispose()
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        engine = sa.create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    schema = request.getfixturevalue("pg_schema")
    url = pg_schema_url(schema)
    yield url
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_config(tmp_path: Path, database_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "QUEUE_URL": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
        "RATELIMIT_STORAGE_URI": "memory://",
        # Without LMS_SMTP_URL, mail is written here (a test with a real server sets it).
        "MAIL_DIR": str(tmp_path / "mail"),
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """Override keys here (in a test or fixture) before asking for `app`."""
    return make_config(tmp_path, database_url)


class IsolatedClient(FlaskClient):
    """Each request runs in an empty context, as on a real server.

    Tests hold an app context open for the services they call; without this, Flask would reuse
    that context for every request, so `g` (and Flask-WTF's cached CSRF token in it) would leak
    from one request, or one browser, into the next.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def courses_dir(tmp_path: Path, app_config: dict[str, Any]) -> Path:
    """An empty courses/ folder the app will read (ask for it before `app`)."""
    root = tmp_path / "courses"
    root.mkdir()
    app_config["COURSES_DIR"] = str(root)
    return root


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token a real browser would find in the form at path."""
    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token in {path}"
    return match.group(1) or match.group(2)


class Auth:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = PASSWORD) -> TestResponse:
        token = csrf_token(self.client, "/login")
        return self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self) -> TestResponse:
        token = csrf_token(self.client, "/")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


def post_form(client: FlaskClient, path: str, data: dict[str, Any], **kwargs: Any) -> TestResponse:
    """POST to a form page with the CSRF token taken from the page itself."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)}, **kwargs)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on the loopback that keeps what it receives (tests/mailserver.py)."""
    with MailServer() as server:
        yield server


@pytest.fixture
def graders(app: Flask) -> Iterator[None]:
    """Warm graders made by in-process grading (tests.grading_world.grade_queued) are closed
    at the end of the test: their sandboxes never outlive it."""
    from lms import worker

    yield
    worker.GRADERS.close()


def needs(condition: bool, what: str) -> None:
    """A check that needs what CI has (root, bwrap, cgroups, kernel headers): it fails loudly
    without it, unless LMS_TEST_UNPRIVILEGED=1 says this is a developer machine without root,
    where it is skipped (and says so)."""
    if condition:
        return
    if os.environ.get("LMS_TEST_UNPRIVILEGED") == "1":
        pytest.skip(f"needs {what} (LMS_TEST_UNPRIVILEGED=1)")
    pytest.fail(f"needs {what}, as CI has (set LMS_TEST_UNPRIVILEGED=1 to skip on a dev machine)")


# Under pytest-xdist (`make test TEST_WORKERS=n`, --dist loadgroup), tests that must not overlap
# run on one worker: the browser journeys share one `make run` server, and the GPU-slot tests
# lease the host's (fake) GPU slots, which a second worker would wait for.
ONE_WORKER_GROUPS = {
    "tests/e2e/": "e2e",
    "tests/lms/lab/test_lab_hub.py": "gpu-slots",
    "tests/autograder/test_grading.py": "gpu-slots",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        for prefix, group in ONE_WORKER_GROUPS.items():
            if path.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))

"""`make test` brings its own PostgreSQL and Redis when none answer (tests/services.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tests.services import answers, free_port

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import os, sqlalchemy as sa, redis
engine = sa.create_engine(os.environ["LMS_TEST_DATABASE_URL"])
with engine.connect() as connection:
    print("postgres", connection.execute(sa.text("select current_database()")).scalar())
client = redis.Redis.from_url(os.environ["LMS_TEST_REDIS_URL"])
client.set("k", "v")
print("redis", client.get("k").decode())
print("urls", os.environ["LMS_TEST_DATABASE_URL"], os.environ["LMS_TEST_REDIS_URL"])
"""


def test_throwaway_servers_are_started_when_none_answer_and_removed_after() -> None:
    closed_pg, closed_redis = free_port(), free_port()
    env = {
        **os.environ,
        "LMS_TEST_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{closed_pg}/test",
        "LMS_TEST_REDIS_URL": f"redis://127.0.0.1:{closed_redis}/15",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.services", sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["postgres"] == "test" and lines["redis"] == "v"
    database_url, redis_url = lines["urls"].split()
    assert "started a throwaway one" in done.stdout
    for url in (database_url, redis_url):
        port = urlsplit(url).port
        assert port is not None and port not in (closed_pg, closed_redis)
        assert not answers("127.0.0.1", port)  # stopped with the command


def test_servers_that_answer_are_used_as_they_are() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.services", sys.executable, "-c", CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "throwaway" not in done.stdout
    assert (
        f"urls {os.environ.get('LMS_TEST_DATABASE_URL', 'postgresql+psycopg://postgres@127.0.0.1:5432/test')}"
        in done.stdout
    )


def test_the_command_fails_when_its_exit_code_says_so() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.services", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 3

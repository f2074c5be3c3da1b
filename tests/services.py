"""`python -m tests.services COMMAND...`: run COMMAND (`make test` runs pytest so) with a
PostgreSQL and a Redis for the tests.

The servers named by LMS_TEST_DATABASE_URL and LMS_TEST_REDIS_URL (by default the local ones on
their standard ports) are used when they answer. When one does not, a throwaway server is
started here from the system's binaries (PostgreSQL's initdb and postgres, redis-server), in a
temporary folder, on a free port, without durability (nothing in it outlives the run); COMMAND
gets its URL in the same variable, and the server is stopped and removed when COMMAND ends.
Without the binaries it says which are missing: tests that need a service never skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
START_TIMEOUT = 60.0


class ServiceUnavailable(RuntimeError):
    pass


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_it_answers(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not answers("127.0.0.1", port, timeout=0.2):
        if process.poll() is not None:
            raise ServiceUnavailable(
                f"the throwaway {what} exited at start (code {process.returncode})"
            )
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"the throwaway {what} did not answer within {START_TIMEOUT:.0f} s"
            )
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _postgres_bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not versions:
        raise ServiceUnavailable(
            "no PostgreSQL answers and its server binaries (initdb, postgres) are not installed"
        )
    return Path(versions[-1]).parent


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parts[-3]
    return tuple(int(n) for n in part.split(".") if n.isdigit())


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` account."""
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable("running as root, and there is no `postgres` account") from None
    return ["runuser", "-u", "postgres", "--", *argv]


@contextlib.contextmanager
def throwaway_postgres(work: Path) -> Iterator[str]:
    bindir = _postgres_bindir()
    data = work / "pgdata"
    work.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(work, account.pw_uid, account.pw_gid)
    subprocess.run(
        _as_postgres_user(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    port = free_port()
    with (work / "postgres.log").open("wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            _as_postgres_user(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(work),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200"]
            ),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
    try:
        _wait_until_it_answers(process, port, "PostgreSQL")
        import psycopg

        for _ in range(50):  # it listens a moment before it accepts
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                    autocommit=True,
                ) as connection:  # fmt: skip
                    connection.execute("CREATE DATABASE test")
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        else:
            raise ServiceUnavailable("the throwaway PostgreSQL refused every connection")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    finally:
        _stop(process)


@contextlib.contextmanager
def throwaway_redis(work: Path, db: int) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable("no Redis answers and redis-server is not installed")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work), "--logfile", str(work / "redis.log")],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until_it_answers(process, port, "Redis")
        yield f"redis://127.0.0.1:{port}/{db}"
    finally:
        _stop(process)


def _address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def run(command: list[str]) -> int:
    database_url = os.environ.get("LMS_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("LMS_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    env = {**os.environ, "LMS_TEST_DATABASE_URL": database_url, "LMS_TEST_REDIS_URL": redis_url}
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lms-test-services-")))
        os.chmod(work, 0o755)
        if not answers(*_address(database_url, 5432)):
            env["LMS_TEST_DATABASE_URL"] = stack.enter_context(throwaway_postgres(work / "pg"))
            print(f"tests.services: no PostgreSQL at {database_url}; started a throwaway one")
        if not answers(*_address(redis_url, 6379)):
            db = int(urlsplit(redis_url).path.strip("/") or 15)
            env["LMS_TEST_REDIS_URL"] = stack.enter_context(throwaway_redis(work / "redis", db))
            print(f"tests.services: no Redis at {redis_url}; started a throwaway one")
        sys.stdout.flush()
        return subprocess.call(command, env=env)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    try:
        return run(argv)
    except ServiceUnavailable as e:
        print(f"tests.services: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

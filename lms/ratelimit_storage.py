"""A storage for the `limits` package (Flask-Limiter's counters) in a SQLite file, so that all
gunicorn workers (and every process on the host) share one count.

Importing this module registers the scheme: RATELIMIT_STORAGE_URI = "lmssqlite:///abs/path"
(everything after "lmssqlite://" is the file's path). config.load makes it the default, in the
instance folder, when the queue is not Redis.

Fixed-window counting (Flask-Limiter's default strategy): each increment is one
INSERT ... ON CONFLICT DO UPDATE ... RETURNING statement, atomic across processes (SQLite
serialises writers; WAL lets readers run beside them). A connection per call: nothing to
leak across forks or threads.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from limits.storage import Storage

SCHEME = "lmssqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS limits (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
)
"""
_INCR = """
INSERT INTO limits (key, count, expires_at) VALUES (:key, :amount, :expires)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires_at <= :now THEN :amount ELSE count + :amount END,
    expires_at = CASE WHEN expires_at <= :now THEN :expires ELSE expires_at END
RETURNING count
"""
# Expired rows are deleted now and then (every PRUNE_EVERY increments of a process).
PRUNE_EVERY = 1000


class SQLiteStorage(Storage):
    """Rate-limit counters in a SQLite file shared by all processes of the host."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool
    ) -> None:
        if not uri or not uri.startswith(SCHEME + "://"):
            raise ValueError(f"expected {SCHEME}:///path/to/file, not {uri!r}")
        path = uri[len(SCHEME + "://") :]
        if not path:
            raise ValueError(f"{SCHEME}:// needs a file path")
        self.path = str(Path(path))
        self.timeout = float(options.get("timeout", 10.0))
        self._increments = 0
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _connect(self) -> _Connection:
        return _Connection(self.path, self.timeout)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._connect() as conn:
            row = conn.execute(
                _INCR, {"key": key, "amount": amount, "now": now, "expires": now + expiry}
            ).fetchone()
            self._increments += 1
            if self._increments % PRUNE_EVERY == 0:
                conn.execute("DELETE FROM limits WHERE expires_at <= ?", (now,))
        return int(row[0])

    def get(self, key: str) -> int:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT count FROM limits WHERE key = ? AND expires_at > ?", (key, time.time())
            ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT expires_at FROM limits WHERE key = ? AND expires_at > ?",
                (key, time.time()),
            ).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1 FROM limits LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._connect() as conn:
            return int(conn.execute("DELETE FROM limits").rowcount)

    def clear(self, key: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM limits WHERE key = ?", (key,))


class _Connection:
    """A short-lived autocommit connection: each statement is its own transaction."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout

    def __enter__(self) -> sqlite3.Connection:
        self.conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

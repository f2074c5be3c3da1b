"""Throttling failed sign-ins without letting a stranger lock anyone out.

Failures are counted under three keys, each with its free failures and window:

- the (account, client address) pair: LOGIN_FREE_FAILURES (5) per 15 minutes;
- the client address, all accounts: LOGIN_IP_FREE_FAILURES (30) per 15 minutes;
- the account, all addresses: LOGIN_ACCOUNT_FREE_FAILURES (20) per hour; skipped for a
  browser holding a valid device cookie of that account (set at its last successful sign-in).

Past its free failures a key makes the next attempt wait 1 s after its last failure, then 2 s,
4 s... up to LOGIN_MAX_DELAY_SECONDS (900). A waiting attempt is refused before the password is
looked at, so a throttled guess cannot succeed, and it counts as nothing. A key's count is
forgotten `window` quiet seconds after its current delay is over. A success clears the pair
and the account, not the address.

So a stranger failing from address A throttles A (the pair and the address) and, for browsers
without the account's device cookie, the account; the owner signs in from anywhere else with
their device cookie. Counts live in Redis when LMS_QUEUE_URL is redis://..., otherwise in the
application database (`login_throttles`, one atomic upsert per key), so every gunicorn worker
and every web host sees the same counts. Keys are HMACs of the email and address (with the
secret key): no email or address is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import redis
import sqlalchemy as sa
from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.wrappers import Response

from lms.extensions import db
from lms.models import LoginThrottle, User

PAIR_WINDOW = 15 * 60
IP_WINDOW = 15 * 60
ACCOUNT_WINDOW = 60 * 60

DEVICE_COOKIE = "lms_device"
DEVICE_SALT = "lms-device-cookie"
DEVICE_MAX_AGE = 180 * 24 * 3600

REDIS_PREFIX = "lms:login-throttle:"


@dataclass(frozen=True)
class Rule:
    """How failures under one key are throttled."""

    key: str
    window: int  # seconds
    free: int  # failures before the delays start


@dataclass(frozen=True)
class Count:
    failures: int
    last_failure: float  # epoch seconds


def delay(failures: int, free: int, cap: float) -> float:
    """Seconds to wait after the last failure: 0 within the free ones, then 1, 2, 4... cap."""
    if failures < free:
        return 0.0
    exponent = failures - free
    return float(cap) if exponent >= 60 else min(2.0**exponent, float(cap))


# --- the checks -----------------------------------------------------------------------------


def wait_seconds(
    email: str, ip: str | None, *, trusted_device: bool = False, now: float | None = None
) -> int:
    """Seconds before a sign-in to this email from this address may be checked (0: now).
    A trusted device (a valid device cookie of the account) skips the account-wide key."""
    now = time.time() if now is None else now
    rules = _rules(email, ip, account=not trusted_device)
    cap = _cap()
    counts = _store().counts([r.key for r in rules], now)
    wait = 0.0
    for rule in rules:
        count = counts.get(rule.key)
        if count is not None:
            wait = max(wait, count.last_failure + delay(count.failures, rule.free, cap) - now)
    wait = round(wait, 3)  # stored times keep microseconds: no 901 for a 900-second delay
    return math.ceil(wait) if wait > 0 else 0


def record_failure(email: str, ip: str | None, now: float | None = None) -> None:
    """A checked sign-in failed: one more failure under the pair, the address and the
    account (also for an unknown email, so that misses and hits look alike)."""
    now = time.time() if now is None else now
    _store().add_failure(_rules(email, ip, account=True), now, _cap())


def record_success(email: str, ip: str | None) -> None:
    """A sign-in succeeded: the pair's and the account's counts are cleared."""
    rules = _rules(email, ip, account=True)
    _store().clear([r.key for r in rules if not r.key.startswith("ip:")])


def _rules(email: str, ip: str | None, *, account: bool) -> list[Rule]:
    cfg = current_app.config
    email = email.strip().lower()
    address = ip or "unknown"
    pair_free, ip_free = int(cfg["LOGIN_FREE_FAILURES"]), int(cfg["LOGIN_IP_FREE_FAILURES"])
    rules = [
        Rule("pair:" + _digest("pair", email, address), PAIR_WINDOW, pair_free),
        Rule("ip:" + _digest("ip", address), IP_WINDOW, ip_free),
    ]
    if account:
        rules.append(
            Rule(
                "account:" + _digest("account", email),
                ACCOUNT_WINDOW,
                int(cfg["LOGIN_ACCOUNT_FREE_FAILURES"]),
            )
        )
    return rules


def _digest(*parts: str) -> str:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    message = "\n".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:48]


def _cap() -> float:
    return float(current_app.config["LOGIN_MAX_DELAY_SECONDS"])


# --- the device cookie ----------------------------------------------------------------------


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=DEVICE_SALT)


def remember_device(response: Response, user: User) -> None:
    """Set the device cookie of this user (after a successful sign-in): the user id and a
    random id, signed; 180 days; HttpOnly, SameSite=Lax, Secure over HTTPS."""
    value = _device_serializer().dumps({"u": user.id, "d": secrets.token_urlsafe(16)})
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )


def device_user_id() -> int | None:
    """The user id of this browser's valid device cookie, if any."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw or len(raw) > 500:
        return None
    try:
        data = _device_serializer().loads(raw, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return None
    user_id = data.get("u") if isinstance(data, dict) else None
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def trusted_device(email: str) -> bool:
    """Whether this browser holds a valid device cookie of the account with this email."""
    user_id = device_user_id()
    if user_id is None:
        return False
    user = db.session.get(User, user_id)
    return user is not None and user.email == email.strip().lower()


# --- where the counts live ------------------------------------------------------------------


class Store(Protocol):
    def counts(self, keys: Sequence[str], now: float) -> dict[str, Count]: ...

    def add_failure(self, rules: Sequence[Rule], now: float, cap: float) -> None: ...

    def clear(self, keys: Sequence[str]) -> None: ...


def _store() -> Store:
    url = str(current_app.config["QUEUE_URL"])
    if url.startswith("redis"):
        return RedisStore(url)
    return DatabaseStore()


# One failure under each key, atomically: the count, the time, and the key's expiry (its
# current delay plus its window). ARGV: now, cap, then window and free for each key.
_ADD_FAILURE = """
local now = ARGV[1]
local cap = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[1 + 2 * i])
  local free = tonumber(ARGV[2 + 2 * i])
  local n = redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'last', now)
  local d = 0
  if n >= free then d = math.min(2 ^ math.min(n - free, 60), cap) end
  redis.call('EXPIRE', key, math.ceil(d + window))
end
return 1
"""


class RedisStore:
    """Counts as Redis hashes {n, last} that expire by themselves."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def counts(self, keys: Sequence[str], now: float) -> dict[str, Count]:
        with self._client() as client:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(REDIS_PREFIX + key, ["n", "last"])
            replies = pipe.execute()
        found: dict[str, Count] = {}
        for key, (n, last) in zip(keys, replies, strict=True):
            if n is not None and last is not None:
                found[key] = Count(int(n), float(last))
        return found

    def add_failure(self, rules: Sequence[Rule], now: float, cap: float) -> None:
        args: list[str | int | float] = [repr(now), cap]
        for rule in rules:
            args += [rule.window, rule.free]
        with self._client() as client:
            client.eval(_ADD_FAILURE, len(rules), *[REDIS_PREFIX + r.key for r in rules], *args)

    def clear(self, keys: Sequence[str]) -> None:
        if keys:
            with self._client() as client:
                client.delete(*[REDIS_PREFIX + key for key in keys])


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class DatabaseStore:
    """Counts as rows of login_throttles, one atomic upsert per key (PostgreSQL and SQLite:
    INSERT ... ON CONFLICT DO UPDATE), keys in a fixed order so that two sign-ins never wait
    on each other in a cycle."""

    def counts(self, keys: Sequence[str], now: float) -> dict[str, Count]:
        rows = db.session.execute(
            sa.select(
                LoginThrottle.key, LoginThrottle.failures, LoginThrottle.last_failure_at
            ).where(LoginThrottle.key.in_(list(keys)), LoginThrottle.expires_at > _moment(now))
        ).tuples()
        return {key: Count(n, last.timestamp()) for key, n, last in rows}

    def add_failure(self, rules: Sequence[Rule], now: float, cap: float) -> None:
        moment = _moment(now)
        insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        for rule in sorted(rules, key=lambda r: r.key):
            values = insert(LoginThrottle).values(
                key=rule.key,
                failures=1,
                last_failure_at=moment,
                expires_at=moment + timedelta(seconds=rule.window),
            )
            stmt = values.on_conflict_do_update(
                index_elements=[LoginThrottle.key],
                set_={
                    # An expired row starts again from one.
                    "failures": sa.case(
                        (LoginThrottle.expires_at <= moment, 1),
                        else_=LoginThrottle.failures + 1,
                    ),
                    "last_failure_at": moment,
                },
            ).returning(LoginThrottle.failures)
            failures = int(db.session.execute(stmt).scalar_one())
            expires = moment + timedelta(seconds=delay(failures, rule.free, cap) + rule.window)
            db.session.execute(
                sa.update(LoginThrottle)
                .where(LoginThrottle.key == rule.key)
                .values(expires_at=expires)
                .execution_options(synchronize_session=False)
            )
        # Forget expired rows (a bounded batch; rows another sign-in holds are skipped).
        stale = (
            sa.select(LoginThrottle.key)
            .where(LoginThrottle.expires_at < moment)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        db.session.execute(
            sa.delete(LoginThrottle)
            .where(LoginThrottle.key.in_(stale.scalar_subquery()))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    def clear(self, keys: Sequence[str]) -> None:
        db.session.execute(
            sa.delete(LoginThrottle)
            .where(LoginThrottle.key.in_(list(keys)))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

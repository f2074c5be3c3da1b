"""Login throttling that a stranger cannot turn into a lockout: per (account, address) pair,
per address, per account (skipped with the account's device cookie); growing delays; counts
shared by every app process, in the database or in Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, ngettext
from itsdangerous import URLSafeTimedSerializer
from werkzeug.test import TestResponse

from lms import create_app
from lms.extensions import db, limiter
from lms.models import LoginThrottle
from lms.services import login_throttle
from tests import factories
from tests.conftest import PASSWORD, REDIS_URL, IsolatedClient, csrf_token

STRANGER = "198.51.100.66"  # address A
OWNER = "203.0.113.10"  # address B


def attempt(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    addr: str = "127.0.0.1",
    **kwargs: Any,
) -> TestResponse:
    """One sign-in from a browser at a client address, with its own CSRF token."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": addr},
        **kwargs,
    )


@contextmanager
def second_instance(app: Flask, app_config: dict[str, Any]) -> Iterator[Flask]:
    """Another app on the same database and queue, like a second gunicorn worker."""
    other = create_app(app_config)
    other.test_client_class = IsolatedClient
    try:
        yield other
    finally:
        with other.app_context():
            db.engine.dispose()
        limiter.init_app(app)  # create_app rebound the module-level limiter


# --- A stranger cannot lock the owner out --------------------------------------------------


def test_a_stranger_failing_from_one_address_does_not_lock_the_owner_out(app: Flask) -> None:
    factories.admin("admin@test.org")
    owners_browser = app.test_client()
    assert attempt(owners_browser, "admin@test.org", addr=OWNER).status_code == 302
    assert owners_browser.get_cookie(login_throttle.DEVICE_COOKIE) is not None
    stranger = app.test_client()
    statuses = [
        attempt(stranger, "admin@test.org", f"guess-{n}", addr=STRANGER).status_code
        for n in range(50)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    # The stranger's own address is throttled for this account, even with the right password.
    blocked = attempt(stranger, "admin@test.org", addr=STRANGER)
    assert blocked.status_code == 429
    # ...even for the owner's browser (device cookie and all) if it were at address A.
    assert attempt(owners_browser, "admin@test.org", addr=STRANGER).status_code == 429
    # From B the owner signs in, with the device cookie and without.
    assert attempt(owners_browser, "admin@test.org", addr=OWNER).status_code == 302
    assert attempt(app.test_client(), "admin@test.org", addr=OWNER).status_code == 302


def test_a_stranger_failing_from_many_addresses_throttles_only_browsers_without_the_device(
    app: Flask,
) -> None:
    factories.admin("admin@test.org")
    owners_browser = app.test_client()
    assert attempt(owners_browser, "admin@test.org", addr=OWNER).status_code == 302
    stranger = app.test_client()
    statuses = [
        attempt(stranger, "admin@test.org", f"guess-{n}", addr=f"198.51.100.{n}").status_code
        for n in range(50)
    ]
    # 20 free failures per account, then the account waits (for browsers it does not know).
    assert statuses[:20] == [401] * 20 and 429 in statuses[20:]
    assert attempt(app.test_client(), "admin@test.org", addr="192.0.2.1").status_code == 429
    assert attempt(app.test_client(), "admin@test.org", addr=OWNER).status_code == 429
    # The owner's browser holds the device cookie: the account-wide wait does not apply.
    assert attempt(owners_browser, "admin@test.org", addr=OWNER).status_code == 302
    # Their success cleared the account's count: a new browser may sign in again.
    assert attempt(app.test_client(), "admin@test.org", addr="192.0.2.2").status_code == 302


def test_a_device_cookie_is_the_accounts_own_signed_and_minimal(app: Flask) -> None:
    factories.admin("admin@test.org")
    factories.admin("other@test.org")
    browser = app.test_client()
    response = attempt(browser, "other@test.org", addr=OWNER)
    cookie_header = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("lms_device=")
    )
    for attribute in ("HttpOnly", "SameSite=Lax", "Max-Age=15552000", "Path=/"):
        assert attribute in cookie_header
    assert "Secure" not in cookie_header  # plain HTTP here; see test_https.py
    cookie = browser.get_cookie(login_throttle.DEVICE_COOKIE)
    assert cookie is not None
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=login_throttle.DEVICE_SALT)
    content = serializer.loads(cookie.value)
    assert set(content) == {"u", "d"} and isinstance(content["d"], str)
    # Throttle admin@'s account from many addresses.
    for n in range(20):
        attempt(app.test_client(), "admin@test.org", "wrong", addr=f"198.51.100.{n}")
    # Another account's device cookie does not help, nor does a forged one.
    assert attempt(browser, "admin@test.org", addr=OWNER).status_code == 429
    forged = app.test_client()
    forged.set_cookie(login_throttle.DEVICE_COOKIE, cookie.value[:-4] + "AAAA")
    assert attempt(forged, "admin@test.org", addr=OWNER).status_code == 429
    wrong_key = URLSafeTimedSerializer("not-the-secret", salt=login_throttle.DEVICE_SALT)
    forged.set_cookie(login_throttle.DEVICE_COOKIE, wrong_key.dumps({"u": 1, "d": "x"}))
    assert attempt(forged, "admin@test.org", addr=OWNER).status_code == 429


# --- Growing delays --------------------------------------------------------------------------


def test_a_throttled_attempt_waits_and_is_not_even_checked(app: Flask) -> None:
    factories.admin("admin@test.org")
    browser = app.test_client()
    for n in range(5):
        assert attempt(browser, "admin@test.org", f"wrong-{n}").status_code == 401
    first = attempt(browser, "admin@test.org")  # the right password, too early
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert "Wait 1 second, then try again." in first.get_data(as_text=True)
    with browser.session_transaction() as session:
        assert "_user_id" not in session
    time.sleep(1.1)
    assert attempt(browser, "admin@test.org", "wrong-again").status_code == 401
    second = attempt(browser, "admin@test.org")
    assert second.status_code == 429 and second.headers["Retry-After"] == "2"
    assert "Wait 2 seconds, then try again." in second.get_data(as_text=True)
    time.sleep(2.1)
    assert attempt(browser, "admin@test.org").status_code == 302
    # The success cleared the pair: a typo now is an ordinary failure.
    assert attempt(app.test_client(), "admin@test.org", "typo").status_code == 401


def test_the_throttle_message_is_translated(app: Flask, client: FlaskClient) -> None:
    for n in range(5):
        attempt(client, "someone@test.org", f"wrong-{n}")
    response = attempt(client, "someone@test.org", headers={"Accept-Language": "ko"})
    assert response.status_code == 429
    with app.test_request_context(), force_locale("ko"):
        korean = str(
            ngettext(
                "Too many failed sign-ins. Wait %(num)d second, then try again.",
                "Too many failed sign-ins. Wait %(num)d seconds, then try again.",
                1,
            )
        )
    assert "Wait" not in korean
    assert korean in response.get_data(as_text=True)


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> Iterator[str]:
    """The counts in the application database, or in the real Redis."""
    if request.param == "redis":
        app_config["QUEUE_URL"] = REDIS_URL
        with redis_keys_cleared():
            yield "redis"
        return
    yield "database"


class redis_keys_cleared:  # noqa: N801 - used as a context manager
    def __enter__(self) -> None:
        self._clear()

    def __exit__(self, *exc: object) -> None:
        self._clear()

    @staticmethod
    def _clear() -> None:
        with redis.Redis.from_url(REDIS_URL) as client:
            keys = list(client.scan_iter(match=login_throttle.REDIS_PREFIX + "*"))
            if keys:
                client.delete(*keys)


def test_delays_double_up_to_the_cap_and_are_forgotten_after_the_window(
    store: str, app: Flask
) -> None:
    t0 = 1_800_000_000.0
    email, ip = "someone@test.org", "10.1.1.1"
    for n in range(5):
        assert login_throttle.wait_seconds(email, ip, now=t0 + n) == 0
        login_throttle.record_failure(email, ip, now=t0 + n)
    last = t0 + 4
    assert login_throttle.wait_seconds(email, ip, now=last) == 1
    waits = []
    for _ in range(14):
        wait = login_throttle.wait_seconds(email, ip, now=last)
        waits.append(wait)
        last += wait  # the next attempt comes as soon as it may, and fails
        assert login_throttle.wait_seconds(email, ip, now=last) == 0
        login_throttle.record_failure(email, ip, now=last)
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]
    assert login_throttle.wait_seconds(email, ip, now=last + 899.5) == 1
    # Another address is not held up by this pair (the account has 19 failures of its 20).
    assert login_throttle.wait_seconds(email, "10.9.9.9", now=last) == 0
    # Quiet for the delay plus the window (the account's hour): forgotten, five free again.
    later = last + 900 + 60 * 60 + 1
    if store == "redis":
        return  # Redis expires keys by its own clock; the expiry itself is checked below
    for n in range(5):
        assert login_throttle.wait_seconds(email, ip, now=later + n) == 0
        login_throttle.record_failure(email, ip, now=later + n)
    assert login_throttle.wait_seconds(email, ip, now=later + 4) == 1


@pytest.fixture
def redis_store(app_config: dict[str, Any]) -> Iterator[None]:
    app_config["QUEUE_URL"] = REDIS_URL
    with redis_keys_cleared():
        yield


@pytest.mark.usefixtures("redis_store")
def test_redis_keys_expire_after_the_delay_and_window(app: Flask) -> None:
    assert isinstance(login_throttle._store(), login_throttle.RedisStore)
    email, ip = "someone@test.org", "10.1.1.1"
    login_throttle.record_failure(email, ip)
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = [k.decode() for k in client.scan_iter(match=login_throttle.REDIS_PREFIX + "*")]
        assert len(keys) == 3  # pair, address, account
        assert not any(email in k or ip in k for k in keys)  # digests only
        ttls = sorted(int(client.ttl(k)) for k in keys)
    assert 890 <= ttls[0] <= 900 and 3590 <= ttls[-1] <= 3600


@pytest.fixture
def low_ip_limit(app_config: dict[str, Any]) -> None:
    app_config["LOGIN_IP_FREE_FAILURES"] = 3


@pytest.mark.usefixtures("low_ip_limit")
def test_failures_throttle_the_address_across_accounts(app: Flask, client: FlaskClient) -> None:
    for n in range(3):
        assert attempt(client, f"guess{n}@test.org", "wrong-password").status_code == 401
    assert attempt(client, "someone-else@test.org", "wrong-password").status_code == 429
    # A different address still gets through.
    assert attempt(client, "x@test.org", "wrong-password", addr="10.0.0.9").status_code == 401


# --- Shared by every process ---------------------------------------------------------------


def test_two_app_instances_share_the_counts(
    store: str, app: Flask, app_config: dict[str, Any]
) -> None:
    factories.admin("admin@test.org")
    with second_instance(app, app_config) as other:
        for n in range(3):
            assert attempt(app.test_client(), "admin@test.org", f"wrong-{n}").status_code == 401
        for n in range(2):
            response = attempt(other.test_client(), "admin@test.org", f"wrong-{n}")
            assert response.status_code == 401
        # Five failures over the two workers: both now make the sixth wait.
        assert attempt(app.test_client(), "admin@test.org").status_code == 429
        assert attempt(other.test_client(), "admin@test.org").status_code == 429
    if store == "redis":
        with redis.Redis.from_url(REDIS_URL) as client:
            assert any(client.scan_iter(match=login_throttle.REDIS_PREFIX + "*"))


def test_concurrent_failures_are_all_counted(store: str, app: Flask) -> None:
    """Eight threads, each with its own database connection, record failures at once: the
    atomic upserts (or the Redis script) lose none."""
    email, ip, now = "someone@test.org", "10.2.2.2", time.time()
    errors: list[BaseException] = []

    def fail_ten_times() -> None:
        try:
            with app.app_context():
                for _ in range(10):
                    login_throttle.record_failure(email, ip, now=now)
                db.session.remove()
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=fail_ten_times) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 80 failures past 5 free: the delay is at the cap.
    assert login_throttle.wait_seconds(email, ip, now=now) == 900
    rules = login_throttle._rules(email, ip, account=True)
    counts = login_throttle._store().counts([r.key for r in rules], now)
    assert sorted(c.failures for c in counts.values()) == [80, 80, 80]


def test_the_database_forgets_expired_counts(app: Flask) -> None:
    """Rows past their delay and window are deleted as new failures come in."""

    def rows() -> int:
        db.session.expire_all()
        return db.session.scalar(sa.select(sa.func.count()).select_from(LoginThrottle)) or 0

    t0 = 1_800_000_000.0
    login_throttle.record_failure("old@test.org", "10.3.3.3", now=t0)
    assert rows() == 3
    login_throttle.record_failure("new@test.org", "10.4.4.4", now=t0 + 2 * 3600)
    assert rows() == 3  # only the new failure's keys
    assert login_throttle.wait_seconds("old@test.org", "10.3.3.3", now=t0 + 2 * 3600) == 0

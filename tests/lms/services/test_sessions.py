"""Server-side sessions: signing out and deactivation really end a session, a cookie without a
valid session is anonymous, the lab's cookie check, and the session_ended signal."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from lms.extensions import db
from lms.models import User, UserSession, utcnow
from lms.services import sessions, users
from tests import factories
from tests.conftest import Auth, csrf_token


def cookie_value(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert cookie is not None
    return cookie.value


def browser_with(app: Flask, value: str) -> FlaskClient:
    """A new browser holding a copy of a session cookie (as a thief would)."""
    other = app.test_client()
    other.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), value)
    return other


def sid_of(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        sid = session["sid"]
    assert isinstance(sid, str)
    return sid


def press(client: FlaskClient, page: str, action: str) -> TestResponse:
    """Post the form of `page` whose action is `action`, with its hidden fields, as a browser
    does when its button is pressed."""
    html = client.get(page).get_data(as_text=True)
    form = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S
    )
    assert form, f"no form posting to {action} on {page}"
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(1)))
    return client.post(action, data=fields)


def session_row(sid: str) -> UserSession:
    db.session.expire_all()
    row = db.session.scalar(
        sa.select(UserSession).where(
            UserSession.token_hash == hashlib.sha256(sid.encode()).hexdigest()
        )
    )
    assert row is not None
    return row


@pytest.fixture
def ended() -> Iterator[list[tuple[int, bool]]]:
    """(user id, all_sessions) for each session_ended signal sent during the test."""
    calls: list[tuple[int, bool]] = []

    def receiver(sender: User, **kwargs: Any) -> None:
        calls.append((sender.id, bool(kwargs["all_sessions"])))

    with sessions.session_ended.connected_to(receiver):
        yield calls


def test_sign_in_creates_a_session_row_holding_only_the_tokens_hash(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    boss = factories.admin("boss@test.org")
    client.get("/login", headers={"User-Agent": "TestBrowser/1.0"})
    token = csrf_token(client, "/login")
    client.post(
        "/login",
        data={"email": "boss@test.org", "password": "correct-horse-battery", "csrf_token": token},
        headers={"User-Agent": "TestBrowser/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    sid = sid_of(client)
    row = session_row(sid)
    assert row.user_id == boss.id and row.revoked_at is None
    assert row.ip == "203.0.113.7" and row.user_agent == "TestBrowser/1.0"
    assert sid not in row.token_hash and len(row.token_hash) == 64


def test_sign_out_ends_the_session_on_the_server(
    app: Flask, client: FlaskClient, auth: Auth, ended: list[tuple[int, bool]]
) -> None:
    boss = factories.admin("boss@test.org")
    auth.login("boss@test.org")
    stolen = cookie_value(app, client)
    sid = sid_of(client)
    assert browser_with(app, stolen).get("/admin/").status_code == 200  # a copy works...
    assert auth.logout().status_code == 302
    # ...until the owner signs out: the copied cookie is signed and fresh, but its session is
    # over.
    assert browser_with(app, stolen).get("/admin/").status_code == 302
    row = session_row(sid)
    assert row.revoked_at is not None and row.revoke_reason == "sign-out"
    assert ended == [(boss.id, False)]


def test_a_signed_cookie_without_a_valid_session_is_anonymous(
    app: Flask, client: FlaskClient
) -> None:
    """A cookie signed with the secret but naming only a user id (made before this change, or
    forged by someone holding the key) opens nothing."""
    boss = factories.admin("boss@test.org")
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    forged = serializer.dumps({"_user_id": str(boss.id), "_fresh": True})
    assert browser_with(app, forged).get("/admin/").status_code == 302
    made_up = serializer.dumps({"_user_id": str(boss.id), "sid": "not-a-session"})
    assert browser_with(app, made_up).get("/admin/").status_code == 302


def test_another_users_session_token_does_not_open_this_user(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    boss = factories.admin("boss@test.org")
    factories.user("learner@test.org")
    auth.login("learner@test.org")
    learners_sid = sid_of(client)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    mixed = serializer.dumps({"_user_id": str(boss.id), "sid": learners_sid})
    assert browser_with(app, mixed).get("/admin/").status_code == 302


def test_signing_in_again_ends_the_browsers_previous_session(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    first = sid_of(client)
    old_cookie = cookie_value(app, client)
    auth.login("boss@test.org")
    assert sid_of(client) != first
    assert session_row(first).revoked_at is not None
    assert browser_with(app, old_cookie).get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_last_seen_is_written_at_most_once_a_minute(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    sid = sid_of(client)
    before = session_row(sid).last_seen_at
    client.get("/admin/")
    assert session_row(sid).last_seen_at == before  # within the minute: no write
    earlier = utcnow() - timedelta(minutes=5)
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.id == session_row(sid).id)
        .values(last_seen_at=earlier)
    )
    db.session.commit()
    client.get("/admin/")
    touched = session_row(sid).last_seen_at
    assert touched > before
    client.get("/admin/")
    assert session_row(sid).last_seen_at == touched


def test_a_session_idle_longer_than_the_cookie_lifetime_is_over(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    row = session_row(sid_of(client))
    row.last_seen_at = utcnow() - timedelta(hours=13)
    db.session.commit()
    assert client.get("/admin/").status_code == 302


# --- Deactivation --------------------------------------------------------------------------


def test_admin_deactivates_a_user_who_is_signed_out_everywhere_at_once(
    app: Flask, client: FlaskClient, auth: Auth, ended: list[tuple[int, bool]]
) -> None:
    factories.admin("boss@test.org")
    learner = factories.user("learner@test.org")
    browsers = [app.test_client(), app.test_client()]
    for browser in browsers:
        assert Auth(browser).login("learner@test.org").status_code == 302
        assert browser.get("/welcome").status_code == 200
    auth.login("boss@test.org")
    page = f"/admin/users/{learner.id}"
    assert "Deactivate user" in client.get(page).get_data(as_text=True)
    response = press(client, page, f"/admin/users/{learner.id}/deactivate")
    assert response.status_code == 302 and response.headers["Location"] == page
    for browser in browsers:
        assert browser.get("/welcome").status_code == 302  # to the sign-in page
    db.session.expire_all()
    assert not db.session.get(User, learner.id).active  # type: ignore[union-attr]
    open_rows = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(UserSession)
        .where(UserSession.user_id == learner.id, UserSession.revoked_at.is_(None))
    )
    assert open_rows == 0
    assert ended == [(learner.id, True)]
    assert Auth(app.test_client()).login("learner@test.org").status_code == 401
    html = client.get(page).get_data(as_text=True)
    assert "Reactivate user" in html
    # Reactivated: the user signs in again, the old sessions stay over.
    press(client, page, f"/admin/users/{learner.id}/reactivate")
    assert browsers[0].get("/welcome").status_code == 302
    assert Auth(app.test_client()).login("learner@test.org").status_code == 302


def test_deactivation_needs_the_csrf_token_and_an_admin(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    learner = factories.user("learner@test.org")
    auth.login("boss@test.org")
    url = f"/admin/users/{learner.id}/deactivate"
    assert client.post(url, data={"email": learner.email}).status_code == 400  # no CSRF token
    # A valid token without the page's email (or with another) changes nothing.
    token = csrf_token(client, f"/admin/users/{learner.id}")
    assert client.post(url, data={"csrf_token": token}).status_code == 302
    assert client.post(url, data={"csrf_token": token, "email": "boss@test.org"}).status_code == 302
    other = app.test_client()
    Auth(other).login("learner@test.org")
    token = csrf_token(other, "/welcome")
    response = other.post(url, data={"csrf_token": token, "email": learner.email})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(User, learner.id).active  # type: ignore[union-attr]


def test_an_admin_cannot_deactivate_themself(app: Flask, client: FlaskClient, auth: Auth) -> None:
    boss = factories.admin("boss@test.org")
    auth.login("boss@test.org")
    page = f"/admin/users/{boss.id}"
    assert "Deactivate user" not in client.get(page).get_data(as_text=True)
    response = client.post(
        f"/admin/users/{boss.id}/deactivate",
        data={"csrf_token": csrf_token(client, page), "email": boss.email},
        follow_redirects=True,
    )
    assert "You cannot deactivate yourself." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 200
    with pytest.raises(users.UserError):
        users.deactivate(boss, by=boss)
    db.session.expire_all()
    assert db.session.get(User, boss.id).active  # type: ignore[union-attr]


def test_cli_deactivates_and_reactivates_a_user(
    app: Flask, client: FlaskClient, auth: Auth, runner: FlaskCliRunner
) -> None:
    factories.user("learner@test.org")
    auth.login("learner@test.org")
    assert client.get("/welcome").status_code == 200
    result = runner.invoke(args=["lms", "deactivate-user", "Learner@Test.org"])
    assert result.exit_code == 0, result.output
    assert "Deactivated learner@test.org" in result.output
    assert client.get("/welcome").status_code == 302
    assert Auth(app.test_client()).login("learner@test.org").status_code == 401
    result = runner.invoke(args=["lms", "reactivate-user", "learner@test.org"])
    assert result.exit_code == 0, result.output
    assert client.get("/welcome").status_code == 302  # the old session stays over
    assert Auth(app.test_client()).login("learner@test.org").status_code == 302
    unknown = runner.invoke(args=["lms", "deactivate-user", "nobody@test.org"])
    assert unknown.exit_code != 0 and "No user" in unknown.output


# --- The service ---------------------------------------------------------------------------


def test_revoke_all_can_keep_one_session(app: Flask, ended: list[tuple[int, bool]]) -> None:
    user = factories.user("learner@test.org")
    tokens = [sessions.start(user, "10.0.0.1", "ua") for _ in range(3)]
    assert all(sessions.current(t) is not None for t in tokens)
    assert sessions.revoke_all(user, "password-changed", keep=tokens[0]) == 2
    assert sessions.current(tokens[0]) is not None
    assert sessions.current(tokens[1]) is None and sessions.current(tokens[2]) is None
    assert ended == [(user.id, True)]
    assert sessions.revoke(tokens[0], "sign-out") is True
    assert sessions.revoke(tokens[0], "sign-out") is False  # once
    assert ended == [(user.id, True), (user.id, False)]
    assert sessions.current("") is None and sessions.current(None) is None


def test_a_failing_receiver_does_not_stop_the_sign_out(
    app: Flask, client: FlaskClient, auth: Auth, ended: list[tuple[int, bool]]
) -> None:
    def broken(sender: User, **kwargs: Any) -> None:
        raise RuntimeError("the lab hub is down")

    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    with sessions.session_ended.connected_to(broken):
        assert auth.logout().status_code == 302
    assert client.get("/admin/").status_code == 302
    assert len(ended) == 1


# --- The lab's cookie check ----------------------------------------------------------------


def test_user_for_cookie_accepts_only_a_valid_session_of_the_cookies_user(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    learner = factories.user("learner@test.org")
    auth.login("learner@test.org")
    raw = cookie_value(app, client)
    found = sessions.user_for_cookie(raw)
    assert found is not None and found.id == learner.id
    tampered = raw.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert sessions.user_for_cookie(tampered) is None
    assert sessions.user_for_cookie("") is None
    assert sessions.user_for_cookie("garbage") is None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert sessions.user_for_cookie(serializer.dumps({"_user_id": str(learner.id)})) is None
    auth.logout()
    assert sessions.user_for_cookie(raw) is None


def test_user_for_cookie_refuses_a_deactivated_user(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    learner = factories.user("learner@test.org")
    auth.login("learner@test.org")
    raw = cookie_value(app, client)
    users.deactivate(learner, by=None)
    assert sessions.user_for_cookie(raw) is None


@pytest.fixture
def short_lifetime(app_config: dict[str, Any]) -> None:
    app_config["PERMANENT_SESSION_LIFETIME"] = 1


@pytest.mark.usefixtures("short_lifetime")
def test_user_for_cookie_respects_the_session_lifetime(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    factories.user("learner@test.org")
    auth.login("learner@test.org")
    raw = cookie_value(app, client)
    assert sessions.user_for_cookie(raw) is not None
    time.sleep(2.1)
    assert sessions.user_for_cookie(raw) is None

"""Sign-in, sign-out, CSRF and session renewal (throttling: test_login_throttle.py; server-side
sessions: test_sessions.py)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms.services import passwords
from tests import factories
from tests.conftest import PASSWORD, Auth, csrf_token


def test_login_page_has_the_form_fields(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    for name in ('name="email"', 'name="password"', 'name="csrf_token"'):
        assert name in html


def test_admin_signs_in_and_lands_on_admin_home(client: FlaskClient, auth: Auth) -> None:
    factories.admin("boss@test.org")
    response = auth.login("boss@test.org")
    assert response.status_code == 302
    home = client.get(response.headers["Location"], follow_redirects=True)
    assert home.request.path == "/admin/"
    assert "Log out" in home.get_data(as_text=True)


def test_wrong_password_and_unknown_email_get_the_same_generic_error(
    client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    wrong = auth.login("boss@test.org", "not-the-password")
    unknown = auth.login("nobody@test.org", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert "Invalid email or password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302  # still signed out: sent to /login


def test_email_is_case_insensitive(client: FlaskClient, auth: Auth) -> None:
    factories.admin("boss@test.org")
    assert auth.login("  Boss@Test.ORG ").status_code == 302


def test_user_without_password_or_deactivated_cannot_sign_in(app: Flask, auth: Auth) -> None:
    factories.user("imported@test.org", password=None)
    deactivated = factories.user("gone@test.org")
    deactivated.active = False
    from lms.extensions import db

    db.session.commit()
    assert auth.login("imported@test.org", "").status_code == 400  # empty password: form error
    assert auth.login("imported@test.org", PASSWORD).status_code == 401
    assert auth.login("gone@test.org").status_code == 401


def test_passwords_are_stored_hashed_with_scrypt(app: Flask) -> None:
    user = factories.user("hash@test.org")
    assert user.password_hash is not None
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith("scrypt:")


def test_short_password_is_refused(app: Flask) -> None:
    """The rule is checked where a person chooses a password (forms, links from mails)."""
    assert "at least 12" in (passwords.problem("abc") or "")


def test_logout_is_a_post_with_csrf(client: FlaskClient, auth: Auth) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/admin/").status_code == 200
    assert auth.logout().status_code == 302
    assert client.get("/admin/").status_code == 302


def test_login_without_csrf_token_is_rejected(client: FlaskClient) -> None:
    factories.admin("boss@test.org")
    response = client.post("/login", data={"email": "boss@test.org", "password": PASSWORD})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_csrf_token_from_another_session_is_rejected(app: Flask, client: FlaskClient) -> None:
    factories.admin("boss@test.org")
    other = app.test_client()
    token = csrf_token(other, "/login")
    response = client.post(
        "/login", data={"email": "boss@test.org", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 400


def test_session_is_renewed_at_login(client: FlaskClient, auth: Auth) -> None:
    factories.admin("boss@test.org")
    with client.session_transaction() as session:
        session["planted"] = "by-someone-else"
    auth.login("boss@test.org")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"]
        assert session["sid"]  # the server-side session's token
        assert session.permanent


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_next_parameter_cannot_leave_the_site(client: FlaskClient, target: str) -> None:
    factories.admin("boss@test.org")
    token = csrf_token(client, "/login")
    response = client.post(
        f"/login?next={target}",
        data={"email": "boss@test.org", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_next_parameter_keeps_a_local_path(client: FlaskClient) -> None:
    factories.admin("boss@test.org")
    token = csrf_token(client, "/login")
    response = client.post(
        "/login?next=/admin/users",
        data={"email": "boss@test.org", "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/admin/users"


def test_successful_logins_do_not_count_toward_the_limit(app: Flask) -> None:
    factories.admin("boss@test.org")
    for _ in range(8):
        client = app.test_client()
        assert Auth(client).login("boss@test.org").status_code == 302

"""English, Vietnamese and Korean: chosen from the browser, the menu, or the user's setting."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext

from lms.extensions import db
from lms.services import users
from tests import factories
from tests.conftest import Auth, csrf_token


def translated(app: Flask, locale: str, message: str) -> str:
    with app.test_request_context(), force_locale(locale):
        text = str(gettext(message))
    assert text != message, f"{message!r} has no {locale} translation (run make translations)"
    return text


@pytest.mark.parametrize("locale", ["vi", "ko"])
def test_browser_language_picks_the_catalogue(app: Flask, client: FlaskClient, locale: str) -> None:
    response = client.get("/login", headers={"Accept-Language": f"{locale},en;q=0.5"})
    html = response.get_data(as_text=True)
    assert f'<html lang="{locale}">' in html
    assert translated(app, locale, "Sign in") in html
    assert translated(app, locale, "Password") in html


def test_unknown_language_falls_back_to_english(client: FlaskClient) -> None:
    html = client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in html and ">Sign in<" in html


def test_language_menu_is_remembered_for_the_user(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    response = client.post(
        "/language", data={"lang": "ko", "next": "/admin/", "csrf_token": csrf_token(client, "/")}
    )
    assert response.headers["Location"] == "/admin/"
    assert translated(app, "ko", "Administration") in client.get("/admin/").get_data(as_text=True)
    db.session.expire_all()
    user = users.find_by_email("boss@test.org")
    assert user is not None and user.locale == "ko"
    # A new browser without the choice in its session still gets the user's language.
    fresh = app.test_client()
    Auth(fresh).login("boss@test.org")
    assert '<html lang="ko">' in fresh.get("/admin/").get_data(as_text=True)


def test_language_menu_rejects_unknown_codes(client: FlaskClient) -> None:
    client.post("/language", data={"lang": "xx", "csrf_token": csrf_token(client, "/login")})
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)

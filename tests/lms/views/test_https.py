"""Behind TLS (a trusted proxy saying X-Forwarded-Proto: https) cookies are Secure and pages
carry HSTS; over plain HTTP (make run on http://127.0.0.1) neither."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from lms.services import login_throttle
from tests import factories
from tests.conftest import PASSWORD, csrf_token

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def behind_proxy(app_config: dict[str, Any]) -> None:
    app_config["TRUSTED_PROXIES"] = 1


def sign_in(client: FlaskClient, headers: dict[str, str]) -> TestResponse:
    client.get("/login", headers=headers)
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"email": "boss@test.org", "password": PASSWORD, "csrf_token": token},
        headers=headers,
    )


def set_cookies(response: TestResponse) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


@pytest.mark.usefixtures("behind_proxy")
def test_over_https_cookies_are_secure_and_hsts_is_sent(app: Flask, client: FlaskClient) -> None:
    factories.admin("boss@test.org")
    # Flask-WTF checks the Referer of HTTPS form posts, as browsers send it.
    https = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "203.0.113.5",
        "Referer": "https://localhost/login",
    }
    page = client.get("/login", headers=https)
    assert page.headers["Strict-Transport-Security"] == HSTS
    response = sign_in(client, https)
    assert response.status_code == 302
    assert response.headers["Strict-Transport-Security"] == HSTS
    cookies = set_cookies(response)
    assert "Secure" in cookies["session"] and "HttpOnly" in cookies["session"]
    assert "Secure" in cookies[login_throttle.DEVICE_COOKIE]
    # The language choice lives in the (Secure) session cookie: no cookie of its own.
    changed = client.post(
        "/language",
        data={"lang": "vi", "csrf_token": csrf_token(client, "/admin/")},
        headers=https,
    )
    assert set(set_cookies(changed)) == {"session"} and "Secure" in set_cookies(changed)["session"]


@pytest.mark.usefixtures("behind_proxy")
def test_over_plain_http_behind_the_proxy_neither(app: Flask, client: FlaskClient) -> None:
    factories.admin("boss@test.org")
    plain = {"X-Forwarded-Proto": "http"}
    assert "Strict-Transport-Security" not in client.get("/login", headers=plain).headers
    response = sign_in(client, plain)
    assert response.status_code == 302
    assert "Strict-Transport-Security" not in response.headers
    cookies = set_cookies(response)
    assert "Secure" not in cookies["session"]
    assert "Secure" not in cookies[login_throttle.DEVICE_COOKIE]
    assert client.get("/admin/").status_code == 200  # the cookies work on http://


def test_without_a_trusted_proxy_the_header_is_not_believed(
    app: Flask, client: FlaskClient
) -> None:
    factories.admin("boss@test.org")
    spoofed = {"X-Forwarded-Proto": "https"}
    assert "Strict-Transport-Security" not in client.get("/login", headers=spoofed).headers
    response = sign_in(client, spoofed)
    assert "Secure" not in set_cookies(response)["session"]

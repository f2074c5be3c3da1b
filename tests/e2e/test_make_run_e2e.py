"""`make run` serves /healthz, and each demo user signs in through the form in Chromium."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server

DEMO_HOMES = {
    "admin@example.org": ("/admin/", "Administration"),
    "coordinator@example.org": ("/coordinate/", "My programs"),
    "instructor@example.org": ("/teach/", "My courses"),
    "learner@example.org": ("/learn/", "My learning"),
}


def sign_in(page: Page, server: Server, email: str, password: str) -> None:
    page.goto(server.base_url + "/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_make_run_serves_healthz_and_prints_the_logins(make_run: Server) -> None:
    with urllib.request.urlopen(make_run.base_url + "/healthz") as response:
        assert json.load(response) == {"status": "ok", "db": "ok", "queue": "ok"}
    printed = make_run.log.read_text()
    assert "demo-password" in printed and f"Open {make_run.base_url}/" in printed
    for email in DEMO_HOMES:
        assert email in printed


@pytest.mark.parametrize("email", list(DEMO_HOMES))
def test_demo_user_signs_in_and_lands_on_home(
    make_run: Server, browser: Browser, email: str
) -> None:
    path, heading = DEMO_HOMES[email]
    page = browser.new_page()
    sign_in(page, make_run, email, "demo-password")
    expect(page).to_have_url(make_run.base_url + path)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(make_run.base_url + "/login")
    page.goto(make_run.base_url + path)
    expect(page).to_have_url(f"{make_run.base_url}/login?next={path.replace('/', '%2F')}")
    page.close()


def test_wrong_password_stays_on_the_login_page(make_run: Server, browser: Browser) -> None:
    page = browser.new_page()
    sign_in(page, make_run, "admin@example.org", "wrong-password")
    expect(page).to_have_url(make_run.base_url + "/login")
    expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.close()


def test_login_page_is_usable_on_a_phone_and_by_keyboard(
    make_run: Server, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(make_run.base_url + "/login")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Email").focus()
    page.keyboard.type("learner@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("demo-password")
    page.keyboard.press("Enter")
    expect(page).to_have_url(make_run.base_url + "/learn/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page scrolls sideways on a phone"
    page.close()


def test_language_switch_translates_the_page(make_run: Server, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(make_run.base_url + "/login")
    page.get_by_label("Language").select_option("ko")
    page.get_by_role("button", name="Change language").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Sign in")
    page.close()

"""An imported learner's first day, in the browser against `make run`: an admin imports them
from CSV and invites the cohort; the invitation arrives at a real SMTP server; its link sets a
password and lands on My learning; signing in again works; the learner opens a lab."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Server
from tests.e2e.test_lab_e2e import open_lab
from tests.e2e.test_make_run_e2e import sign_in
from tests.mailserver import MailServer

COHORT = "gwangju-ai-school-autumn"
NEWCOMER = "new.learner@example.org"
PASSWORD = "mango-river-lantern-77"


def test_an_imported_learner_is_invited_sets_a_password_and_opens_a_lab(
    make_run: Server, browser: Browser, e2e_mail: MailServer, tmp_path: Path
) -> None:
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(admin, make_run, "admin@example.org", "demo-password")
    admin.goto(f"{make_run.base_url}/admin/cohorts/{COHORT}")
    learners = tmp_path / "new-learners.csv"
    learners.write_text(f"email,name\n{NEWCOMER},Ngoc New\n")
    admin.get_by_label("CSV file").set_input_files(str(learners))
    admin.get_by_label("Then invite by email everyone of the cohort not invited yet").check()
    admin.get_by_role("button", name="Import learners").click()
    # The invitation round's page: a live bar while the worker sends.
    expect(admin).to_have_url(re.compile(r".*/invitations/batches/\d+$"))
    expect(admin.locator("progress")).to_be_visible()
    expect(admin.locator('[data-field="state"]')).to_have_text("Done", timeout=180_000)
    admin.close()

    (mail,) = e2e_mail.wait_for(NEWCOMER, timeout=30)
    assert "invited" in mail.subject
    (link,) = mail.links
    assert link.startswith(make_run.base_url + "/join/"), link

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(link)
    expect(page.get_by_role("heading", name="Welcome, Ngoc New")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("New password again").fill(PASSWORD)
    page.get_by_role("button", name="Set my password").click()
    expect(page).to_have_url(re.compile(r".*/learn/$"))
    expect(page.get_by_text("Welcome! Your password is set.")).to_be_visible()

    # Signed out, the learner signs in with the new password and lands on My learning.
    page.get_by_role("button", name="Log out").click()
    sign_in(page, make_run, NEWCOMER, PASSWORD)
    expect(page).to_have_url(re.compile(r".*/learn/$"))
    open_lab(page, make_run, "Linear algebra for city traffic")
    page.close()

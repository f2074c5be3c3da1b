"""Grading in the browser against `make run` (gunicorn and the real worker, demo data): an
instructor autogrades the demo submissions and watches the progress bar reach the end; a
learner uploads a notebook and sees the instant feedback appear without reloading by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Browser, Dialog, FilePayload, expect

from tests.e2e.conftest import Server
from tests.e2e.test_make_run_e2e import sign_in

ASSIGNMENT = "/teach/courses/python-numpy-for-ai/assignments/vital-signs-arrays"


def test_instructor_batch_progress_bar_reaches_the_end(make_run: Server, browser: Browser) -> None:
    page = browser.new_page()
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    sign_in(page, make_run, "instructor@example.org", "demo-password")
    page.goto(make_run.base_url + ASSIGNMENT)
    page.get_by_role("link", name="Submissions and autograding").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Vital")
    page.get_by_role("button", name="Autograde all latest submissions").click()

    expect(page).to_have_url(re.compile(r".*/teach/batches/\d+$"))
    bar = page.locator("section.grading-progress progress")
    total = int(bar.get_attribute("max") or 0)
    assert total >= 30, "the demo has at least 30 submissions to grade"
    # The page is not reloaded: batch.js moves the bar and the figures as jobs finish.
    expect(page.locator('[data-field="state"]')).to_have_text("finished", timeout=240_000)
    expect(bar).to_have_attribute("value", str(total))
    graded = int(page.locator('[data-field="done"]').inner_text())
    failed = int(page.locator('[data-field="failed"]').inner_text())
    assert (graded, failed) == (total, 0)
    assert page.get_by_role("button", name="Cancel batch").is_hidden()

    # The graded submissions show scores on the submissions page.
    page.goto(make_run.base_url + ASSIGNMENT + "/submissions")
    latest = page.get_by_role("table").first
    expect(latest).to_contain_text(re.compile(r"\d+(\.\d+)? / \d+"))
    assert dialogs == [], "no learner notebook may open a dialog in the instructor's pages"
    page.close()


def test_learner_uploads_and_sees_instant_feedback(make_run: Server, browser: Browser) -> None:
    release = next(
        Path(make_run.log.parent / "data" / "releases").glob(
            "python-numpy-for-ai/vital-signs-arrays/v*/vital-signs-arrays.ipynb"
        )
    )
    notebook = json.loads(release.read_text())
    page = browser.new_page()
    sign_in(page, make_run, "learner@example.org", "demo-password")
    page.get_by_role("link", name="Python and NumPy for AI").first.click()
    page.get_by_role("link", name="Vital signs with NumPy arrays", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Vital signs")
    upload: FilePayload = {
        "name": "vital-signs-arrays.ipynb",
        "mimeType": "application/x-ipynb+json",
        "buffer": json.dumps(notebook).encode(),
    }
    page.get_by_label("Notebook file (.ipynb)").set_input_files(files=[upload])
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page).to_have_url(re.compile(r".*/learn/submissions/\d+$"))
    # submission.js polls and reloads when the instant grading ends; the untouched release
    # fails its tests.
    expect(page.get_by_text("failed").first).to_be_visible(timeout=120_000)
    page.close()

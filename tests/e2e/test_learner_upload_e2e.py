"""The upload form in the browser: a file that is too large or not readable JSON is named
next to the file field before anything is sent, and the server's refusal of a broken notebook
is said in the same place."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Server
from tests.e2e.test_lab_e2e import COURSE_PAGE
from tests.e2e.test_make_run_e2e import sign_in


def test_upload_problems_are_named_next_to_the_file_field(
    make_run: Server, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, make_run, "learner@example.org", "demo-password")
    page.goto(make_run.base_url + COURSE_PAGE)
    page.get_by_role("link", name="Linear algebra for city traffic").first.click()
    assignment_url = page.url
    field = page.get_by_label("Notebook file (.ipynb)")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)

    big = tmp_path / "my-big-answers.ipynb"
    big.write_bytes(b" " * (21 * 1024 * 1024))  # the demo's limit is 20 MB
    field.set_input_files(str(big))
    error = page.locator("#notebook-error")
    expect(error).to_contain_text("my-big-answers.ipynb is 21.0 MB: the limit is 20 MB")
    expect(field).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(error).to_be_visible()
    assert sent == [] and page.url == assignment_url, "nothing was sent"

    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    field.set_input_files(str(broken))
    expect(error).to_contain_text("broken.ipynb is not a valid notebook")
    # The server refuses it too, and says so in the same place.
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#notebook-error")).to_contain_text(
        re.compile(r"broken\.ipynb is not a valid notebook: broken JSON")
    )
    page.close()

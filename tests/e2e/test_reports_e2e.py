"""The demo coordinator in the browser against `make run`: opens the program dashboard (charts
drawn, nothing refused by the page's Content-Security-Policy), downloads the progress report
in each format, and drills down to a cohort's gradebook and one learner. The demo's
completions agree with the completion rule."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, expect

from tests.e2e.conftest import ROOT, Server
from tests.e2e.test_make_run_e2e import sign_in


def test_coordinator_dashboard_and_every_export(
    make_run: Server, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    missing: list[str] = []
    page.on(
        "response",
        lambda r: missing.append(r.url) if r.status >= 400 and "favicon" not in r.url else None,
    )
    sign_in(page, make_run, "coordinator@example.org", "demo-password")
    page.goto(make_run.base_url + "/coordinate/")
    page.get_by_role("link", name="Gwangju AI School").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gwangju AI School")
    expect(page.locator("svg.chart")).to_have_count(2)
    expect(page.get_by_role("heading", name="Forecast")).to_be_visible()
    enrolled = int(
        page.locator("dl.figures div", has_text="Enrolled")
        .locator("dd")
        .inner_text()
        .replace(",", "")
    )
    assert enrolled > 200
    completed = page.locator("dl.figures div", has_text="Completed").locator("dd")
    assert int(completed.inner_text().replace(",", "")) > 50  # the spring cohort's finishers

    # The demo's completions follow from its learners' graded work, by the rule itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    refresh = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "lms", "refresh-completions"],
        cwd=ROOT,
        env={**env, "LMS_INSTANCE_PATH": str(make_run.log.parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "0 enrolment(s) changed" in refresh.stdout, refresh.stdout + refresh.stderr

    magic = {"csv": b'\xef\xbb\xbf"Cohort"', "xlsx": b"PK", "pdf": b"%PDF"}
    for name, extension in (("CSV", "csv"), ("Excel (XLSX)", "xlsx"), ("PDF", "pdf")):
        with page.expect_download() as info:
            page.get_by_role("button", name=name, exact=True).first.click()
        download = info.value
        assert download.suggested_filename.endswith(f".{extension}")
        assert "gwangju-ai-school" in download.suggested_filename
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        data = saved.read_bytes()
        assert data.startswith(magic[extension]), (extension, data[:20])
        if extension == "csv":
            rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
            counted = [r for r in rows if r["Status"] != "withdrawn"]
            assert len(counted) == enrolled  # the numbers shown are the numbers exported

    # Drill down: the laggards' table links each cohort to its gradebook, sorted by a click.
    page.get_by_role("link", name=re.compile("Autumn")).first.click()
    expect(page.get_by_role("heading", name="Gradebook")).to_be_visible()
    page.get_by_role("link", name="Passed", exact=True).click()
    expect(page.locator("th[aria-sort]")).to_have_count(1)
    page.locator("table.gradebook tbody th a").first.click()
    expect(page.get_by_role("heading", name="Assignments")).to_be_visible()
    assert missing == [], missing
    # Browsers ask for /favicon.ico on their own; anything else logged is a fault.
    assert [e for e in errors if "Failed to load resource" not in e] == [], errors
    page.close()

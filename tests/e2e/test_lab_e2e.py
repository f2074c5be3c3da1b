"""Labs in the browser against `make run` (the lab hub in front of gunicorn, real lab servers,
sandboxed kernels): a learner opens the lab from the assignment, runs a cell, saves and
submits, and sees the autograde result; another learner cannot open that lab even with its
link; an idle lab is stopped and reopens with the saved work in it."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from playwright.sync_api import Browser, Dialog, FrameLocator, Page, expect

from tests.e2e.conftest import ROOT, Server
from tests.e2e.test_make_run_e2e import sign_in

COHORT = "gwangju-ai-school-autumn"
COURSE = "python-numpy-for-ai"
COURSE_PAGE = f"/learn/cohorts/{COHORT}/courses/{COURSE}"
LAB_SLUG = "traffic-linear-algebra"


def open_lab(page: Page, server: Server, assignment_title: str) -> FrameLocator:
    """From the learner's course page: the assignment, then "Open lab"; the notebook frame."""
    page.goto(server.base_url + COURSE_PAGE)
    page.get_by_role("link", name=assignment_title).first.click()
    page.get_by_role("button", name="Open lab").click()  # a form: a link starts nothing
    expect(page).to_have_url(re.compile(r".*/lab(\?.*)?$"))
    frame = page.frame_locator("iframe.lms-lab-frame")
    expect(frame.locator(".jp-Notebook .jp-CodeCell").first).to_be_visible(timeout=60_000)
    expect(frame.get_by_text("Python 3 (sandboxed)")).to_be_visible()
    return frame


def run_new_cell(page: Page, frame: FrameLocator, code: str) -> None:
    """A new code cell below the first one (the released cells around it are read-only),
    typed and run as a learner does: select, b, Enter, type, Shift+Enter."""
    frame.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first.click()
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def save(page: Page, frame: FrameLocator) -> None:
    page.keyboard.press("Control+s")
    expect(frame.locator(".jp-Notebook-cell").first).to_be_visible()
    # Saved means the title no longer marks unsaved changes.
    expect(frame.locator(".jp-mod-dirty")).to_have_count(0, timeout=15_000)


def workspace_notebook(server: Server, learner_id: str, slug: str) -> Path:
    return server.log.parent / "data" / "workspaces" / learner_id / COURSE / slug / f"{slug}.ipynb"


def lab_owner(page: Page) -> str:
    """The learner id in the lab frame's path: /lab/<owner>/..."""
    return str(
        page.frame_locator("iframe.lms-lab-frame")
        .locator("body")
        .evaluate("() => window.location.pathname.split('/')[2]")
    )


def flask(server: Server, *args: str, stdin: str | None = None) -> str:
    """A `flask lms ...` command on the make run instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(LMS_INSTANCE_PATH=str(server.log.parent), FLASK_APP="wsgi")
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "lms", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_learner_opens_the_lab_runs_saves_submits_and_sees_the_autograde(
    make_run: Server, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, make_run, "learner@example.org", "demo-password")
    frame = open_lab(page, make_run, "Linear algebra for city traffic")

    run_new_cell(page, frame, "print(6 * 7)")
    expect(frame.locator(".jp-OutputArea-output").filter(has_text="42")).to_be_visible(
        timeout=60_000
    )
    save(page, frame)
    saved = workspace_notebook(make_run, lab_owner(page), LAB_SLUG).read_text()
    assert "print(6 * 7)" in saved, "the saved notebook is in the learner's workspace"

    page.get_by_role("button", name="Submit saved notebooks").click()
    expect(page).to_have_url(re.compile(r".*/learn/submissions/\d+$"))
    expect(page.locator(".flash").first).to_contain_text("submitted")
    # The instant autograde of the submitted notebook: its answers are still the release's.
    expect(page.get_by_text("Tests total")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("failed").first).to_be_visible()
    page.close()


def test_submit_from_the_lab_saves_unsaved_work_first(make_run: Server, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", refuse)
    sign_in(page, make_run, "learner@example.org", "demo-password")
    frame = open_lab(page, make_run, "Linear algebra for city traffic")
    run_new_cell(page, frame, "unsaved_marker = 'typed, never saved by hand'")
    # Unsaved changes, as the notebook's own model says (the lab exposes its app to the page).
    assert frame.locator("body").evaluate(
        "() => window.jupyterapp.shell.currentWidget.context.model.dirty"
    )

    page.get_by_role("button", name="Submit saved notebooks").click()
    expect(page).to_have_url(re.compile(r".*/learn/submissions/\d+$"), timeout=30_000)
    assert dialogs == [], "no leave-page dialog"
    expect(page.locator(".flash").first).not_to_contain_text("nothing new was stored")
    link = page.get_by_role("link", name=re.compile(r"Download .*\.ipynb"))
    submitted = page.request.get(make_run.base_url + str(link.first.get_attribute("href")))
    assert "typed, never saved by hand" in submitted.text(), "the open notebook was saved first"
    page.close()


# jupyter/notebook#7862: a race in Notebook's own shortcuts plugin, upstream and open.
UPSTREAM_ERRORS = ("reading 'schema'",)


def test_the_lab_logs_no_errors_and_speaks_the_learners_language(
    make_run: Server, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, make_run, "learner@example.org", "demo-password")
    frame = open_lab(page, make_run, "Linear algebra for city traffic")
    expect(page.locator("[data-lab-loading]")).to_be_hidden()  # the progress note is gone
    run_new_cell(page, frame, "print(7 * 191)")
    expect(frame.locator(".jp-OutputArea-output").filter(has_text="1337").first).to_be_visible(
        timeout=60_000
    )
    expect(frame.get_by_role("menuitem", name="Edit", exact=True)).to_be_visible()
    unexpected = [e for e in errors if not any(known in e for known in UPSTREAM_ERRORS)]
    assert unexpected == [], unexpected  # no 404s, no refused websocket, no favicon

    # The learner reads Korean in the LMS: the lab they open next speaks it too. (The choice
    # is kept for the account: it is put back for the tests after this one.)
    back = page.url
    page.locator("#lang").select_option("ko")
    page.locator("form.language button").click()
    try:
        page.goto(re.sub(r"/lab(\?.*)?$", "/", back))  # the assignment page
        page.locator("[data-lab-open]").click()
        frame = page.frame_locator("iframe.lms-lab-frame")
        expect(frame.get_by_role("menuitem", name="편집", exact=True)).to_be_visible(timeout=60_000)
    finally:
        try:
            page.locator("#lang").select_option("en")
            page.locator("form.language button").click()
            # The form brings the lab page back, which takes seconds on a loaded machine.
            expect(page.locator("html")).to_have_attribute("lang", "en", timeout=30_000)
        finally:
            page.close()  # an open lab page keeps its lab busy: the idle-lab test needs it shut


def test_another_learner_cannot_open_the_lab_even_with_its_link(
    make_run: Server, browser: Browser
) -> None:
    owner = browser.new_page()
    sign_in(owner, make_run, "learner@example.org", "demo-password")
    open_lab(owner, make_run, "Linear algebra for city traffic")
    lab_url = (
        owner.frame_locator("iframe.lms-lab-frame")
        .locator("body")
        .evaluate("() => window.location.href")
    )
    assert "/lab/" in lab_url
    owner.close()

    flask(make_run, "create-user", "--email", "second@example.org", "--password", "second-pw-9")
    csv_file = make_run.log.parent / "second.csv"
    csv_file.write_text("email,name\nsecond@example.org,Sam Second\n")
    flask(make_run, "import-learners", str(csv_file), "--cohort", COHORT)

    other = browser.new_page()
    sign_in(other, make_run, "second@example.org", "second-pw-9")
    expect(other.get_by_role("link", name="My learning")).to_be_visible()
    # With the second learner's session (the page's cookies), page and API alike are refused.
    for url in (lab_url, lab_url.split("/notebooks/")[0] + "/api/contents"):
        response = other.request.get(url, max_redirects=0)
        assert response.status == 403, f"{url} answered {response.status}"
        assert "print(6 * 7)" not in response.text()
    # Nor can anyone signed out: the lab sends them to the LMS sign-in.
    signed_out = browser.new_page()
    signed_out.goto(lab_url)
    expect(signed_out.get_by_label("Password")).to_be_visible()
    signed_out.close()
    other.close()


def test_an_idle_lab_is_stopped_and_reopens_with_the_work_intact(
    make_run: Server, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, make_run, "learner@example.org", "demo-password")
    frame = open_lab(page, make_run, "Vital signs with NumPy arrays")
    lab_url = frame.locator("body").evaluate("() => window.location.href")
    run_new_cell(page, frame, "kept = 'still here'")
    expect(frame.locator(".cm-line", has_text="still here")).to_be_visible()
    save(page, frame)
    saved = workspace_notebook(make_run, lab_owner(page), "vital-signs-arrays")
    assert "still here" in saved.read_text(), "the saved work is on disk before the lab stops"

    # Leave the lab; make run stops labs idle for LMS_LAB_IDLE_MINUTES (30 s in these tests).
    page.goto(make_run.base_url + COURSE_PAGE)
    deadline = time.monotonic() + 150
    while True:
        state = page.request.get(make_run.base_url + "/learn/lab/status.json").json()
        if not state["running"]:
            break
        assert time.monotonic() < deadline, f"the idle lab was not stopped: {state}"
        time.sleep(2)

    # Its old link now says so, and takes the learner back in.
    page.goto(lab_url)
    expect(page.get_by_role("heading", name="Your lab is stopped")).to_be_visible()
    page.get_by_role("link", name="Open the lab again").click()
    page.get_by_role("button", name="Open lab").click()  # the lab page starts nothing itself
    frame = page.frame_locator("iframe.lms-lab-frame")
    expect(frame.locator(".cm-line", has_text="still here")).to_be_visible(timeout=60_000)
    page.close()

"""The instructors' and coordinators' pages in Chromium against `make run` (demo data):
grading a learner's written answer by hand (Markdown rendered, nothing of the learner's runs,
the keyboard reaches the answer and the score, Alt+arrows stay the field's while typing,
Ctrl+Enter saves and says so), picking the learner of an extension by typing, and acts that
reach many people (releasing feedback, issuing certificates) only once confirmed, with
JavaScript off; then revoking a certificate, which the public page then says.

They change the demo as little as they can: feedback released is withdrawn again, and the
certificates issued are the ones the demo's completed learners are waiting for."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Browser, Dialog, FilePayload, Page, expect

from tests.e2e.conftest import Server
from tests.e2e.test_make_run_e2e import sign_in

PASSWORD = "demo-password"
COURSE = "python-numpy-for-ai"
ASSIGNMENT = "factory-sensor-vectorisation"
WRITTEN = "written-why-vectorised"
AUTUMN = "gwangju-ai-school-autumn"
SPRING = "gwangju-ai-school-spring"
ANSWER = """## Why vectorise

Because **vectorised** NumPy runs the loop in C.

<img src=x onerror="window.__pwned = 'img'; alert('img')">

<script>window.__pwned = 'script'; alert('script')</script>

[a link](javascript:window.__pwned='link')
"""


def refuse_dialogs(page: Page) -> list[str]:
    seen: list[str] = []

    def refuse(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    return seen


def submit_written_answer(browser: Browser, server: Server) -> None:
    """The demo learner hands in the assignment with a hostile Markdown answer."""
    release = next(
        Path(server.log.parent / "data" / "releases").glob(
            f"{COURSE}/{ASSIGNMENT}/v*/{ASSIGNMENT}.ipynb"
        )
    )
    notebook = json.loads(release.read_text())
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == WRITTEN:
            cell["source"] = ANSWER
    page = browser.new_page()
    sign_in(page, server, "learner@example.org", PASSWORD)
    page.goto(f"{server.base_url}/learn/cohorts/{AUTUMN}/courses/{COURSE}/{ASSIGNMENT}/")
    upload: FilePayload = {
        "name": f"{ASSIGNMENT}.ipynb",
        "mimeType": "application/x-ipynb+json",
        "buffer": json.dumps(notebook).encode(),
    }
    page.get_by_label("Notebook file (.ipynb)").set_input_files(files=[upload])
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page).to_have_url(re.compile(r".*/learn/submissions/\d+$"))
    page.close()


def focused(page: Page) -> str:
    """What has the keyboard focus: its id, else its classes, else its tag."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.id || e.className || e.tagName.toLowerCase(); }"
        )
    )


def test_grading_a_written_answer_by_keyboard(make_run: Server, browser: Browser) -> None:
    submit_written_answer(browser, make_run)
    page = browser.new_page()
    dialogs = refuse_dialogs(page)
    sign_in(page, make_run, "instructor@example.org", PASSWORD)
    # All cohorts: the spring cohort's answers are Linh's neighbours.
    page.goto(
        f"{make_run.base_url}/teach/courses/{COURSE}/assignments/{ASSIGNMENT}/grade/{WRITTEN}"
    )
    page.locator(".grading-ungraded").get_by_role("link", name="Linh Learner").click()
    expect(page.get_by_role("heading", level=2, name=re.compile("Linh Learner"))).to_be_visible()

    # The answer is Markdown, rendered; nothing the learner wrote runs.
    answer = page.get_by_role("region", name=re.compile("Linh Learner"))
    expect(answer.locator("strong")).to_have_text("vectorised")
    expect(answer.get_by_role("heading", level=4)).to_have_text("Why vectorise")
    expect(answer.locator("script, img, [onerror]")).to_have_count(0)
    answer.get_by_text("a link").click()
    assert page.evaluate("() => window.__pwned") is None and dialogs == []

    # Tab goes from the learner's link to the answer, then on to the score.
    page.get_by_role("link", name="All answers of this learner").focus()
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(focused(page))
        if order[-1] == "score":
            break
    assert "grading-answer" in order[0] and order[-1] == "score", order
    expect(page.get_by_label("Score (0 to 2)")).to_be_focused()

    # Alt+arrow while in the score field is left to the field: nothing is taken over.
    page.evaluate(
        "() => window.addEventListener('keydown',"
        " e => { window.__prevented = e.defaultPrevented; })"
    )
    here = page.url
    rel = "next" if page.locator('a[data-nav="next"]').count() else "prev"
    key = "Alt+ArrowRight" if rel == "next" else "Alt+ArrowLeft"
    page.keyboard.press(key)
    assert page.evaluate("() => window.__prevented") is False and page.url == here
    # Outside a field it moves to the neighbouring learner, and back.
    page.get_by_role("heading", level=1).click()
    with page.expect_navigation():
        page.keyboard.press(key)
    assert page.url != here
    page.goto(here)

    # Ctrl+Enter in the form saves, moves on, and says so (to screen readers too).
    page.get_by_label("Score (0 to 2)").fill("1.5")
    page.get_by_label("Comment for the learner").fill("Clear.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    saved = page.locator(".flash-saved")
    expect(saved).to_have_text("Saved the grade of Linh Learner.")
    expect(saved).to_have_attribute("role", "status")
    expect(page.locator("[data-grading-announcer]")).to_have_text(
        "Saved the grade of Linh Learner."
    )
    assert dialogs == []
    page.close()


def test_extension_learner_is_typed_not_chosen_from_the_cohort(
    make_run: Server, browser: Browser
) -> None:
    page = browser.new_page()
    sign_in(page, make_run, "instructor@example.org", PASSWORD)
    page.goto(
        f"{make_run.base_url}/teach/courses/{COURSE}/assignments/vital-signs-arrays/cohorts/"
        f"{AUTUMN}/deadlines"
    )
    field = page.get_by_label("Learner", exact=True)
    expect(field).to_have_attribute("list", "extension-learner-options")
    assert page.locator("form.deadlines-extension select").count() == 0
    options = page.locator("#extension-learner-options option")
    assert options.count() > 100  # the whole cohort as suggestions, not as a dropdown
    expect(
        page.locator('#extension-learner-options option[value="learner@example.org"]')
    ).to_have_text("Linh Learner")

    field.focus()
    page.keyboard.type("inh Lea")
    page.get_by_label(re.compile("^New due date")).fill("2031-01-15T12:00")
    page.get_by_label("Reason", exact=True).fill("Hospital stay")
    page.get_by_role("button", name="Grant extension").click()
    expect(page.get_by_text("Extension granted to Linh Learner.")).to_be_visible()
    expect(page.get_by_role("cell", name="Hospital stay")).to_be_visible()

    # Someone outside the cohort is not found, and the field says why.
    page.get_by_label("Learner", exact=True).fill("coordinator@example.org")
    page.get_by_label(re.compile("^New due date")).fill("2031-01-15T12:00")
    page.get_by_role("button", name="Grant extension").click()
    expect(page.locator("#extension-learner-error")).to_contain_text(
        "No learner of Autumn matches “coordinator@example.org”"
    )
    expect(page.get_by_label("Learner", exact=True)).to_have_attribute("aria-invalid", "true")
    page.close()


def posts_to(page: Page, path: str) -> list[str]:
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.url) if r.method == "POST" and path in r.url else None
    )
    return sent


def test_releasing_feedback_needs_confirmation_without_js(
    make_run: Server, browser: Browser
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, make_run, "instructor@example.org", PASSWORD)
    deadlines = (
        f"{make_run.base_url}/teach/courses/{COURSE}/assignments/traffic-linear-algebra/cohorts/"
        "national-ai-engineers-pilot/deadlines"
    )
    page.goto(deadlines)
    label = page.locator('label[for="feedback-confirm"]').inner_text()
    learners = re.fullmatch(r"Yes, release the feedback to the (\d+) learners of Pilot", label)
    assert learners is not None, label
    # Unticked, the browser itself refuses the button (no script is running).
    sent = posts_to(page, "/feedback")
    page.get_by_role("button", name="Release feedback").click()
    assert sent == [] and page.url == deadlines
    page.get_by_label(label).check()
    page.get_by_role("button", name="Release feedback").click()
    expect(page.get_by_text(f"Feedback released to {learners[1]} learners.")).to_be_visible()
    page.get_by_role("button", name="Withdraw feedback").click()  # the demo as it was
    expect(page.get_by_text("Feedback withdrawn.")).to_be_visible()
    context.close()


def test_issuing_certificates_needs_confirmation_then_one_is_revoked_without_js(
    make_run: Server, browser: Browser
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, make_run, "coordinator@example.org", PASSWORD)
    cohort_page = f"{make_run.base_url}/coordinate/cohorts/{SPRING}"
    page.goto(cohort_page)
    label = page.locator(".cert-issue-confirm label").inner_text()
    waiting = re.fullmatch(
        r"Yes, issue certificates to the (\d+) completed learners of Spring", label
    )
    assert waiting is not None, label
    issue = page.get_by_role(
        "button", name=f"Issue certificates to {waiting[1]} completed learners"
    )
    sent = posts_to(page, "/issue")
    issue.click()
    assert sent == [] and page.url == cohort_page
    page.get_by_label(label).check()
    issue.click()
    expect(page.get_by_text(f"{waiting[1]} certificates issued.")).to_be_visible()

    # Revoke one: a reason is required, and the public page then says it is revoked.
    page.get_by_role("link", name="Issued certificates (revoke one)").click()
    row = page.locator("table.cert-table tbody tr").first
    code = row.locator("code").inner_text()
    row.get_by_role("link", name=re.compile("^Revoke")).click()
    page.get_by_role("button", name="Revoke certificate").click()
    expect(page.get_by_text("Give the reason for revoking the certificate.")).to_be_visible()
    page.get_by_label("Reason for revoking").fill("Issued to the wrong person.")
    page.get_by_role("button", name="Revoke certificate").click()
    expect(page.get_by_text(re.compile(f"Certificate {code} of .* revoked."))).to_be_visible()
    page.goto(f"{make_run.base_url}/verify/{code}")
    expect(page.locator(".cert-verdict")).to_contain_text("Revoked.")
    context.close()

"""The learner's side of grading, through the pages: the assignment page with its dates, late
rule and upload form; submitting (errors, retries, too large); instant feedback; the submission
page, its status poll and the released feedback, each for its owner only; and no learner-made
markup ever running in a page."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from lms.extensions import db
from lms.models import GradingJob, JobKind, Submission, utcnow
from lms.services import deadlines, grading
from tests import factories, grading_world
from tests.conftest import CSRF_RE, Auth
from tests.grading_world import NOTEBOOK, RIGHT, WRONG, World

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SUBMIT_KEY_RE = re.compile(r'name="submit_key" type="hidden" value="([^"]+)"')
SUBMISSION_URL_RE = re.compile(r"/learn/submissions/(\d+)$")


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Settings for one test: `@pytest.mark.parametrize("config_overrides", [{...}])`."""
    return {}


@pytest.fixture
def app_config(app_config: dict[str, Any], config_overrides: dict[str, Any]) -> dict[str, Any]:
    app_config.update(config_overrides)
    return app_config


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


OWN_SCRIPT = re.compile(r'<script src="/static/[a-z-]+\.js" defer></script>')


def page_url(world: World) -> str:
    a = world.assignment
    return f"/learn/cohorts/{world.cohort.slug}/courses/{a.course.slug}/{a.slug}/"


def form_tokens(client: FlaskClient, world: World) -> tuple[str, str]:
    """(CSRF token, submit key) from the upload form, as a browser would send them."""
    html = client.get(page_url(world)).get_data(as_text=True)
    csrf, key = CSRF_RE.search(html), SUBMIT_KEY_RE.search(html)
    assert csrf and key, "no upload form on the assignment page"
    return csrf.group(1) or csrf.group(2), key.group(1)


def upload(
    client: FlaskClient,
    world: World,
    files: list[tuple[bytes, str]],
    key: str | None = None,
) -> TestResponse:
    """Send the upload form with these (bytes, file name) through a real multipart POST."""
    csrf, fresh_key = form_tokens(client, world)
    data = {
        "notebook": [(io.BytesIO(content), name) for content, name in files],
        "submit_key": key or fresh_key,
        "csrf_token": csrf,
    }
    return client.post(page_url(world), data=data, content_type="multipart/form-data")


def submitted_id(response: TestResponse) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    match = SUBMISSION_URL_RE.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def nothing_stored(app: Flask) -> bool:
    no_rows = db.session.scalar(sa.select(sa.func.count(Submission.id))) == 0
    no_jobs = db.session.scalar(sa.select(sa.func.count(GradingJob.id))) == 0
    blob_dir = Path(app.config["DATA_DIR"]) / "blobs"
    return no_rows and no_jobs and (not blob_dir.exists() or not any(blob_dir.rglob("*")))


def utc(moment: Any) -> str:
    return factories.shown_moment(moment)


def answer_bytes(world: World, code: str = RIGHT) -> bytes:
    return grading_world.answer(world.assignment, code).data


# --- The assignment page ---------------------------------------------------------------


def test_assignment_page_shows_dates_extension_and_late_rule_then_the_penalty(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    now = utcnow()
    extended, late = world.learners
    world.scheduled.opens_at = now - timedelta(days=10)
    due = now + timedelta(days=2)
    cutoff = due + timedelta(days=5)
    deadlines.set_policy(
        world.scheduled, due_at=due, penalty_per_day=10, penalty_cap=30, cutoff_at=cutoff
    )
    deadlines.grant_extension(world.scheduled, extended, due + timedelta(days=3), world.instructor)

    auth.login(extended.email)
    course_page = client.get(
        f"/learn/cohorts/{world.cohort.slug}/courses/{world.assignment.course.slug}"
    ).get_data(as_text=True)
    assert f'href="{page_url(world)}"' in course_page
    # The course's list shows the learner's own due date too, not the cohort's.
    assert f"{utc(due + timedelta(days=3))} (your extension)" in course_page
    assert utc(due) not in course_page
    page = client.get(page_url(world))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Assignment double-it" in html and "pass: 2" in html
    assert utc(world.scheduled.opens_at) in html
    assert f"{utc(due + timedelta(days=3))} (your extension)" in html
    assert f"The cohort's due date is {utc(due)}." in html
    assert f"10% off per day late, at most 30%; no credit after {utc(cutoff)}." in html
    assert "a submission now loses" not in html
    assert 'href="/learn/cohorts/' in html and f"{world.assignment.slug}.zip" in html
    assert "You have not submitted anything yet." in html
    assert "10 checks left this hour" in html
    auth.logout()

    # Due a day and an hour ago: two started days late, 20 % off.
    deadlines.set_policy(
        world.scheduled,
        due_at=now - timedelta(days=1, hours=1),
        penalty_per_day=10,
        penalty_cap=30,
        cutoff_at=None,
    )
    auth.login(late.email)
    course_page = client.get(
        f"/learn/cohorts/{world.cohort.slug}/courses/{world.assignment.course.slug}"
    ).get_data(as_text=True)
    assert "(your extension)" not in course_page
    assert utc(now - timedelta(days=1, hours=1)) in course_page
    html = client.get(page_url(world)).get_data(as_text=True)
    assert "(your extension)" not in html
    assert "10% off per day late, at most 30%." in html
    assert (
        "The due date has passed (1 day 1 hour ago): a submission now loses 20% of its score."
        in (html)
    )
    submission_id = submitted_id(upload(client, world, [(answer_bytes(world), NOTEBOOK)]))
    html = client.get(page_url(world)).get_data(as_text=True)
    assert re.search(
        rf'href="/learn/submissions/{submission_id}">Attempt 1</a></th>\s*'
        r'<td class="lms-when">[^<]+</td>\s*'
        r'<td>1 day 1 hour</td>\s*<td class="num">20%</td>',
        html,
    ), html
    detail = client.get(f"/learn/submissions/{submission_id}").get_data(as_text=True)
    assert "1 day 1 hour" in detail and "has not released the feedback yet" in detail


def test_a_learner_outside_the_cohort_or_a_missing_assignment_gets_404(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.learner(
        factories.cohort(factories.program("Other", 10), "Else"),
        "outsider@test.org",
    )
    auth.login("outsider@test.org")
    assert client.get(page_url(world)).status_code == 404
    auth.logout()
    auth.login(world.learners[0].email)
    assert client.get(page_url(world).replace("double-it", "nope")).status_code == 404


# --- Submitting --------------------------------------------------------------------------


def test_each_upload_error_gives_400_with_its_message_and_stores_nothing(
    world: World, app: Flask, client: FlaskClient, auth: Auth
) -> None:
    good = answer_bytes(world)
    no_nbgrader = json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}
    ).encode()
    cases: list[tuple[list[tuple[bytes, str]], str]] = [
        ([(b'{"cells": [}', NOTEBOOK)], "double-it.ipynb is not a valid notebook: broken JSON"),
        # A second download saved as "(1)": the message names the file the learner chose.
        (
            [(b'{"cells": [}', "double-it (1).ipynb")],
            "double-it (1).ipynb is not a valid notebook: broken JSON",
        ),
        (
            [(good, NOTEBOOK), (good, "other.ipynb")],
            "other.ipynb is not a notebook of this assignment (expected: double-it.ipynb).",
        ),
        ([(b"my notes", "notes.txt")], "notes.txt is not a notebook: upload .ipynb files."),
        ([(no_nbgrader, NOTEBOOK)], "double-it.ipynb has no nbgrader cells"),
        ([], "Choose the notebook file to upload."),
    ]
    auth.login(world.learners[0].email)
    for files, message in cases:
        response = upload(client, world, files)
        html = response.get_data(as_text=True)
        assert response.status_code == 400, message
        # Said next to the file field, not at the top of the page.
        error = re.search(r'<p class="error" id="notebook-error">([^<]*)</p>', html)
        assert error and message in error.group(1), (message, html)
        assert 'enctype="multipart/form-data"' in html  # the form is there to try again
        assert nothing_stored(app), message


@pytest.mark.parametrize("config_overrides", [{"MAX_UPLOAD_MB": 1}])
def test_a_too_large_upload_gets_413(
    world: World, app: Flask, client: FlaskClient, auth: Auth
) -> None:
    auth.login(world.learners[0].email)
    csrf, key = form_tokens(client, world)
    # Encoded here, in memory: the test client would spool a body this large to a temporary
    # file that nobody closes once the app refuses it unread.
    boundary, body = encode_multipart(
        {
            "notebook": FileStorage(io.BytesIO(b" " * (1024 * 1024 + 1)), NOTEBOOK),
            "submit_key": key,
            "csrf_token": csrf,
        }
    )
    response = client.post(
        page_url(world), data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "The upload is too large (the limit is 1 MB)." in html
    assert f'<a href="{page_url(world)}">Back to the form</a>' in html
    assert nothing_stored(app)


def test_the_same_submit_key_twice_makes_one_submission(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    auth.login(world.learners[0].email)
    _, key = form_tokens(client, world)
    response = upload(client, world, [(answer_bytes(world), NOTEBOOK)], key=key)
    first = submitted_id(response)
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Attempt 1 submitted." in html and "Your notebook is being checked" in html
    # The same form sent again (a double click, a resent form), even with another file.
    again = upload(client, world, [(answer_bytes(world, WRONG), NOTEBOOK)], key=key)
    assert submitted_id(again) == first
    assert db.session.scalar(sa.select(sa.func.count(Submission.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(GradingJob.id))) == 1
    html = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "Already submitted as attempt 1: nothing new was stored." in html
    # A new page shows a new key: a changed notebook is a second attempt.
    second = submitted_id(upload(client, world, [(answer_bytes(world, WRONG), NOTEBOOK)]))
    assert second != first
    page = client.get(page_url(world)).get_data(as_text=True)
    assert "Attempt 2" in page and "waiting for a grader" in page


@pytest.mark.parametrize("config_overrides", [{"INSTANT_FEEDBACK_PER_HOUR": 1}])
def test_the_hourly_instant_feedback_allowance_is_enforced(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    auth.login(world.learners[0].email)
    assert "1 check left this hour" in client.get(page_url(world)).get_data(as_text=True)
    first = submitted_id(upload(client, world, [(answer_bytes(world, WRONG), NOTEBOOK)]))
    page = client.get(page_url(world)).get_data(as_text=True)
    assert "You have used this hour's instant feedback checks (1 per hour)" in page
    second = submitted_id(upload(client, world, [(answer_bytes(world), NOTEBOOK)]))
    jobs = db.session.execute(sa.select(GradingJob.submission_id, GradingJob.kind)).all()
    assert [tuple(j) for j in jobs] == [(first, JobKind.INSTANT)]
    html = client.get(f"/learn/submissions/{second}").get_data(as_text=True)
    assert "this attempt is graded later" in html  # the flash
    assert "No instant feedback for this attempt" in html
    assert "submitted, not graded yet" in html


def test_an_assignment_without_instant_feedback_says_so(
    courses_dir: Path, app: Flask, client: FlaskClient, auth: Auth
) -> None:
    world = grading_world.build(courses_dir, instant_feedback=False)
    auth.login(world.learners[0].email)
    assert "Instant feedback is not available for this assignment" in client.get(
        page_url(world)
    ).get_data(as_text=True)
    submission_id = submitted_id(upload(client, world, [(answer_bytes(world), NOTEBOOK)]))
    assert db.session.scalar(sa.select(sa.func.count(GradingJob.id))) == 0
    html = client.get(f"/learn/submissions/{submission_id}").get_data(as_text=True)
    assert "Instant feedback is not available for this assignment" in html
    assert "submission.js" not in html


# --- Instant feedback, release and who may see it ----------------------------------------


@sqlite_only
def test_instant_feedback_then_released_feedback_for_the_owner_only(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    owner, other = world.learners
    auth.login(owner.email)
    submission_id = submitted_id(upload(client, world, [(answer_bytes(world), NOTEBOOK)]))
    url = f"/learn/submissions/{submission_id}"
    feedback_url = f"{url}/feedback/double-it.html"
    html = client.get(url).get_data(as_text=True)
    assert "Your notebook is being checked" in html
    assert 'aria-live="polite"' in html and 'data-state="queued"' in html
    assert "/static/submission.js" in html and f'href="{url}">Refresh</a>' in html
    status = client.get(f"{url}/status.json")
    assert status.json == {"state": "queued", "label": "waiting for a grader", "waiting": True}

    assert grading_world.grade_queued() == 1
    assert client.get(f"{url}/status.json").json == {
        "state": "done",
        "label": "graded",
        "waiting": False,
    }
    html = client.get(url).get_data(as_text=True)
    assert "submission.js" not in html
    assert re.search(
        r"<code>test-double</code></th>\s*<td><span[^>]*>passed</span></td>\s*"
        r'<td class="num">2 / 2</td>',
        html,
    ), html
    assert "Final score" not in html and "why-linear" not in html  # not released yet
    assert client.get(feedback_url).status_code == 404

    job = grading.latest_result(db.session.get_one(Submission, submission_id))
    assert job is not None
    cells = grading.graded_cells(world.assignment.id)
    grading.grade_by_hand(
        job.submission, cells[("double-it", "why-linear")], world.instructor, 0.5, "Say why."
    )
    grading.release_feedback(world.scheduled)
    html = client.get(url).get_data(as_text=True)
    assert re.search(r'<code>why-linear</code></th>\s*<td class="lms-kind">written answer', html)
    assert "Say why." in html
    assert re.search(r"Final score</dt>\s*<dd><strong>2.5 / 3</strong>", html), html
    assert f'href="{feedback_url}"' in html
    page = client.get(page_url(world)).get_data(as_text=True)
    assert re.search(r'<td class="num">\s*2.5 / 3', page), page
    feedback = client.get(feedback_url)
    assert feedback.status_code == 200 and feedback.mimetype == "text/html"
    assert feedback.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    )
    assert feedback.headers["X-Content-Type-Options"] == "nosniff"
    assert "test-double: 2 / 2" in feedback.get_data(as_text=True)
    assert client.get(f"{url}/feedback/nope.html").status_code == 404

    auth.logout()
    auth.login(other.email)
    for path in (url, f"{url}/status.json", feedback_url, "/learn/submissions/999999"):
        assert client.get(path).status_code == 404, path


@sqlite_only
def test_learner_markup_never_runs_in_the_pages_or_the_feedback(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    nb = grading_world.release_notebook(world.assignment)
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == "double":
            cell["source"] = (
                'print("<script>alert(1)</script>")\n'
                "from IPython.display import HTML, display\n"
                "display(HTML('<script>alert(3)</script><b onclick=\"alert(4)\">bold</b>'))\n"
                + RIGHT
            )
        elif grade_id == "why-linear":
            cell["source"] = "<img src=x onerror=alert(1)> because it is"
    auth.login(world.learners[0].email)
    refused = upload(client, world, [(b"x", "<img src=x onerror=alert(2)>.txt")])
    assert refused.status_code == 400
    assert "&lt;img src=x onerror=alert(2)&gt;.txt is not a notebook" in refused.get_data(
        as_text=True
    )
    submission_id = submitted_id(upload(client, world, [(json.dumps(nb).encode(), NOTEBOOK)]))
    assert grading_world.grade_queued() == 1
    cells = grading.graded_cells(world.assignment.id)
    submission = db.session.get_one(Submission, submission_id)
    grading.grade_by_hand(
        submission, cells[("double-it", "why-linear")], world.instructor, 1, "<script>x()</script>"
    )
    grading.release_feedback(world.scheduled)

    url = f"/learn/submissions/{submission_id}"
    pages = {
        "submission": client.get(url).get_data(as_text=True),
        "assignment": client.get(page_url(world)).get_data(as_text=True),
    }
    assert "&lt;script&gt;x()&lt;/script&gt;" in pages["submission"]  # the comment, as text
    feedback = client.get(f"{url}/feedback/double-it.html").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in feedback  # the printed text, as text
    assert "because it is" in feedback and "bold" in feedback
    pages["feedback"] = feedback
    for name, html in pages.items():
        # The pages' own scripts (static files) aside, no script at all.
        lowered = OWN_SCRIPT.sub("", html.lower())
        assert "<script" not in lowered, name
        assert "<img src=x onerror" not in lowered and "<b onclick" not in lowered, name
        assert not re.search(r"<[^>]+\son\w+\s*=", lowered), name
        assert "javascript:" not in lowered, name

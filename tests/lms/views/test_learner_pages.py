"""What a learner sees day to day: where they stand per assignment (My learning and the course
page), lateness that follows a later extension, why a visible test failed, their own attempt's
files, and dates in their own time zone and language."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.models import LabKernel, Submission, utcnow
from lms.services import deadlines, grading, submissions, users
from tests import course_builder, factories, grading_world
from tests.conftest import Auth, csrf_token
from tests.grading_world import RIGHT, WRONG, World

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


def course_url(world: World) -> str:
    return f"/learn/cohorts/{world.cohort.slug}/courses/{world.assignment.course.slug}"


def submit(world: World, learner_index: int, code: str) -> Submission:
    learner = world.learners[learner_index]
    outcome = submissions.submit(
        learner, world.assignment, world.cohort, [grading_world.answer(world.assignment, code)]
    )
    grading.request_instant_feedback(outcome.submission)  # as the upload page does
    return outcome.submission


def standing_row(html: str) -> str:
    match = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    assert match, html
    return re.sub(r"\s+", " ", match.group(1))


# --- Where a learner stands ----------------------------------------------------------------


@sqlite_only
def test_course_page_and_my_learning_follow_the_learner_from_start_to_passed(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    learner = world.learners[0]
    auth.login(learner.email)
    row = standing_row(client.get(course_url(world)).get_data(as_text=True))
    assert "not started" in row and ">Start<" in row
    home = client.get("/learn/").get_data(as_text=True)
    assert "0 of 1 assignment passed" in home
    assert "Next due: Assignment double-it" in home

    # A kernel opened for the assignment in the lab: work in progress.
    db.session.add(LabKernel(user_id=learner.id, assignment_id=world.assignment.id))
    db.session.commit()
    row = standing_row(client.get(course_url(world)).get_data(as_text=True))
    assert "in progress in the lab" in row and ">Continue<" in row

    submission = submit(world, 0, WRONG)
    row = standing_row(client.get(course_url(world)).get_data(as_text=True))
    assert "submitted" in row and "View attempt 1" in row
    assert f"/learn/submissions/{submission.id}" in row
    assert "Next due" not in client.get("/learn/").get_data(as_text=True)

    assert grading_world.grade_queued() == 1
    # Graded but not released: the learner sees no score yet.
    row = standing_row(client.get(course_url(world)).get_data(as_text=True))
    assert "submitted" in row and re.search(r'<td class="num">—</td>', row), row
    grading.release_feedback(world.scheduled)
    row = standing_row(client.get(course_url(world)).get_data(as_text=True))
    assert "graded, not passed" in row and "See feedback" in row
    assert re.search(r'<td class="num">0 / 3</td>', row), row

    submit(world, 0, RIGHT)
    assert grading_world.grade_queued() == 1
    row = standing_row(client.get(course_url(world)).get_data(as_text=True))
    # 2 of 3 (the written answer waits for a person) reaches the pass mark of 2.
    assert "passed" in row and re.search(r'<td class="num">2 / 3</td>', row), row
    assert "1 of 1 assignment passed" in client.get("/learn/").get_data(as_text=True)


# --- Lateness --------------------------------------------------------------------------------


@sqlite_only
def test_an_extension_granted_after_submitting_changes_late_by_for_every_role(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    now = utcnow()
    learner = world.learners[0]
    world.scheduled.opens_at = now - timedelta(days=40)
    deadlines.set_policy(
        world.scheduled,
        due_at=now - timedelta(days=25, hours=15, minutes=5),
        penalty_per_day=10,
        penalty_cap=50,
        cutoff_at=None,
    )
    submission = submit(world, 0, RIGHT)
    auth.login(learner.email)
    page = client.get(f"/learn/submissions/{submission.id}").get_data(as_text=True)
    assert "25 days 15 hours" in page

    deadlines.grant_extension(world.scheduled, learner, now + timedelta(days=1), world.instructor)
    page = client.get(f"/learn/submissions/{submission.id}").get_data(as_text=True)
    assert re.search(r"Late by</dt><dd>on time</dd>", page), page
    assert "25 days" not in page and "(your extension)" in page
    auth.logout()

    auth.login(world.instructor.email)
    a = world.assignment
    listing = client.get(
        f"/teach/courses/{a.course.slug}/assignments/{a.slug}/submissions"
    ).get_data(as_text=True)
    assert "25 days" not in listing and "on time" in listing
    detail = client.get(f"/teach/submissions/{submission.id}").get_data(as_text=True)
    assert "25 days" not in detail and "on time" in detail


# --- Instant feedback says why ---------------------------------------------------------------


@sqlite_only
def test_instant_feedback_shows_why_a_visible_test_failed(
    courses_dir: Path, app: Flask, client: FlaskClient, auth: Auth, graders: None
) -> None:
    visible = "assert double(2) == 4, 'double(2) should be 4'\n"
    course_builder.write_assignment(
        courses_dir / "doubling-101" / "double-it", course_builder.notebook(test=visible)
    )
    world = grading_world.build(courses_dir)
    submission = submit(world, 0, WRONG)
    assert grading_world.grade_queued() == 1
    auth.login(world.learners[0].email)
    html = client.get(f"/learn/submissions/{submission.id}").get_data(as_text=True)
    assert "Why: AssertionError: double(2) should be 4" in html
    assert re.search(r"<pre>[^<]*AssertionError[^<]*</pre>", html), html
    assert "\x1b[" not in html  # no terminal colours


@sqlite_only
def test_instant_feedback_never_shows_a_test_with_hidden_parts(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    submission = submit(world, 0, WRONG)
    assert grading_world.grade_queued() == 1
    auth.login(world.learners[0].email)
    html = client.get(f"/learn/submissions/{submission.id}").get_data(as_text=True)
    assert ">failed<" in html
    assert "Why:" not in html and "secret-hidden-test" not in html and "Traceback" not in html
    job = grading.latest_result(submission)
    assert job is not None and job.result is not None
    assert "secret-hidden-test" not in json.dumps(job.result)


# --- Downloading one's own attempt ---------------------------------------------------------------


@sqlite_only
def test_a_learner_downloads_their_own_submitted_notebook_only(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    mine = submit(world, 0, RIGHT)
    theirs = submit(world, 1, WRONG)
    auth.login(world.learners[0].email)
    page = client.get(f"/learn/submissions/{mine.id}").get_data(as_text=True)
    url = f"/learn/submissions/{mine.id}/files/double-it.ipynb"
    assert f'href="{url}"' in page
    response = client.get(url)
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert json.loads(response.data) == json.loads(
        grading_world.answer(world.assignment, RIGHT).data
    )
    assert client.get(f"/learn/submissions/{theirs.id}/files/double-it.ipynb").status_code == 404
    assert client.get(f"/learn/submissions/{mine.id}/files/other.ipynb").status_code == 404


# --- Time zones and formats ----------------------------------------------------------------------


@sqlite_only
def test_dates_follow_the_browsers_zone_the_account_setting_and_the_language(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    due = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    world.scheduled.opens_at = due - timedelta(days=14)
    deadlines.set_policy(
        world.scheduled, due_at=due, penalty_per_day=0, penalty_cap=100, cutoff_at=None
    )
    learner = world.learners[0]
    auth.login(learner.email)
    html = client.get(course_url(world)).get_data(as_text=True)
    assert "Mar 1, 2026, 11:59\u202fPM UTC" in html  # no zone known: UTC

    client.set_cookie("tz", "Asia/Ho_Chi_Minh")
    html = client.get(course_url(world)).get_data(as_text=True)
    assert "Mar 2, 2026, 6:59\u202fAM +07" in html  # the browser's zone
    html = client.get(course_url(world), headers={"Accept-Language": "vi"}).get_data(as_text=True)
    assert "06:59 2 thg 3, 2026 +07" in html  # and the reader's language's format

    client.set_cookie("tz", "Not/AZone")
    assert "11:59\u202fPM UTC" in client.get(course_url(world)).get_data(as_text=True)

    # The account's own choice wins over the browser's.
    client.set_cookie("tz", "Asia/Ho_Chi_Minh")
    page = client.get("/account").get_data(as_text=True)
    assert "Your browser&#39;s (Asia/Ho_Chi_Minh)" in page
    response = client.post(
        "/account",
        data={
            "tz-zone": "Asia/Seoul",
            "tz-submit": "1",
            "csrf_token": csrf_token(client, "/account"),
        },
    )
    assert response.status_code == 302
    html = client.get(course_url(world)).get_data(as_text=True)
    assert "Mar 2, 2026, 8:59\u202fAM KST" in html
    refused = client.post(
        "/account",
        data={
            "tz-zone": "Mars/Olympus",
            "tz-submit": "1",
            "csrf_token": csrf_token(client, "/account"),
        },
    )
    assert refused.status_code == 400
    db.session.expire_all()
    found = users.find_by_email(learner.email)
    assert found is not None and found.time_zone == "Asia/Seoul"


def test_gradebook_numbers_follow_the_language(app: Flask) -> None:
    from flask_babel import force_locale

    from lms import formatting

    with app.test_request_context(), force_locale("vi"):
        assert formatting.decimal(9.5) == "9,5"
        assert formatting.decimal(12345.25) == "12.345,25"
    with app.test_request_context(), force_locale("en"):
        assert formatting.decimal(9.5) == "9.5"
        assert formatting.late_by(3600 * 26) == "1 day 2 hours"
        assert formatting.duration(90) == "1 minute"
        assert factories.shown_moment(datetime(2026, 5, 1, 9, 15, tzinfo=UTC)) == formatting.when(
            datetime(2026, 5, 1, 9, 15, tzinfo=UTC)
        )

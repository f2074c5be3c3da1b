"""The instructor's grading pages through the test client: submissions, batches and their
progress, grading by hand question by question and learner by learner, the audit trail,
who may see what, and learner content that never runs in the instructor's browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from lms.extensions import db
from lms.models import (
    BatchState,
    Grade,
    GradedCell,
    GradeEvent,
    GradingBatch,
    GradingJob,
    Submission,
    User,
)
from lms.services import grading, submissions
from lms.services.submissions import Upload
from tests import factories, grading_world
from tests.conftest import Auth, csrf_token
from tests.grading_world import NOTEBOOK, RIGHT, WRONG, World

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ASSIGNMENT = "/teach/courses/doubling-101/assignments/double-it"
XSS = "<script>alert(1)</script>"
ESCAPED_XSS = "&lt;script&gt;alert(1)&lt;/script&gt;"
PROGRESS_KEYS = {
    "total",
    "done",
    "failed",
    "cancelled",
    "running",
    "queued",
    "state",
    "rate_per_minute",
    "seconds_left",
    "waiting_for_gpu",
}


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


def upload(
    world: World, code: str = RIGHT, why: str | None = None, test_output: str | None = None
) -> Upload:
    """The release notebook with the code answer, and optionally the written answer
    (why-linear) and an output saved under the test cell, as a learner's Jupyter saves it."""
    nb = json.loads(grading_world.answer(world.assignment, code).data)
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == "why-linear" and why is not None:
            cell["source"] = why
        if grade_id == "test-double" and test_output is not None:
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": test_output}]
    return Upload(NOTEBOOK, json.dumps(nb).encode())


def submit(world: World, learner: User, **answer: Any) -> Submission:
    outcome = submissions.submit(learner, world.assignment, world.cohort, [upload(world, **answer)])
    return outcome.submission


def graded_cell(world: World, grade_id: str) -> GradedCell:
    return grading.graded_cells(world.assignment.id)[("double-it", grade_id)]


def event_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(GradeEvent.id))) or 0


def login(auth: Auth, world: World) -> None:
    assert auth.login(world.instructor.email).status_code == 302


def post(client: FlaskClient, page: str, action: str, data: dict[str, Any]) -> TestResponse:
    """POST to action with the CSRF token of the form's page, as a browser would."""
    return client.post(action, data={**data, "csrf_token": csrf_token(client, page)})


def question(n: int = 0) -> str:
    return f"{ASSIGNMENT}/grade/why-linear?n={n}"


def test_submissions_page_lists_each_learners_latest_attempt(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    first, second = world.learners
    old = submit(world, first, code=WRONG)
    latest = submit(world, first, code=RIGHT)
    other = submit(world, second, code=WRONG)
    login(auth, world)

    page = client.get(f"{ASSIGNMENT}/submissions")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'name="submissions" value="{latest.id}"' in html
    assert f'name="submissions" value="{other.id}"' in html
    assert f'name="submissions" value="{old.id}"' not in html
    assert html.count("learner0@test.org") == 1 and "learner1@test.org" in html
    assert "Regrade selected" in html and "Autograde all latest submissions" in html

    chosen = client.get(f"{ASSIGNMENT}/submissions?cohort={world.cohort.slug}")
    assert chosen.status_code == 200
    assert f'name="submissions" value="{latest.id}"' in chosen.get_data(as_text=True)
    assert client.get(f"{ASSIGNMENT}/submissions?cohort=nobody").status_code == 404
    # The assignment page links to the grading pages.
    assignment_page = client.get(ASSIGNMENT).get_data(as_text=True)
    assert f"{ASSIGNMENT}/submissions" in assignment_page
    assert f"{ASSIGNMENT}/grade" in assignment_page
    assert f"{ASSIGNMENT}/insight" in assignment_page
    assert f"{ASSIGNMENT}/cohorts/{world.cohort.slug}/deadlines" in assignment_page


def test_autograde_all_starts_a_batch_and_shows_its_progress(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    for learner in world.learners:
        submit(world, learner)
    login(auth, world)

    response = post(
        client, f"{ASSIGNMENT}/submissions", f"{ASSIGNMENT}/batches", {"cohort": world.cohort.slug}
    )
    batch = db.session.scalar(sa.select(GradingBatch))
    assert batch is not None and batch.total == 2 and batch.cohort_id == world.cohort.id
    assert response.status_code == 302
    assert response.location.endswith(f"/teach/batches/{batch.id}")

    page = client.get(f"/teach/batches/{batch.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<progress" in html and 'aria-live="polite"' in html
    assert '<script src="/static/batch.js" defer></script>' in html
    assert f'data-progress-url="/teach/batches/{batch.id}/progress.json"' in html
    assert "Cancel batch" in html and "Refresh" in html

    progress = client.get(f"/teach/batches/{batch.id}/progress.json")
    assert progress.status_code == 200 and progress.mimetype == "application/json"
    assert progress.headers["Cache-Control"] == "no-store"
    figures = progress.json
    assert figures is not None and set(figures) == PROGRESS_KEYS
    assert figures["waiting_for_gpu"] is False  # a CPU assignment
    assert figures["total"] == 2 and figures["queued"] == 2 and figures["state"] == "running"


def test_regrade_selected_makes_a_batch_of_the_chosen_submissions(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    chosen = submit(world, world.learners[0])
    submit(world, world.learners[1])
    login(auth, world)
    page = f"{ASSIGNMENT}/submissions"

    nothing = post(client, page, f"{ASSIGNMENT}/regrade", {})
    assert nothing.status_code == 302 and db.session.scalar(sa.select(GradingBatch)) is None
    assert "Choose at least one submission." in client.get(nothing.location).get_data(as_text=True)

    response = post(client, page, f"{ASSIGNMENT}/regrade", {"submissions": [str(chosen.id)]})
    batch = db.session.scalar(sa.select(GradingBatch))
    assert batch is not None and batch.scope == "selected" and batch.total == 1
    assert response.location.endswith(f"/teach/batches/{batch.id}")
    assert db.session.scalars(sa.select(GradingJob.submission_id)).all() == [chosen.id]


def test_cancelling_a_batch_stops_its_waiting_jobs(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    for learner in world.learners:
        submit(world, learner)
    batch = grading.create_batch(world.assignment, world.instructor)
    login(auth, world)
    page = f"/teach/batches/{batch.id}"

    response = post(client, page, f"{page}/cancel", {})
    assert response.status_code == 302 and response.location.endswith(page)
    db.session.expire_all()
    assert batch.state == BatchState.CANCELLED
    figures = client.get(f"{page}/progress.json").json
    assert figures is not None
    assert figures["state"] == "cancelled" and figures["cancelled"] == 2 and figures["queued"] == 0
    html = client.get(page).get_data(as_text=True)
    assert "Batch cancelled: 2 waiting submissions will not be graded." in html
    assert "Cancel batch" not in html
    again = post(client, page, f"{page}/cancel", {})
    assert "already ended" in client.get(again.location).get_data(as_text=True)


@sqlite_only
def test_a_batch_reaches_done_once_graded(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    for learner in world.learners:
        submit(world, learner)
    login(auth, world)
    response = post(client, f"{ASSIGNMENT}/submissions", f"{ASSIGNMENT}/batches", {})
    assert grading_world.grade_queued() == 2

    figures = client.get(f"{response.location}/progress.json").json
    assert figures is not None and set(figures) == PROGRESS_KEYS
    assert figures["state"] == "done" and figures["done"] == 2 and figures["total"] == 2
    assert figures["queued"] == figures["running"] == figures["failed"] == 0
    assert figures["seconds_left"] == 0
    html = client.get(response.location).get_data(as_text=True)
    assert "finished" in html and "Cancel batch" not in html
    # The autograder's scores reach the submissions page.
    listing = client.get(f"{ASSIGNMENT}/submissions").get_data(as_text=True)
    assert listing.count("autograded") >= 2 and "2 / 3" in listing


def test_question_by_question_refuses_a_score_out_of_range(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0], why="Because it is.")
    login(auth, world)

    page = client.get(question())
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Because it is." in html and "learner0@test.org" in html
    assert '<script src="/static/grading.js" defer></script>' in html
    assert "Alt" in html and "Save and next" in html

    response = post(
        client, question(), question(), {"submission_id": answer.id, "score": "1.5", "comment": ""}
    )
    assert response.status_code == 400
    assert "A score must be between 0 and 1." in response.get_data(as_text=True)
    assert event_count() == 0 and db.session.scalar(sa.select(Grade)) is None

    nonsense = post(client, question(), question(), {"submission_id": answer.id, "score": "-1"})
    assert nonsense.status_code == 400 and event_count() == 0


def test_save_and_next_grades_and_moves_to_the_next_learner(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    first = submit(world, world.learners[0], why="Scaling commutes.")
    second = submit(world, world.learners[1], why="No idea.")
    login(auth, world)
    before = client.get(question()).get_data(as_text=True)
    assert "2 learners still without a score for this cell" in before

    response = post(
        client,
        question(),
        question(),
        {"submission_id": first.id, "score": "1", "comment": "Well argued."},
    )
    assert response.status_code == 302 and response.location.endswith(question(1))
    grade = db.session.scalar(sa.select(Grade).where(Grade.submission_id == first.id))
    assert grade is not None and grade.manual_score == 1.0 and grade.comment == "Well argued."
    assert [e.actor_id for e in grade.events] == [world.instructor.id]

    html = client.get(response.location).get_data(as_text=True)
    assert "No idea." in html and "learner1@test.org" in html
    assert "1 learner still without a score for this cell" in html
    assert 'rel="prev"' in html and 'rel="next"' not in html
    # The last answer saved: back to the list of graded cells.
    last = post(
        client, question(1), question(1), {"submission_id": second.id, "score": "0", "comment": ""}
    )
    assert last.status_code == 302 and last.location.endswith(f"{ASSIGNMENT}/grade")
    listing = client.get(last.location).get_data(as_text=True)
    assert "why-linear" in listing and "test-double" in listing


@sqlite_only
def test_an_answer_submitted_meanwhile_is_not_graded_by_position(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    first = submit(world, world.learners[0], why="One.")
    login(auth, world)
    token = csrf_token(client, question())
    newer = submit(world, world.learners[0], why="Two.")
    response = client.post(
        question(), data={"submission_id": first.id, "score": "1", "csrf_token": token}
    )
    assert response.status_code == 302 and event_count() == 0
    assert "changed meanwhile" in client.get(response.location).get_data(as_text=True)
    assert newer.id != first.id


def test_overriding_an_autograded_score_needs_a_reason(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0])
    test = graded_cell(world, "test-double")
    login(auth, world)
    page = f"/teach/submissions/{answer.id}"
    action = f"{page}/cells/{test.id}"
    field = f"cell{test.id}"

    refused = post(client, page, action, {f"{field}-score": "1", f"{field}-comment": "ok"})
    assert refused.status_code == 400
    assert "Say why you override the autograder" in refused.get_data(as_text=True)
    assert event_count() == 0

    saved = post(
        client, page, action, {f"{field}-score": "1", f"{field}-reason": "the test had a typo"}
    )
    assert saved.status_code == 302
    assert saved.location.endswith(f"{page}?saved={test.id}#cell-{test.id}")
    grade = db.session.scalar(sa.select(Grade).where(Grade.cell_id == test.id))
    assert grade is not None and grade.manual_score == 1.0
    assert grade.events[-1].source == "override"
    assert grade.events[-1].reason == "the test had a typo"
    # A written answer needs no reason; a comment alone keeps the score.
    manual = graded_cell(world, "why-linear")
    m = f"cell{manual.id}"
    ok = post(client, page, f"{page}/cells/{manual.id}", {f"{m}-score": "0.5"})
    assert ok.status_code == 302


def test_the_history_page_shows_who_changed_what(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0])
    manual = graded_cell(world, "why-linear")
    grading.grade_by_hand(answer, manual, world.instructor, 0.5, "Half right.")
    grading.grade_by_hand(answer, manual, world.instructor, 1.0, "Full marks.", "second look")
    login(auth, world)

    page = client.get(f"/teach/submissions/{answer.id}/history")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count(world.instructor.email) == 2 and world.instructor.name in html
    assert "— → 0.5" in html and "0.5 → 1" in html
    assert "Half right." in html and "Full marks." in html and "second look" in html
    assert "why-linear" in html


@sqlite_only
def test_learner_content_is_escaped_and_feedback_runs_nothing(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    answer = submit(
        world, world.learners[0], why=f"Linear {XSS}", test_output="<img src=x onerror=alert(2)>"
    )
    grading.create_batch(world.assignment, world.instructor)
    assert grading_world.grade_queued() == 1
    login(auth, world)

    for path in (question(), f"/teach/submissions/{answer.id}"):
        html = client.get(path).get_data(as_text=True)
        assert XSS not in html and ESCAPED_XSS in html, path
    learner_page = client.get(f"/teach/submissions/{answer.id}").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(2)&gt;" in learner_page
    assert "<img src=x" not in learner_page
    assert "needs grading" in learner_page and "passed" in learner_page

    feedback_link = f"/teach/submissions/{answer.id}/feedback/double-it.html"
    assert feedback_link in learner_page
    feedback = client.get(feedback_link)
    assert feedback.status_code == 200 and feedback.mimetype == "text/html"
    assert feedback.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    )
    assert feedback.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in feedback.get_data(as_text=True).lower()
    assert client.get(f"/teach/submissions/{answer.id}/feedback/other.html").status_code == 404

    history = client.get(f"/teach/submissions/{answer.id}/history").get_data(as_text=True)
    assert "autograder" in history


def test_another_courses_instructor_sees_none_of_it(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0])
    batch = grading.create_batch(world.assignment, world.instructor)
    test = graded_cell(world, "test-double")
    other = factories.instructor(factories.course(), "other@test.org")
    assert auth.login(other.email).status_code == 302
    for path in (
        f"{ASSIGNMENT}/submissions",
        f"{ASSIGNMENT}/grade",
        question(),
        f"/teach/batches/{batch.id}",
        f"/teach/batches/{batch.id}/progress.json",
        f"/teach/submissions/{answer.id}",
        f"/teach/submissions/{answer.id}/history",
        f"/teach/submissions/{answer.id}/feedback/double-it.html",
    ):
        assert client.get(path).status_code == 404, path
    token = csrf_token(client, "/teach/")
    for path, data in (
        (f"{ASSIGNMENT}/batches", {}),
        (f"{ASSIGNMENT}/regrade", {"submissions": [str(answer.id)]}),
        (f"/teach/batches/{batch.id}/cancel", {}),
        (f"/teach/submissions/{answer.id}/cells/{test.id}", {f"cell{test.id}-score": "1"}),
    ):
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 404, path
    assert db.session.scalar(sa.select(sa.func.count(GradingBatch.id))) == 1
    assert batch.state == BatchState.RUNNING and event_count() == 0

    # A learner is not an instructor at all.
    auth.logout()
    assert auth.login(world.learners[0].email).status_code == 302
    assert client.get(f"/teach/submissions/{answer.id}").status_code == 403

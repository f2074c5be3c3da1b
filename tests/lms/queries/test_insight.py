"""The instructor's deadline and insight pages through the test client: late policy,
extensions, feedback release, test pass rates, similar submissions side by side, and who may
see them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.models import Extension, Grade, Submission, User, utcnow
from lms.queries import insight
from lms.services import grading, submissions
from tests import factories, grading_world
from tests.conftest import Auth, csrf_token, post_form
from tests.grading_world import RIGHT, WRONG, World

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

COPIED = """def double(x):
    total = 0
    for step in range(2):
        total = total + x
    result = int(total)
    return result
"""

# The same answer with other names, other comments and other spacing.
RENAMED = """def double(x):
    # worked this out myself
    acc=0
    for i in range( 2 ):
        acc = acc + x   # add it

    out = int( acc )
    return out
"""


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir, learners=3)


def base_url(world: World) -> str:
    return f"/teach/courses/{world.assignment.course.slug}/assignments/{world.assignment.slug}"


def deadlines_url(world: World) -> str:
    return f"{base_url(world)}/cohorts/{world.cohort.slug}/deadlines"


def local(moment: datetime) -> str:
    """As a datetime-local input sends it (UTC on these pages)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def submit(world: World, learner: User, code: str) -> Submission:
    upload = grading_world.answer(world.assignment, code)
    return submissions.submit(learner, world.assignment, world.cohort, [upload]).submission


def policy(due: datetime, cutoff: datetime | None) -> dict[str, str]:
    return {
        "policy-due_at": local(due),
        "policy-late_penalty_per_day": "10",
        "policy-late_penalty_cap": "50",
        "policy-cutoff_at": local(cutoff) if cutoff else "",
    }


def test_late_policy_extensions_and_feedback_release(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    auth.login(world.instructor.email)
    url = deadlines_url(world)
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'type="datetime-local"' in html and "Due" in html and "Cut-off" in html
    assert "Dates and times are in your time zone, UTC." in html

    # The late policy is saved, in UTC.
    due = (utcnow() + timedelta(days=10)).replace(second=0, microsecond=0)
    response = post_form(client, url, policy(due, due + timedelta(days=2)))
    assert response.status_code == 302
    db.session.expire_all()
    scheduled = world.scheduled
    assert scheduled.due_at == due and scheduled.cutoff_at == due + timedelta(days=2)
    assert (scheduled.late_penalty_per_day, scheduled.late_penalty_cap) == (10.0, 50.0)
    assert local(due) in client.get(url).get_data(as_text=True)  # shown again in the form

    # A cut-off before the due date is refused with the reason, and nothing changes.
    response = post_form(client, url, policy(due + timedelta(days=3), due))
    assert response.status_code == 400
    assert "The cut-off cannot be before the due date." in response.get_data(as_text=True)
    db.session.expire_all()
    assert world.scheduled.due_at == due
    response = post_form(client, url, {**policy(due, None), "policy-late_penalty_cap": "120"})
    assert response.status_code == 400
    assert "A percentage between 0 and 100." in response.get_data(as_text=True)

    # An extension is granted to a learner of the cohort and listed.
    learner = world.learners[1]
    extensions_url = url.removesuffix("/deadlines") + "/extensions"
    data = {
        "extension-learner": learner.email,
        "extension-due_at": local(due + timedelta(days=5)),
        "extension-reason": "Hospital stay",
        "csrf_token": csrf_token(client, url),
    }
    response = client.post(extensions_url, data=data)
    assert response.status_code == 302
    extension = db.session.scalar(sa.select(Extension))
    assert extension is not None and extension.user_id == learner.id
    assert extension.due_at == due + timedelta(days=5)
    assert extension.granted_by_id == world.instructor.id
    html = client.get(url).get_data(as_text=True)
    assert "Hospital stay" in html and learner.email in html
    # One ending before the cohort's due date is refused.
    response = client.post(
        extensions_url, data={**data, "extension-due_at": local(due - timedelta(days=1))}
    )
    assert response.status_code == 400
    assert "An extension must end after the cohort&#39;s due date." in response.get_data(
        as_text=True
    )
    # Someone outside the cohort cannot be chosen.
    outsider = factories.user("outsider@test.org")
    response = client.post(extensions_url, data={**data, "extension-learner": outsider.email})
    assert response.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count(Extension.id))) == 1

    # Feedback is released, then withdrawn.
    feedback_url = url.removesuffix("/deadlines") + "/feedback"
    assert "Release feedback" in html and "Withdraw feedback" not in html
    token = csrf_token(client, url)
    response = client.post(
        feedback_url,
        data={"feedback-release": "Release feedback", "feedback-confirm": "y", "csrf_token": token},
    )
    assert response.status_code == 302
    db.session.expire_all()
    released_at = world.scheduled.feedback_released_at
    assert released_at is not None
    html = client.get(url).get_data(as_text=True)
    assert "Withdraw feedback" in html and factories.shown_moment(released_at) in html
    response = client.post(
        feedback_url, data={"feedback-withdraw": "Withdraw feedback", "csrf_token": token}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert world.scheduled.feedback_released_at is None
    # Without a CSRF token, or without a button, nothing happens.
    assert client.post(feedback_url, data={"feedback-release": "x"}).status_code == 400
    assert client.post(feedback_url, data={"csrf_token": token}).status_code == 400


def test_pass_rates_count_full_points_of_latest_submissions(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    cells = grading.graded_cells(world.assignment.id)
    test = cells[("double-it", "test-double")]
    first, second, third = world.learners
    old = submit(world, first, WRONG)
    # (submission, autograder score): an older attempt does not count, only the latest.
    scores = [
        (old, 0.0),
        (submit(world, first, RIGHT), 2.0),
        (submit(world, second, WRONG), 0.0),
        (submit(world, third, "def double(x):\n    return 2 * x\n"), 1.0),
    ]
    for sub, score in scores:
        db.session.add(
            Grade(submission_id=sub.id, cell_id=test.id, max_score=2.0, auto_score=score)
        )
    db.session.commit()
    [rate] = insight.pass_rates(world.assignment, world.cohort)
    assert (rate.cell.grade_id, rate.graded, rate.passed) == ("test-double", 3, 1)
    assert rate.percent == pytest.approx(100 / 3)
    assert insight.latest_count(world.assignment) == 3

    auth.login(world.instructor.email)
    page = client.get(f"{base_url(world)}/insight?cohort={world.cohort.slug}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "test-double" in html and "33%" in html and "<meter" in html
    # The manual answer is not a test.
    assert "why-linear" not in html
    assert client.get(f"{base_url(world)}/insight?cohort=no-such-cohort").status_code == 404


@sqlite_only
def test_pass_rates_after_real_grading(
    world: World, client: FlaskClient, auth: Auth, graders: None
) -> None:
    submit(world, world.learners[0], RIGHT)
    submit(world, world.learners[1], WRONG)
    grading.create_batch(world.assignment, world.instructor)
    assert grading_world.grade_queued() == 2
    auth.login(world.instructor.email)
    html = client.get(f"{base_url(world)}/insight").get_data(as_text=True)
    row = re.search(r"<code>test-double</code>.*?</tr>", html, re.DOTALL)
    assert row is not None
    assert "50%" in row.group(0)
    assert re.search(r'class="num">2</td>\s*<td class="num">1</td>', row.group(0))


def test_a_renamed_copy_is_flagged_and_shown_side_by_side(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    original = submit(world, world.learners[0], COPIED)
    copy = submit(world, world.learners[1], RENAMED)
    submit(world, world.learners[2], "def double(x):\n    return int(x + x)\n")
    auth.login(world.instructor.email)
    html = client.get(f"{base_url(world)}/insight").get_data(as_text=True)
    pair_url = f"{base_url(world)}/similarity/{original.id}/{copy.id}"
    links = re.findall(r"/similarity/\d+/\d+", html)
    assert links == [pair_url.removeprefix(base_url(world))]
    assert "100%" in html

    page = client.get(pair_url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Similarity: 100%" in html
    assert world.learners[0].name in html and world.learners[1].name in html
    assert "total = total + x" in html and "acc = acc + x   # add it" in html
    assert 'class="insight-pair"' in html

    # Both submissions must be of this assignment.
    assert client.get(f"{base_url(world)}/similarity/{original.id}/999999").status_code == 404


@sqlite_only
def test_learner_code_is_escaped_on_the_side_by_side_page(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    code = 'def double(x):\n    note = "<script>alert(1)</script>"\n    return int(2 * x)\n'
    a = submit(world, world.learners[0], code)
    b = submit(world, world.learners[1], RIGHT)
    auth.login(world.instructor.email)
    html = client.get(f"{base_url(world)}/similarity/{a.id}/{b.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html


@sqlite_only
def test_only_the_courses_instructors_see_these_pages(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    a = submit(world, world.learners[0], COPIED)
    b = submit(world, world.learners[1], RENAMED)
    pages = [
        deadlines_url(world),
        f"{base_url(world)}/insight",
        f"{base_url(world)}/similarity/{a.id}/{b.id}",
    ]
    other = factories.instructor(factories.course("other-course", "Other"), "other@test.org")
    auth.login(other.email)
    for url in pages:
        assert client.get(url).status_code == 404, url
    token = csrf_token(client, "/teach/")
    response = client.post(
        deadlines_url(world).removesuffix("/deadlines") + "/feedback",
        data={"feedback-release": "x", "csrf_token": token},
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert world.scheduled.feedback_released_at is None
    auth.logout()
    auth.login(world.learners[0].email)
    for url in pages:
        assert client.get(url).status_code == 403, url

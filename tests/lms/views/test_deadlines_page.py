"""The deadlines page of an assignment in a cohort: the learner of an extension picked with a
search field (suggestions from the cohort only, found by the server from part of a name or an
email, never anyone outside the cohort), and releasing feedback only once confirmed, the
confirmation saying how many learners it reaches."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from lms.extensions import db
from lms.instructor import learner_pick
from lms.models import Enrolment, EnrolmentStatus, Extension
from lms.services import programs
from tests import factories, grading_world
from tests.conftest import Auth, csrf_token
from tests.grading_world import World
from tests.lms.views.test_instructor_grading import ASSIGNMENT, login, submit


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir, learners=3)


def page_of(world: World) -> str:
    return f"{ASSIGNMENT}/cohorts/{world.cohort.slug}/deadlines"


def grant(client: FlaskClient, world: World, learner: str) -> TestResponse:
    due = (world.scheduled.due_at + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    page = page_of(world)
    return client.post(
        page.removesuffix("/deadlines") + "/extensions",
        data={
            "extension-learner": learner,
            "extension-due_at": due,
            "extension-reason": "ill",
            "csrf_token": csrf_token(client, page),
        },
    )


def extended() -> list[int]:
    return list(db.session.scalars(sa.select(Extension.user_id).order_by(Extension.user_id)))


def test_the_learner_is_a_search_field_with_the_cohorts_learners_as_suggestions(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    outsider = factories.learner(factories.cohort(factories.program("Other"), "Else"), "out@x.org")
    login(auth, world)
    html = client.get(page_of(world)).get_data(as_text=True)
    assert '<label for="extension-learner">Learner</label>' in html
    assert 'list="extension-learner-options"' in html and 'type="text"' in html
    assert '<datalist id="extension-learner-options">' in html
    for learner in world.learners:
        assert f'<option value="{learner.email}">{learner.name}</option>' in html
    assert outsider.email not in html
    # No dropdown of the whole cohort any more.
    assert "<select" not in html.split('id="extensions"', 1)[1].split("</form>", 1)[0]
    assert '<script src="/static/extensions.js" defer></script>' in html


def test_a_learner_is_found_from_part_of_a_name_or_an_email(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    first, second, third = world.learners
    login(auth, world)
    assert grant(client, world, "learner1").status_code == 302  # part of a name, one match
    assert grant(client, world, first.email.upper()).status_code == 302  # an email, any case
    assert grant(client, world, f"{third.name} <{third.email}>").status_code == 302
    assert extended() == sorted([first.id, second.id, third.id])
    assert "Extension granted to Learner2." in client.get(page_of(world)).get_data(as_text=True)


def test_a_text_matching_several_learners_lists_them_and_grants_nothing(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    login(auth, world)
    response = grant(client, world, "learner")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and extended() == []
    assert "Several learners of Spring match “learner”" in html
    assert "Learner0 &lt;learner0@test.org&gt;, Learner1 &lt;learner1@test.org&gt;" in html
    assert 'aria-describedby="extension-learner-help extension-learner-error"' in html
    assert 'value="learner"' in html  # what was typed stays in the field


def test_nobody_outside_the_cohort_is_found(world: World, client: FlaskClient, auth: Auth) -> None:
    outsider = factories.learner(factories.cohort(factories.program("Other"), "Else"), "out@x.org")
    leaver = world.learners[2]
    enrolment = db.session.scalar(sa.select(Enrolment).where(Enrolment.user_id == leaver.id))
    assert enrolment is not None
    enrolment.status = EnrolmentStatus.WITHDRAWN
    db.session.commit()
    login(auth, world)
    for typed in (outsider.email, f"Out <{outsider.email}>", "out", leaver.email, "nobody"):
        response = grant(client, world, typed)
        html = response.get_data(as_text=True)
        assert response.status_code == 400, typed
        assert "No learner of Spring matches" in html, typed
    assert grant(client, world, "").status_code == 400
    assert extended() == []


def test_suggestions_come_from_the_cohort_for_its_instructor_only(
    world: World, client: FlaskClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    factories.learner(factories.cohort(factories.program("Other"), "Else"), "learner9@x.org")
    url = page_of(world).removesuffix("/deadlines") + "/learners.json"
    login(auth, world)
    answer = client.get(f"{url}?q=LEARNER1")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "private, no-store"
    assert answer.json == {
        "learners": [{"name": "Learner1", "email": "learner1@test.org"}],
        "more": False,
    }
    found = client.get(f"{url}?q=learner").json
    assert found is not None
    assert [s["email"] for s in found["learners"]] == [u.email for u in world.learners]
    assert client.get(f"{url}?q=l").json == {"learners": [], "more": False}
    monkeypatch.setattr(learner_pick, "SUGGESTIONS", 2)
    assert client.get(f"{url}?q=learner").json["more"] is True  # type: ignore[index]
    # A cohort too large to list: the page leaves the list to extensions.js and the endpoint.
    monkeypatch.setattr(learner_pick, "DATALIST_MAX", 2)
    html = client.get(page_of(world)).get_data(as_text=True)
    assert (
        "<option"
        not in html.split('<datalist id="extension-learner-options">', 1)[1].split(
            "</datalist>", 1
        )[0]
    )
    assert f'data-suggest-url="{url}"' in html

    auth.logout()
    other = factories.instructor(factories.course("other-course", "Other"), "other@test.org")
    assert auth.login(other.email).status_code == 302
    assert client.get(f"{url}?q=learner").status_code == 404


def test_releasing_feedback_needs_the_box_that_says_how_many(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    submit(world, world.learners[0])
    programs.enrol(factories.user("late@test.org"), world.cohort)
    login(auth, world)
    page = page_of(world)
    action = page.removesuffix("/deadlines") + "/feedback"
    html = client.get(page).get_data(as_text=True)
    assert "Yes, release the feedback to the 4 learners of Spring" in html
    assert "1 learner of Spring has submitted this assignment so far." in html
    box = re.search(r'<input [^>]*id="feedback-confirm"[^>]*>', html)
    assert box is not None and 'type="checkbox"' in box[0] and "required" in box[0]

    token = csrf_token(client, page)
    refused = client.post(action, data={"feedback-release": "1", "csrf_token": token})
    assert refused.status_code == 400
    assert "Tick the box to confirm." in refused.get_data(as_text=True)
    db.session.refresh(world.scheduled)
    assert world.scheduled.feedback_released_at is None

    released = client.post(
        action, data={"feedback-release": "1", "feedback-confirm": "y", "csrf_token": token}
    )
    assert released.status_code == 302
    db.session.refresh(world.scheduled)
    assert world.scheduled.feedback_released_at is not None
    html = client.get(page).get_data(as_text=True)
    assert "Feedback released to 4 learners." in html and "Withdraw feedback" in html
    # Taking it back reaches nobody new: no box to tick.
    withdrawn = client.post(action, data={"feedback-withdraw": "1", "csrf_token": token})
    assert withdrawn.status_code == 302
    db.session.refresh(world.scheduled)
    assert world.scheduled.feedback_released_at is None


def test_deadlines_are_entered_and_shown_in_the_viewers_time_zone(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    """An instructor in Seoul types 08:59 on 2 March: the due date is 23:59 UTC on 1 March."""
    from datetime import UTC, datetime

    login(auth, world)
    client.set_cookie("tz", "Asia/Seoul")
    page = page_of(world)
    html = client.get(page).get_data(as_text=True)
    assert "Dates and times are in your time zone, Asia/Seoul." in html
    world.scheduled.opens_at = datetime(2026, 2, 1, tzinfo=UTC)
    db.session.commit()
    answer = client.post(
        page,
        data={
            "policy-due_at": "2026-03-02T08:59",
            "policy-late_penalty_per_day": "0",
            "policy-late_penalty_cap": "100",
            "csrf_token": csrf_token(client, page),
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    db.session.expire_all()
    assert world.scheduled.due_at == datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    html = client.get(page).get_data(as_text=True)
    assert 'value="2026-03-02T08:59"' in html  # the form shows it back in Seoul's time

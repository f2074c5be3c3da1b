"""Certificates from the staff's pages: issuing only once confirmed (the box says how many, and
a stale number is refused), the cohort's list of issued certificates, and revoking one with
a reason that is recorded, after which the public verification page says it is revoked. Only
who may issue may list and revoke."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.models import AuditEvent, Cohort, Enrolment, EnrolmentStatus, Program, User
from lms.services import certificates
from lms.services.certificates import uncertified_completed_count
from tests import factories
from tests.conftest import Auth, csrf_token


@dataclass
class World:
    program: Program
    cohort: Cohort
    learners: list[User]


def complete(user: User, cohort: Cohort) -> None:
    enrolment = db.session.scalar(
        sa.select(Enrolment).where(Enrolment.user_id == user.id, Enrolment.cohort_id == cohort.id)
    )
    assert enrolment is not None
    enrolment.status = EnrolmentStatus.COMPLETED
    db.session.commit()


@pytest.fixture
def world(app: Flask) -> World:
    program = factories.program()
    cohort = factories.cohort(program)
    learners = [factories.learner(cohort, f"ana{i}@test.org") for i in range(3)]
    for learner in learners:
        complete(learner, cohort)
    factories.coordinator(program, "coord@test.org")
    return World(program, cohort, learners)


def issue_url(world: World) -> str:
    return f"/certificates/cohorts/{world.cohort.slug}/issue"


def flashes(client: FlaskClient) -> list[str]:
    with client.session_transaction() as session:
        return [message for _, message in session.get("_flashes", [])]


def test_issuing_needs_the_box_and_the_number_it_showed(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    auth.login("coord@test.org")
    cohort_page = f"/coordinate/cohorts/{world.cohort.slug}"
    html = client.get(cohort_page).get_data(as_text=True)
    assert "Yes, issue certificates to the 3 completed learners of Spring" in html
    assert 'name="expected" value="3"' in html and 'name="confirm" value="y" required' in html
    token = csrf_token(client, cohort_page)
    base = {"csrf_token": token, "next": cohort_page}

    unticked = client.post(issue_url(world), data={**base, "expected": "3"})
    assert unticked.status_code == 302 and unticked.location == cohort_page
    assert flashes(client) == ["Tick the box to confirm."]
    assert uncertified_completed_count(world.cohort.id) == 3

    # A fourth learner completed since the page was shown: the 3 confirmed are not the 4 now.
    fourth = factories.learner(world.cohort, "late@test.org")
    complete(fourth, world.cohort)
    client.get(cohort_page)  # read the flashes of the first refusal
    stale = client.post(issue_url(world), data={**base, "expected": "3", "confirm": "y"})
    assert stale.status_code == 302
    assert flashes(client) == [
        "4 completed learners are waiting for a certificate now, not the number you "
        "confirmed: check it and confirm again."
    ]
    assert uncertified_completed_count(world.cohort.id) == 4

    client.get(cohort_page)
    done = client.post(issue_url(world), data={**base, "expected": "4", "confirm": "y"})
    assert done.status_code == 302 and flashes(client) == ["4 certificates issued."]
    assert uncertified_completed_count(world.cohort.id) == 0


def test_the_cohorts_certificates_are_listed_with_a_revoke_button(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    issued = certificates.issue(world.cohort, None)
    other = factories.cohort(world.program, "Autumn")
    elsewhere = factories.learner(other, "bo@test.org")
    complete(elsewhere, other)
    [not_listed] = certificates.issue(other, None)
    auth.login("coord@test.org")
    cohort_page = client.get(f"/coordinate/cohorts/{world.cohort.slug}").get_data(as_text=True)
    listing_url = f"/certificates/cohorts/{world.cohort.slug}"
    assert f'href="{listing_url}"' in cohort_page

    html = client.get(listing_url).get_data(as_text=True)
    assert "3 certificates" in html
    for certificate in issued:
        assert f'href="/certificates/{certificate.code}/revoke"' in html
        assert f'href="/verify/{certificate.code}"' in html
    assert not_listed.code not in html
    searched = client.get(f"{listing_url}?q={issued[1].code.lower()}").get_data(as_text=True)
    assert issued[1].code in searched and issued[0].code not in searched
    assert "1 certificate" in searched


def test_revoking_needs_a_reason_is_recorded_and_shows_on_the_verify_page(
    world: World, client: FlaskClient, auth: Auth, app: Flask
) -> None:
    first, second, _third = certificates.issue(world.cohort, None)
    auth.login("coord@test.org")
    coordinator = db.session.scalar(sa.select(User).where(User.email == "coord@test.org"))
    page = f"/certificates/{first.code}/revoke"
    html = client.get(page).get_data(as_text=True)
    assert '<label for="reason">Reason for revoking</label>' in html
    assert first.learner_name in html and "This cannot be undone." in html

    token = csrf_token(client, page)
    refused = client.post(page, data={"reason": "  ", "csrf_token": token})
    assert refused.status_code == 400
    assert "Give the reason for revoking the certificate." in refused.get_data(as_text=True)
    db.session.refresh(first)
    assert first.revoked_at is None

    response = client.post(page, data={"reason": "Plagiarism found.", "csrf_token": token})
    assert response.status_code == 302
    assert response.location == f"/certificates/cohorts/{world.cohort.slug}"
    db.session.refresh(first)
    assert first.revoked_at is not None and first.revoked_reason == "Plagiarism found."
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "certificate-revoked")
    )
    assert event is not None and coordinator is not None
    assert event.actor_id == coordinator.id and event.subject_id == first.enrolment.user_id
    assert event.detail == f"{first.code}: Plagiarism found."
    listing = client.get(response.location).get_data(as_text=True)
    assert f"Certificate {first.code} of {first.learner_name} revoked." in listing
    assert "Plagiarism found." in listing
    assert f'href="/certificates/{first.code}/revoke"' not in listing
    assert f'href="/certificates/{second.code}/revoke"' in listing
    # Once revoked, the page says so and offers nothing more.
    again = client.get(page).get_data(as_text=True)
    assert "no longer valid" in again and 'name="reason"' not in again

    public = app.test_client().get(f"/verify/{first.code}").get_data(as_text=True)
    assert "Revoked." in public and "no longer valid" in public
    assert "Plagiarism" not in public  # the reason stays with the staff
    assert "Valid." in app.test_client().get(f"/verify/{second.code}").get_data(as_text=True)


def test_only_who_may_issue_lists_and_revokes(world: World, app: Flask) -> None:
    [certificate, *_] = certificates.issue(world.cohort, None)
    other_program = factories.program("National AI Engineers", 50000)
    factories.coordinator(other_program, "elsewhere@test.org")
    factories.admin("boss@test.org")
    factories.instructor(factories.course(), "teacher@test.org")
    listing = f"/certificates/cohorts/{world.cohort.slug}"
    revoke = f"/certificates/{certificate.code}/revoke"
    for email, home, status in (
        ("elsewhere@test.org", "/coordinate/", 404),
        ("teacher@test.org", "/teach/", 403),
        ("ana0@test.org", "/learn/", 403),  # the certificate's own learner
    ):
        client = app.test_client()
        assert Auth(client).login(email).status_code == 302
        assert client.get(listing).status_code == status, email
        assert client.get(revoke).status_code == status, email
        token = csrf_token(client, home)
        posted = client.post(revoke, data={"reason": "mine now", "csrf_token": token})
        assert posted.status_code == status, email
    anonymous = app.test_client()
    assert anonymous.get(revoke).status_code == 302
    db.session.refresh(certificate)
    assert certificate.revoked_at is None

    boss = app.test_client()
    Auth(boss).login("boss@test.org")
    assert boss.get(listing).status_code == 200
    token = csrf_token(boss, revoke)
    assert boss.post(revoke, data={"reason": "Fraud.", "csrf_token": token}).status_code == 302
    db.session.refresh(certificate)
    assert certificate.revoked_reason == "Fraud." and certificate.revoked_at is not None

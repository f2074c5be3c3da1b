"""After joining: withdrawal, merging duplicate accounts, a person's data downloaded and
erased, and the audit log of every admin action on a person."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.labels import AUDIT_ACTIONS
from lms.models import (
    ApiToken,
    AuditEvent,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    Submission,
    User,
    UserSession,
    utcnow,
)
from lms.services import api_tokens, audit, certificates, people, programs, users, workspaces
from lms.storage import blobs
from tests import factories
from tests.conftest import Auth, csrf_token

SHARED_NOTEBOOK = b'{"cells": [], "note": "the release, untouched"}'


@pytest.fixture
def cohort(app: Flask) -> Cohort:
    return factories.cohort(factories.program(), courses=[factories.course()])


def enrolment_of(user: User, cohort: Cohort) -> Enrolment:
    found = db.session.scalar(
        sa.select(Enrolment).where(Enrolment.user_id == user.id, Enrolment.cohort_id == cohort.id)
    )
    assert found is not None
    return found


def submit(user: User, cohort: Cohort, attempt: int, content: bytes) -> Submission:
    """A stored submission row, as the submit service leaves it (no grading needed here)."""
    from tests.route_world import _assignment

    assignment = db.session.scalar(sa.select(sa.func.min(Submission.assignment_id)))
    if assignment is None:
        assignment = _assignment(cohort.courses[0].id, "work").id
    submission = Submission(
        user_id=user.id,
        assignment_id=assignment,
        cohort_id=cohort.id,
        attempt=attempt,
        version=1,
        files={"work": blobs.put(content)},
        content_hash=f"h{user.id}-{attempt}",
    )
    db.session.add(submission)
    db.session.commit()
    return submission


def certify(user: User, cohort: Cohort) -> str:
    enrolment = enrolment_of(user, cohort)
    enrolment.status = EnrolmentStatus.COMPLETED
    enrolment.completed_at = utcnow()
    db.session.commit()
    [issued] = certificates.issue([enrolment], None)
    return issued.code


# --- Withdrawal ---------------------------------------------------------------------------


def test_withdrawing_keeps_the_learners_work_and_can_be_undone(app: Flask, cohort: Cohort) -> None:
    admin = factories.admin()
    learner = factories.learner(cohort)
    submit(learner, cohort, 1, b"mine")
    enrolment = enrolment_of(learner, cohort)
    people.withdraw(enrolment, admin)
    assert (enrolment.status, enrolment.withdrawn_at is not None) == ("withdrawn", True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Submission)) == 1
    people.reinstate(enrolment, admin)
    assert (enrolment.status, enrolment.withdrawn_at) == ("enrolled", None)
    actions = [e.action for e in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["withdrawn", "reinstated"]


# --- Merging ------------------------------------------------------------------------------


def test_merging_a_duplicate_moves_enrolments_and_work_and_ends_the_duplicate(
    app: Flask, cohort: Cohort
) -> None:
    admin = factories.admin()
    other_cohort = factories.cohort(cohort.program, "Autumn", courses=cohort.courses)
    keep = factories.learner(cohort, "minh@school.edu.vn")
    dupe = factories.learner(cohort, "minh@gmail.com")
    programs.enrol(dupe, other_cohort)
    submit(keep, cohort, 1, b"keep-1")
    submit(dupe, cohort, 1, b"dupe-1")
    submit(dupe, cohort, 2, b"dupe-2")
    token = api_tokens.create(dupe, "script")
    elsewhere = app.test_client()
    Auth(elsewhere).login(dupe.email)
    code = certify(dupe, cohort)

    moved = people.merge(dupe, keep, admin)

    assert moved["submissions"] == 2 and moved["enrolments"] == 1
    attempts = sorted(
        db.session.execute(
            sa.select(Submission.attempt, Submission.content_hash).where(
                Submission.user_id == keep.id
            )
        ).tuples()
    )
    assert [a for a, _ in attempts] == [1, 2, 3]  # the duplicate's follow the kept ones
    assert {e.cohort_id for e in keep.enrolments} == {cohort.id, other_cohort.id}
    kept = enrolment_of(keep, cohort)
    assert kept.completed_at is not None  # the furthest milestone wins
    assert certificates.find(code) is not None
    assert certificates.find(code).enrolment.user_id == keep.id  # type: ignore[union-attr]
    db.session.refresh(dupe)
    assert (dupe.active, dupe.merged_into_id) == (False, keep.id)
    assert dupe.email.endswith("@erased.invalid")
    assert users.find_by_email("minh@gmail.com") is None  # the address is free again
    assert elsewhere.get("/learn/").status_code == 302  # signed out
    assert db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == dupe.id)) is None
    assert api_tokens.user_for(token) is None
    actions = {e.action for e in db.session.scalars(sa.select(AuditEvent))}
    assert {"merged", "merged-away"} <= actions


def test_an_account_is_not_merged_into_itself_or_twice(app: Flask, cohort: Cohort) -> None:
    a = factories.learner(cohort, "a@example.vn")
    b = factories.learner(cohort, "b@example.vn")
    with pytest.raises(people.PeopleError):
        people.merge(a, a, None)
    people.merge(b, a, None)
    with pytest.raises(people.PeopleError):
        people.merge(b, a, None)


# --- Personal data ------------------------------------------------------------------------


def archive_of(body: bytes) -> tuple[dict[str, object], zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(body))
    return json.loads(archive.read("data.json")), archive


def test_a_person_downloads_everything_held_about_them(
    app: Flask, client: FlaskClient, cohort: Cohort
) -> None:
    learner = factories.learner(cohort, "me@example.vn")
    submission = submit(learner, cohort, 1, b"my notebook")
    folder = workspaces.root_of(learner) / "course" / "work"
    folder.mkdir(parents=True)
    (folder / "work.ipynb").write_text("lab draft")
    Auth(client).login("me@example.vn")
    account = client.get("/account").get_data(as_text=True)
    assert "<title>My account" in account and 'href="/account/data.zip"' in account
    answer = client.get("/account/data.zip")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/zip"
    data, archive = archive_of(answer.data)
    assert data["profile"]["email"] == "me@example.vn"  # type: ignore[index]
    assert "password_hash" not in data["profile"]  # type: ignore[operator]
    assert len(data["enrolments"]) == 1  # type: ignore[arg-type]
    assert len(data["sessions"]) == 1  # type: ignore[arg-type]
    assert archive.read(f"submissions/{submission.id}/work") == b"my notebook"
    assert archive.read("workspace/course/work/work.ipynb") == b"lab draft"
    exported = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "data-exported")
    ).one()
    assert (exported.actor_id, exported.subject_id) == (learner.id, learner.id)
    # An admin downloads it too; nobody else can.
    other = app.test_client()
    admin = factories.admin()
    Auth(other).login(admin.email)
    assert other.get(f"/admin/users/{learner.id}/data.zip").status_code == 200
    stranger = app.test_client()
    Auth(stranger).login(factories.learner(cohort, "x@example.vn").email)
    assert stranger.get(f"/admin/users/{learner.id}/data.zip").status_code == 403


def test_erasure_anonymises_deletes_files_and_keeps_figures_and_certificates(
    app: Flask, client: FlaskClient, cohort: Cohort
) -> None:
    admin = factories.admin()
    learner = factories.learner(cohort, "erase.me@example.vn")
    classmate = factories.learner(cohort, "classmate@example.vn")
    own = submit(learner, cohort, 1, b"only mine")
    submit(learner, cohort, 2, SHARED_NOTEBOOK)
    submit(classmate, cohort, 1, SHARED_NOTEBOOK)
    own_blob = own.files["work"]
    shared_blob = blobs.put(SHARED_NOTEBOOK)
    (workspaces.root_of(learner) / "x").mkdir(parents=True)
    code = certify(learner, cohort)
    audit.record(
        learner, learner, "email-changed", "old.erase.me@example.vn -> erase.me@example.vn"
    )
    db.session.commit()
    elsewhere = app.test_client()
    Auth(elsewhere).login("erase.me@example.vn")
    enrolled_before = db.session.scalar(sa.select(sa.func.count()).select_from(Enrolment))

    Auth(client).login(admin.email)
    path = f"/admin/users/{learner.id}"
    wrong = client.post(
        f"{path}/erase",
        data={"confirm_email": "someone@else.vn", "csrf_token": csrf_token(client, path)},
    )
    assert wrong.status_code == 302
    assert db.session.get(User, learner.id).erased_at is None  # type: ignore[union-attr]
    done = client.post(
        f"{path}/erase",
        data={"confirm_email": "Erase.Me@example.vn", "csrf_token": csrf_token(client, path)},
    )
    assert done.status_code == 302

    db.session.expire_all()
    gone = db.session.get(User, learner.id)
    assert gone is not None and gone.erased_at is not None and not gone.active
    assert "erase.me" not in gone.email and gone.name.startswith("Erased")
    assert gone.password_hash is None
    assert users.find_by_email("erase.me@example.vn") is None
    assert not blobs.exists(own_blob)
    assert blobs.exists(shared_blob)  # the classmate's submission still needs it
    assert all(
        s.files == {}
        for s in db.session.scalars(sa.select(Submission).where(Submission.user_id == learner.id))
    )
    assert not workspaces.root_of(learner).exists()
    assert elsewhere.get("/learn/").status_code == 302  # signed out
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(
                UserSession.user_id == learner.id, UserSession.ip.is_not(None)
            )
        )
        == 0
    )
    # Figures and the certificate stay; the verify page says the data was erased.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Enrolment)) == enrolled_before
    page = app.test_client().get(f"/verify/{code}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "personal data was erased" in text and "erase.me" not in text
    # Who erased whom, and when, is on record.
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "erased")).one()
    assert (event.actor_id, event.subject_id) == (admin.id, learner.id)
    user_page = client.get(path).get_data(as_text=True)
    assert "erased" in user_page and "erase.me" not in user_page
    assert not any("erase.me" in e.detail for e in db.session.scalars(sa.select(AuditEvent)))


def test_admin_actions_on_a_person_are_in_the_audit_log_on_their_page(
    app: Flask, client: FlaskClient, cohort: Cohort
) -> None:
    admin = factories.admin()
    Auth(client).login(admin.email)
    cohort_page = f"/admin/cohorts/{cohort.slug}"
    imported = client.post(
        cohort_page,
        data={
            "csrf_token": csrf_token(client, cohort_page),
            "file": (io.BytesIO(b"email,name\nlogged@example.vn,Logged\n"), "people.csv"),
        },
        content_type="multipart/form-data",
    )
    assert imported.status_code == 302
    learner = users.find_by_email("logged@example.vn")
    assert learner is not None
    path = f"/admin/users/{learner.id}"
    token = csrf_token(client, path)
    client.post(f"{path}/deactivate", data={"csrf_token": token, "email": learner.email})
    client.post(f"{path}/reactivate", data={"csrf_token": token, "email": learner.email})
    enrolment = enrolment_of(learner, cohort)
    client.post(f"/admin/enrolments/{enrolment.id}/withdraw", data={"csrf_token": token})
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.subject_id == learner.id).order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["imported", "deactivated", "reactivated", "withdrawn"]
    assert cohort.slug in events[0].detail
    assert all(e.actor_id == admin.id for e in events)
    page = client.get(path).get_data(as_text=True)
    assert page.count("admin@test.org") >= 4 and "withdrawn from a cohort" in page


def test_every_audited_action_has_a_label_for_the_logs_reader() -> None:
    """The log shows actions in the reader's language: a new action needs its label."""
    source = "\n".join(path.read_text() for path in Path("lms").rglob("*.py"))
    calls = re.findall(r"audit\.record\(([^)]*)\)", source)
    calls += re.findall(r'"action": ([^,]*),', source)  # bulk inserts of events
    recorded = {word for call in calls for word in re.findall(r'"([a-z]+(?:-[a-z]+)*)"', call)}
    assert {"imported", "enrolled", "joined", "password-reset", "role-revoked"} <= recorded
    assert recorded - set(AUDIT_ACTIONS) == set()

"""Admin pages: create users, programs, cohorts and organisations; grant and revoke roles."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from markupsafe import escape
from werkzeug.test import TestResponse

from lms.extensions import db
from lms.models import Cohort, Organisation, Program, Role, RoleGrant, User
from lms.services import learner_import, users
from tests import factories
from tests.conftest import Auth, csrf_token, post_form


@pytest.fixture
def admin_client(client: FlaskClient, auth: Auth) -> FlaskClient:
    factories.admin("boss@test.org")
    assert auth.login("boss@test.org").status_code == 302
    return client


def test_create_program(admin_client: FlaskClient) -> None:
    response = post_form(
        admin_client,
        "/admin/programs",
        {"name": "National AI Engineers", "target_learners": "50000", "target_date": "2030-12-31"},
    )
    assert response.status_code == 302
    program = db.session.scalar(sa.select(Program))
    assert program is not None
    assert (program.slug, program.target_learners) == ("national-ai-engineers", 50000)
    assert "50,000" in admin_client.get("/admin/programs").get_data(as_text=True)


def test_program_form_errors_are_shown_and_nothing_is_created(admin_client: FlaskClient) -> None:
    response = post_form(
        admin_client,
        "/admin/programs",
        {"name": "X", "target_learners": "0", "target_date": "someday", "slug": "Bad Slug"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert "Lowercase letters, digits and hyphens." in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Program)) == 0


def test_duplicate_program_name_is_refused_with_a_message(admin_client: FlaskClient) -> None:
    factories.program("Gwangju AI School")
    response = post_form(
        admin_client,
        "/admin/programs",
        {"name": "Gwangju AI School", "target_learners": "10", "target_date": "2030-01-01"},
    )
    assert "already exists" in response.get_data(as_text=True)


def test_create_organisation_and_cohort_with_courses(admin_client: FlaskClient) -> None:
    program = factories.program()
    course_a = factories.course("course-a", "Course A")
    factories.course("course-b", "Course B")
    assert (
        post_form(
            admin_client, "/admin/organisations", {"name": "Da Nang Digital Hub", "kind": "city"}
        ).status_code
        == 302
    )
    org = db.session.scalar(sa.select(Organisation))
    assert org is not None
    response = post_form(
        admin_client,
        "/admin/cohorts",
        {
            "program": program.id,
            "name": "Autumn 2026",
            "starts_on": "2026-09-01",
            "ends_on": "2027-02-28",
            "organisation": org.id,
            "courses": [course_a.id],
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/cohorts/gwangju-ai-school-autumn-2026"
    cohort = db.session.scalar(sa.select(Cohort))
    assert cohort is not None
    assert [c.slug for c in cohort.courses] == ["course-a"]
    assert cohort.organisation_id == org.id


def test_cohort_cannot_end_before_it_starts(admin_client: FlaskClient) -> None:
    program = factories.program()
    response = post_form(
        admin_client,
        "/admin/cohorts",
        {
            "program": program.id,
            "name": "Odd",
            "starts_on": "2026-09-01",
            "ends_on": "2026-01-01",
            "organisation": 0,
        },
    )
    assert "cannot end before it starts" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Cohort)) == 0


def test_create_user_then_grant_and_revoke_a_role(admin_client: FlaskClient, auth: Auth) -> None:
    course = factories.course()
    response = post_form(
        admin_client,
        "/admin/users",
        {
            "email": "New.Teacher@Test.org",
            "name": "New Teacher",
            "password": "long-enough-pw",
            "organisation": 0,
        },
    )
    assert response.status_code == 302
    user = db.session.scalar(sa.select(User).where(User.email == "new.teacher@test.org"))
    assert user is not None
    detail = f"/admin/users/{user.id}"
    assert (
        post_form(
            admin_client, detail, {"role": "instructor", "program": 0, "course": course.id}
        ).status_code
        == 302
    )
    grant = db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == user.id))
    assert grant is not None and grant.role == Role.INSTRUCTOR
    assert grant.granted_by_id is not None
    assert (
        post_form(admin_client, f"/admin/grants/{grant.id}/revoke", {}, headers={}).status_code
        == 302
    )
    assert db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == user.id)) is None


def test_grant_with_the_wrong_scope_is_refused(admin_client: FlaskClient) -> None:
    user = factories.user("someone@test.org")
    response = post_form(
        admin_client, f"/admin/users/{user.id}", {"role": "coordinator", "program": 0, "course": 0}
    )
    assert "A coordinator role is granted for one program." in response.get_data(as_text=True)


def test_admin_cannot_revoke_own_admin_role(admin_client: FlaskClient) -> None:
    boss = db.session.scalar(sa.select(User).where(User.email == "boss@test.org"))
    assert boss is not None
    grant_id = boss.grants[0].id
    post_form(admin_client, f"/admin/grants/{grant_id}/revoke", {})
    assert db.session.get(RoleGrant, grant_id) is not None


def test_user_list_search_and_pagination(admin_client: FlaskClient) -> None:
    cohort = factories.cohort(factories.program())
    rows = "\n".join(f"learner{n:03d}@test.org,Learner {n}" for n in range(120))
    learner_import.import_learners(cohort, f"email,name\n{rows}\n".encode())
    page1 = admin_client.get("/admin/users").get_data(as_text=True)
    assert "121 users" in page1 and "Page 1 of 3" in page1
    found = admin_client.get("/admin/users?q=learner007").get_data(as_text=True)
    assert "learner007@test.org" in found and "learner008@test.org" not in found


def test_the_new_user_form_comes_first_and_says_the_password_rule(
    admin_client: FlaskClient,
) -> None:
    cohort = factories.cohort(factories.program())
    rows = "\n".join(f"learner{n:03d}@test.org,Learner {n}" for n in range(60))
    learner_import.import_learners(cohort, f"email,name\n{rows}\n".encode())
    html = admin_client.get("/admin/users").get_data(as_text=True)
    # The form, folded, above the first page of users rather than under it.
    assert html.index('<details class="new-user" id="new-user">') < html.index('name="email"')
    assert html.index('name="email"') < html.index("<table")
    assert len(re.findall(r'href="/admin/users/\d+"', html)) == 50  # a page of 50 users
    assert "61 users" in html and "Page 1 of 2" in html
    assert "at least 12 characters" in html and 'minlength="12"' in html

    refused = post_form(
        admin_client,
        "/admin/users",
        {"email": "new@test.org", "name": "New", "password": "short", "organisation": 0},
    )
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert '<details class="new-user" id="new-user" open>' in page  # the problem in sight
    assert "Use at least 12 characters." in page
    assert users.find_by_email("new@test.org") is None


def test_a_search_that_matches_nobody_says_so(admin_client: FlaskClient) -> None:
    html = admin_client.get("/admin/users?q=nobody-at-all").get_data(as_text=True)
    assert "0 users" in html and "No user matches." in html


def upload(client: FlaskClient, cohort: Cohort, data: bytes, language: str = "en") -> TestResponse:
    path = f"/admin/cohorts/{cohort.slug}"
    return client.post(
        path,
        data={"csrf_token": csrf_token(client, path), "file": (io.BytesIO(data), "learners.csv")},
        content_type="multipart/form-data",
        headers={"Accept-Language": language},
    )


@pytest.mark.parametrize("language", ["vi", "ko"])
def test_import_row_errors_are_said_in_the_readers_language(
    app: Flask, admin_client: FlaskClient, language: str
) -> None:
    cohort = factories.cohort(factories.program())
    factories.organisation("Da Nang Digital Hub")
    data = (
        b"email,name,organisation\n"
        b",No Email,\n"
        b"not-an-email,Bad,\n"
        b"a@test.org,A,\n"
        b"a@test.org,A again,\n"
        b"b@test.org,B,Acme Robotics\n"
        b"c@test.org,C\n"
    )
    response = upload(admin_client, cohort, data, language)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    with pytest.raises(learner_import.ImportRejected) as rejected:
        learner_import.import_learners(cohort, data)
    errors = rejected.value.errors
    assert [e.code for e in errors] == [
        "missing-email",
        "invalid-email",
        "duplicate-email",
        "unknown-organisation",
        "field-count",
    ]
    for error in errors:
        english = error.message  # outside a request: the default language
        with app.test_request_context(), force_locale(language):
            said = error.message
        assert said != english, f"{english!r} has no {language} translation"
        assert f'<td class="num">{error.line}</td><td>{escape(said)}</td>' in html
        assert escape(english) not in html


def test_import_summary_counts_rows_in_the_singular_and_the_plural(
    admin_client: FlaskClient,
) -> None:
    cohort = factories.cohort(factories.program())
    one = upload(admin_client, cohort, b"email\none@test.org\n")
    assert one.status_code == 302
    flashed = admin_client.get(one.headers["Location"]).get_data(as_text=True)
    assert "1 row: 1 new user, 1 newly enrolled, 0 already enrolled." in flashed
    two = upload(admin_client, cohort, b"email\none@test.org\ntwo@test.org\n")
    flashed = admin_client.get(two.headers["Location"]).get_data(as_text=True)
    assert "2 rows: 1 new user, 1 newly enrolled, 1 already enrolled." in flashed

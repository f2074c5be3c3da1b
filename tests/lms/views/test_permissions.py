"""Each role sees its own pages and only what its grants govern."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms.models import User
from tests import factories
from tests.conftest import Auth

GUARDED = ("admin.", "instructor.", "coordinator.")


def guarded_urls(app: Flask) -> list[tuple[str, str]]:
    """(method, url) for every route of the guarded blueprints, with dummy path arguments."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(GUARDED):
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if "int:" in m.group(0) else "x", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            urls.append((method, url))
    return urls


def test_every_guarded_blueprint_has_routes(app: Flask) -> None:
    endpoints = {method_url for method_url in guarded_urls(app)}
    assert len(endpoints) >= 10
    for prefix in ("/admin/", "/teach/", "/coordinate/"):
        assert any(url.startswith(prefix) for _, url in endpoints)


def test_learner_gets_403_on_every_staff_route(app: Flask, client: FlaskClient, auth: Auth) -> None:
    program = factories.program()
    factories.learner(factories.cohort(program), "learner@test.org")
    assert auth.login("learner@test.org").status_code == 302
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/learn/").get_data(as_text=True)
    )
    assert token
    for method, url in guarded_urls(app):
        response = client.open(url, method=method, data={"csrf_token": token.group(1)})
        assert response.status_code == 403, (method, url, response.status_code)


def test_anonymous_visitor_is_sent_to_login(app: Flask, client: FlaskClient) -> None:
    for method, url in guarded_urls(app) + [("GET", "/learn/")]:
        if method != "GET":
            continue
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login")


def test_learner_home_shows_my_cohort_and_courses(client: FlaskClient, auth: Auth) -> None:
    course = factories.course()
    cohort = factories.cohort(factories.program(), "Autumn", courses=[course])
    factories.learner(cohort, "learner@test.org")
    auth.login("learner@test.org")
    html = client.get("/learn/").get_data(as_text=True)
    assert "Gwangju AI School — Autumn" in html
    assert "Python and NumPy for AI" in html


def test_staff_without_enrolment_cannot_open_learner_home(client: FlaskClient, auth: Auth) -> None:
    factories.instructor(factories.course(), "teacher@test.org")
    auth.login("teacher@test.org")
    assert client.get("/learn/").status_code == 403


def test_instructor_sees_own_course_and_not_another(client: FlaskClient, auth: Auth) -> None:
    course_a = factories.course("course-a", "Course A")
    factories.course("course-b", "Course B")
    factories.instructor(course_a, "teacher@test.org")
    auth.login("teacher@test.org")
    home = client.get("/teach/").get_data(as_text=True)
    assert "Course A" in home
    assert "Course B" not in home
    assert client.get("/teach/courses/course-a").status_code == 200
    assert client.get("/teach/courses/course-b").status_code == 404
    assert client.get("/teach/courses/no-such-course").status_code == 404
    assert client.get("/coordinate/").status_code == 403
    assert client.get("/admin/").status_code == 403


def test_coordinator_sees_only_their_programs(client: FlaskClient, auth: Auth) -> None:
    mine = factories.program("Gwangju AI School", 1200)
    other = factories.program("National AI Engineers", 50000)
    cohort = factories.cohort(mine)
    for n in range(3):
        factories.learner(cohort, f"l{n}@test.org")
    factories.coordinator(mine, "coord@test.org")
    auth.login("coord@test.org")
    home = client.get("/coordinate/").get_data(as_text=True)
    assert "Gwangju AI School" in home
    assert "National AI Engineers" not in home
    assert re.search(
        r'<td class="num">1,200</td>\s*<td>2027-12-31</td>\s*<td class="num">3</td>', home
    )
    assert client.get(f"/coordinate/programs/{mine.slug}").status_code == 200
    assert client.get(f"/coordinate/programs/{other.slug}").status_code == 404
    assert client.get("/teach/").status_code == 403
    assert client.get("/admin/users").status_code == 403


def test_admin_may_open_every_role_page(client: FlaskClient, auth: Auth) -> None:
    course = factories.course()
    program = factories.program()
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    for url in (
        "/admin/",
        "/coordinate/",
        f"/coordinate/programs/{program.slug}",
        "/teach/",
        f"/teach/courses/{course.slug}",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    ("make", "home"),
    [
        (lambda: factories.admin("u@test.org"), "/admin/"),
        (lambda: factories.coordinator(factories.program(), "u@test.org"), "/coordinate/"),
        (lambda: factories.instructor(factories.course(), "u@test.org"), "/teach/"),
        (lambda: factories.learner(factories.cohort(factories.program()), "u@test.org"), "/learn/"),
    ],
)
def test_each_role_lands_on_its_own_home(
    client: FlaskClient, auth: Auth, make: Callable[[], User], home: str
) -> None:
    make()
    response = auth.login("u@test.org")
    assert client.get(response.headers["Location"]).headers["Location"] == home


def test_user_with_no_role_gets_a_welcome_page(client: FlaskClient, auth: Auth) -> None:
    factories.user("nobody@test.org")
    auth.login("nobody@test.org")
    response = client.get("/", follow_redirects=True)
    assert response.request.path == "/welcome"
    assert "not enrolled" in response.get_data(as_text=True)


def test_revoked_role_takes_effect_on_next_request(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    from lms.services import users

    teacher = factories.instructor(factories.course(), "teacher@test.org")
    auth.login("teacher@test.org")
    assert client.get("/teach/").status_code == 200
    users.revoke_grant(teacher.grants[0])
    assert client.get("/teach/").status_code == 403

"""Course pages: instructors see assignments, cells and versions; learners dates and downloads."""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.models import Assignment, Cohort, Course
from lms.services import catalog, programs, releases
from tests import factories
from tests.conftest import Auth
from tests.course_builder import write_course


@pytest.fixture
def course_setup(tmp_path: Path, app_config: dict[str, Any], app: Flask) -> tuple[Course, Cohort]:
    root = tmp_path / "courses"
    write_course(root, assignments={"first": {"due_days": 7}, "later": {}})
    app.config["COURSES_DIR"] = str(root)
    course = factories.course("doubling-101", "Doubling 101")
    started = date.today() - timedelta(days=3)
    cohort = programs.create_cohort(
        factories.program(), "Now", started, started + timedelta(days=90), courses=[course]
    )
    catalog.sync(root)
    return course, cohort


def test_learner_sees_dates_and_downloads_the_release(
    course_setup: tuple[Course, Cohort], client: FlaskClient, auth: Auth
) -> None:
    course, cohort = course_setup
    factories.learner(cohort, "learner@test.org")
    first = db.session.scalar(sa.select(Assignment).where(Assignment.slug == "first"))
    assert first is not None
    releases.release(first)
    auth.login("learner@test.org")
    page = client.get(f"/learn/cohorts/{cohort.slug}/courses/{course.slug}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    due = cohort.starts_on + timedelta(days=7)
    # The viewer's language and zone (none chosen, no browser zone: English, UTC).
    assert f"{due:%b} {due.day}, {due.year}, 11:59\u202fPM UTC" in html
    assert "Not released yet" in html  # the second assignment
    assert ">Start<" in html  # the one next step of the open, untouched assignment
    response = client.get(f"/learn/cohorts/{cohort.slug}/courses/{course.slug}/first.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.namelist() == ["first/first.ipynb"]
        text = archive.read("first/first.ipynb").decode()
    assert "secret-solution-line" not in text and "raise NotImplementedError()" in text
    assert (
        client.get(f"/learn/cohorts/{cohort.slug}/courses/{course.slug}/later.zip").status_code
        == 404
    )


def test_other_learners_and_unopened_assignments_get_404(
    course_setup: tuple[Course, Cohort], client: FlaskClient, auth: Auth
) -> None:
    course, cohort = course_setup
    outsider_cohort = factories.cohort(factories.program("Other", 10), "Elsewhere")
    factories.learner(outsider_cohort, "outsider@test.org")
    auth.login("outsider@test.org")
    assert client.get(f"/learn/cohorts/{cohort.slug}/courses/{course.slug}").status_code == 404
    assert (
        client.get(f"/learn/cohorts/{cohort.slug}/courses/{course.slug}/first.zip").status_code
        == 404
    )


def test_instructor_sees_assignments_cells_and_versions(
    course_setup: tuple[Course, Cohort], client: FlaskClient, auth: Auth
) -> None:
    course, _ = course_setup
    factories.instructor(course, "teacher@test.org")
    factories.instructor(factories.course("other", "Other"), "other@test.org")
    auth.login("teacher@test.org")
    html = client.get(f"/teach/courses/{course.slug}").get_data(as_text=True)
    assert "Assignment first" in html and "not released" in html
    page = client.get(f"/teach/courses/{course.slug}/assignments/first")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "test-double" in text and "autograded test" in text
    assert "why-linear" in text and "written answer, graded by hand" in text
    assert client.get(f"/teach/courses/{course.slug}/assignments/nope").status_code == 404
    auth.logout()
    auth.login("other@test.org")
    assert client.get(f"/teach/courses/{course.slug}/assignments/first").status_code == 404

"""The instructor's pages: the courses I teach and the cohorts taking them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.orm import selectinload

from lms.access import guard_blueprint
from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentChange,
    AssignmentNotebook,
    Cohort,
    Course,
    Role,
    cohort_courses,
)
from lms.queries import enrolments, schedules
from lms.scopes import may_see, taught_course_ids
from lms.services import labs

bp = Blueprint("instructor", __name__, url_prefix="/teach")
guard_blueprint(bp, lambda user: user.is_admin or user.has_role(Role.INSTRUCTOR))


@bp.get("/")
def home() -> ResponseReturnValue:
    courses = enrolments.courses(taught_course_ids(current_user))
    counts = enrolments.course_learner_counts([c.id for c in courses])
    return render_template("instructor/home.html", courses=courses, counts=counts)


@bp.get("/courses/<slug>")
def course(slug: str) -> ResponseReturnValue:
    found = _my_course(slug)
    cohorts = _cohorts_taking(found)
    assignments = db.session.scalars(
        sa.select(Assignment)
        .where(Assignment.course_id == found.id)
        .options(selectinload(Assignment.releases))
        .order_by(Assignment.active.desc(), Assignment.position)
    ).all()
    return render_template(
        "instructor/course.html", course=found, cohorts=cohorts, assignments=assignments
    )


@bp.get("/courses/<slug>/labs")
def course_labs(slug: str) -> ResponseReturnValue:
    """Labs open now and kernel minutes, per cohort taking the course."""
    found = _my_course(slug)
    return render_template(
        "labs/overview.html",
        name=found.title,
        back=url_for(".course", slug=found.slug),
        **labs.overview(_cohorts_taking(found)),
    )


def _cohorts_taking(course: Course) -> list[Cohort]:
    """The cohorts whose program includes the course, newest first."""
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
            .where(cohort_courses.c.course_id == course.id)
            .options(selectinload(Cohort.program))
            .order_by(Cohort.starts_on.desc())
        )
    )


def _my_course(slug: str) -> Course:
    found = db.session.scalar(sa.select(Course).where(Course.slug == slug))
    # Someone else's course is answered like a missing one: its existence is not disclosed.
    if found is None or not may_see(taught_course_ids(current_user), found.id):
        abort(404)
    return found


def _my_assignment(slug: str, assignment_slug: str) -> tuple[Course, Assignment]:
    """One of my courses and one of its assignments, or 404."""
    course = _my_course(slug)
    found = db.session.scalar(
        sa.select(Assignment).where(
            Assignment.course_id == course.id, Assignment.slug == assignment_slug
        )
    )
    if found is None:
        abort(404)
    return course, found


@bp.get("/courses/<slug>/assignments/<assignment_slug>")
def assignment(slug: str, assignment_slug: str) -> ResponseReturnValue:
    found = _my_course(slug)
    item = db.session.scalar(
        sa.select(Assignment)
        .where(Assignment.course_id == found.id, Assignment.slug == assignment_slug)
        .options(
            selectinload(Assignment.notebooks).selectinload(AssignmentNotebook.cells),
            selectinload(Assignment.releases),
        )
    )
    if item is None:
        abort(404)
    changes = db.session.scalars(
        sa.select(AssignmentChange)
        .where(AssignmentChange.assignment_id == item.id)
        .order_by(AssignmentChange.changed_at.desc())
    ).all()
    return render_template(
        "instructor/assignment.html",
        course=found,
        assignment=item,
        changes=changes,
        schedules=schedules.assignment_schedules(item.id),
    )

"""The instructor's pages: the courses I teach and the cohorts taking them."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from lms.access import guard_blueprint
from lms.instructor.lookups import my_course
from lms.models import (
    Role,
)
from lms.queries import coursework, enrolments, schedules
from lms.scopes import taught_course_ids
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
    found = my_course(slug)
    return render_template(
        "instructor/course.html",
        course=found,
        cohorts=enrolments.course_cohorts_with_programs(found.id),
        assignments=coursework.course_assignments(found.id),
    )


@bp.get("/courses/<slug>/labs")
def course_labs(slug: str) -> ResponseReturnValue:
    """Labs open now and kernel minutes, per cohort taking the course."""
    found = my_course(slug)
    return render_template(
        "labs/overview.html",
        name=found.title,
        back=url_for(".course", slug=found.slug),
        **labs.overview(enrolments.course_cohorts_with_programs(found.id)),
    )


@bp.get("/courses/<slug>/assignments/<assignment_slug>")
def assignment(slug: str, assignment_slug: str) -> ResponseReturnValue:
    found = my_course(slug)
    item = coursework.course_assignment_in_full(found.id, assignment_slug)
    if item is None:
        abort(404)
    return render_template(
        "instructor/assignment.html",
        course=found,
        assignment=item,
        changes=coursework.assignment_changes(item.id),
        schedules=schedules.assignment_schedules(item.id),
    )

"""The learner's cohort, course and assignment found from a URL's slugs: anything outside
the learner's own cohorts is answered like a missing one (404)."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from lms.models import Cohort, Course
from lms.queries import enrolments, schedules


def cohort_course(cohort_slug: str, course_slug: str) -> tuple[Cohort, Course]:
    """The cohort (which the learner must be in) and one of its courses, or 404."""
    enrolment = enrolments.learner_enrolment(current_user.id, cohort_slug)
    if enrolment is None:
        abort(404)
    course = next((c for c in enrolment.cohort.courses if c.slug == course_slug), None)
    if course is None:
        abort(404)
    return enrolment.cohort, course


def scheduled_assignment(
    cohort: Cohort, course: Course, assignment_slug: str
) -> schedules.ScheduledAssignment:
    """The course's active assignment with that slug as the cohort meets it, or 404."""
    row = next(
        (
            r
            for r in schedules.cohort_course_assignments(cohort, course)
            if r.assignment.slug == assignment_slug
        ),
        None,
    )
    if row is None:
        abort(404)
    return row

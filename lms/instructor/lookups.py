"""The instructor's courses and assignments found from a URL's slugs: someone else's course is
answered like a missing one (404), so its existence is not disclosed."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from lms.models import Assignment, Course
from lms.queries import coursework, directory
from lms.scopes import may_see, taught_course_ids


def my_course(slug: str) -> Course:
    """One of the courses I teach (every course for an admin), or 404."""
    found = directory.course_by_slug(slug)
    if found is None or not may_see(taught_course_ids(current_user), found.id):
        abort(404)
    return found


def my_assignment(slug: str, assignment_slug: str) -> tuple[Course, Assignment]:
    """One of my courses and one of its assignments, or 404."""
    course = my_course(slug)
    found = coursework.course_assignment(course.id, assignment_slug)
    if found is None:
        abort(404)
    return course, found

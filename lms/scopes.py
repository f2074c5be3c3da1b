"""What a person's role grants reach: the programs they coordinate, the courses they teach.
Plain reads of the grants, used by views, services and exports alike (the web's guards are in
lms.access)."""

from __future__ import annotations

from lms.models import Role, User


def coordinated_program_ids(user: User) -> set[int] | None:
    """Programs the user coordinates; None means every program (site admin)."""
    if user.is_admin:
        return None
    return {g.program_id for g in user.grants if g.role == Role.COORDINATOR and g.program_id}


def taught_course_ids(user: User) -> set[int] | None:
    """Courses the user teaches; None means every course (site admin)."""
    if user.is_admin:
        return None
    return {g.course_id for g in user.grants if g.role == Role.INSTRUCTOR and g.course_id}


def may_see(scope: set[int] | None, object_id: int) -> bool:
    return scope is None or object_id in scope

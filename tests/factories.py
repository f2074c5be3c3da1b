"""Small builders for test data, going through the services like the app does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from lms.models import Cohort, Course, Organisation, OrganisationKind, Program, Role, User
from lms.services import programs, users
from tests.conftest import PASSWORD


def user(email: str, *, password: str | None = PASSWORD, name: str = "") -> User:
    return users.create_user(email, name or email.split("@")[0].title(), password)


def organisation(
    name: str = "Gwangju City", kind: OrganisationKind = OrganisationKind.CITY
) -> Organisation:
    return programs.create_organisation(name, kind)


def course(slug: str = "python-numpy-for-ai", title: str = "Python and NumPy for AI") -> Course:
    return programs.create_course(slug, title)


def program(name: str = "Gwangju AI School", target: int = 1200) -> Program:
    return programs.create_program(name, target, date(2027, 12, 31))


def cohort(
    prog: Program, name: str = "Spring", courses: Sequence[Course] = (), slug: str | None = None
) -> Cohort:
    return programs.create_cohort(
        prog, name, date(2026, 3, 1), date(2026, 8, 31), courses=courses, slug=slug
    )


def admin(email: str = "admin@test.org") -> User:
    u = user(email)
    users.grant_role(u, Role.ADMIN)
    return u


def coordinator(prog: Program, email: str = "coordinator@test.org") -> User:
    u = user(email)
    users.grant_role(u, Role.COORDINATOR, program=prog)
    return u


def instructor(crs: Course, email: str = "instructor@test.org") -> User:
    u = user(email)
    users.grant_role(u, Role.INSTRUCTOR, course=crs)
    return u


def learner(coh: Cohort, email: str = "learner@test.org") -> User:
    u = user(email)
    programs.enrol(u, coh)
    return u


def shown_moment(moment: datetime) -> str:
    """A moment as an English reader who chose no time zone sees it on a page (UTC), written
    out here by hand so that the tests check lms.formatting rather than call it."""
    m = moment.astimezone(UTC)
    hour = m.hour % 12 or 12
    return f"{m:%b} {m.day}, {m.year}, {hour}:{m:%M}\u202f{'AM' if m.hour < 12 else 'PM'} UTC"

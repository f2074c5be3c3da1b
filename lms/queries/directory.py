"""The directory of the site: users, programs, cohorts, organisations and courses, listed for
the admin's pages and choice lists, counted, and found by slug; a cohort's invitation rounds."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from lms.extensions import db
from lms.models import (
    Cohort,
    Course,
    Enrolment,
    InvitationBatch,
    Organisation,
    Program,
    User,
)


def _options(
    id_column: InstrumentedAttribute[int], label: InstrumentedAttribute[str]
) -> list[tuple[int, str]]:
    query = sa.select(id_column, label).order_by(label)
    return list(db.session.execute(query).tuples())


def program_options() -> list[tuple[int, str]]:
    """(id, name) of every program, by name."""
    return _options(Program.id, Program.name)


def organisation_options() -> list[tuple[int, str]]:
    """(id, name) of every organisation, by name."""
    return _options(Organisation.id, Organisation.name)


def course_options() -> list[tuple[int, str]]:
    """(id, title) of every course, by title."""
    return _options(Course.id, Course.title)


def _count(model: type[User | Program | Cohort | Organisation | Enrolment]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def totals() -> dict[str, int]:
    """How many users, programs, cohorts, organisations and enrolments the site holds."""
    return {
        "users": _count(User),
        "programs": _count(Program),
        "cohorts": _count(Cohort),
        "organisations": _count(Organisation),
        "enrolments": _count(Enrolment),
    }


def users_matching(text: str) -> sa.Select[tuple[User]]:
    """Users whose email or name contains text (any case; everyone when empty), with their
    grants, by email: a select to paginate."""
    query = sa.select(User).options(selectinload(User.grants)).order_by(User.email)
    if text:
        pattern = f"%{text.lower()}%"
        query = query.where(
            sa.or_(User.email.like(pattern), sa.func.lower(User.name).like(pattern))
        )
    return query


def programs() -> list[Program]:
    """Every program, by name."""
    return list(db.session.scalars(sa.select(Program).order_by(Program.name)))


def organisations() -> list[Organisation]:
    """Every organisation, by name."""
    return list(db.session.scalars(sa.select(Organisation).order_by(Organisation.name)))


def cohorts() -> list[Cohort]:
    """Every cohort with its program and organisation, newest first."""
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .options(selectinload(Cohort.program), selectinload(Cohort.organisation))
            .order_by(Cohort.starts_on.desc())
        )
    )


def courses_with_ids(course_ids: Sequence[int]) -> list[Course]:
    """The courses with the given ids (unknown ids are left out)."""
    return list(db.session.scalars(sa.select(Course).where(Course.id.in_(course_ids))))


def program_by_slug(slug: str) -> Program | None:
    """The program with that slug, if any."""
    return db.session.scalar(sa.select(Program).where(Program.slug == slug))


def cohort_by_slug(slug: str) -> Cohort | None:
    """The cohort with that slug, if any."""
    return db.session.scalar(sa.select(Cohort).where(Cohort.slug == slug))


def course_by_slug(slug: str) -> Course | None:
    """The course with that slug, if any."""
    return db.session.scalar(sa.select(Course).where(Course.slug == slug))


def invitation_batches(cohort_id: int, limit: int = 5) -> list[InvitationBatch]:
    """The cohort's most recent invitation rounds, newest first."""
    return list(
        db.session.scalars(
            sa.select(InvitationBatch)
            .where(InvitationBatch.cohort_id == cohort_id)
            .order_by(InvitationBatch.id.desc())
            .limit(limit)
        )
    )

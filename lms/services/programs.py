"""Programs, cohorts, partner organisations, courses and enrolments."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

import sqlalchemy as sa

from lms.extensions import db
from lms.models import (
    Assignment,
    Cohort,
    CohortAssignment,
    Course,
    Enrolment,
    EnrolmentStatus,
    Organisation,
    OrganisationKind,
    Program,
    User,
    cohort_courses,
)
from lms.services import ServiceError

SluggedT = TypeVar("SluggedT", Program, Cohort, Organisation, Course)

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class ProgramError(ServiceError):
    pass


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64]


def _check_slug(model: type[Program | Cohort | Organisation | Course], slug: str) -> str:
    if not SLUG_RE.match(slug):
        raise ProgramError(f"Slug {slug!r} must be lowercase letters, digits and single hyphens.")
    if db.session.scalar(sa.select(model.id).where(model.slug == slug)) is not None:
        raise ProgramError(f"The slug {slug!r} is already taken.")
    return slug


def create_organisation(name: str, kind: OrganisationKind, slug: str | None = None) -> Organisation:
    name = name.strip()
    if not name:
        raise ProgramError("An organisation needs a name.")
    if db.session.scalar(sa.select(Organisation.id).where(Organisation.name == name)):
        raise ProgramError(f"An organisation named {name!r} already exists.")
    org = Organisation(name=name, kind=kind, slug=_check_slug(Organisation, slug or slugify(name)))
    db.session.add(org)
    db.session.commit()
    return org


def create_course(slug: str, title: str, summary: str = "") -> Course:
    course = Course(slug=_check_slug(Course, slug), title=title.strip(), summary=summary)
    db.session.add(course)
    db.session.commit()
    return course


def create_program(
    name: str,
    target_learners: int,
    target_date: date,
    *,
    slug: str | None = None,
    description: str = "",
) -> Program:
    name = name.strip()
    if not name:
        raise ProgramError("A program needs a name.")
    if target_learners <= 0:
        raise ProgramError("The learner target must be a positive number.")
    if db.session.scalar(sa.select(Program.id).where(Program.name == name)):
        raise ProgramError(f"A program named {name!r} already exists.")
    program = Program(
        name=name,
        slug=_check_slug(Program, slug or slugify(name)),
        target_learners=target_learners,
        target_date=target_date,
        description=description,
    )
    db.session.add(program)
    db.session.commit()
    return program


def create_cohort(
    program: Program,
    name: str,
    starts_on: date,
    ends_on: date,
    *,
    slug: str | None = None,
    organisation: Organisation | None = None,
    courses: Sequence[Course] = (),
) -> Cohort:
    name = name.strip()
    if not name:
        raise ProgramError("A cohort needs a name.")
    if ends_on < starts_on:
        raise ProgramError("A cohort cannot end before it starts.")
    cohort = Cohort(
        program=program,
        name=name,
        slug=_check_slug(Cohort, slug or slugify(f"{program.slug}-{name}")),
        starts_on=starts_on,
        ends_on=ends_on,
        organisation=organisation,
        courses=list(courses),
    )
    db.session.add(cohort)
    schedule_cohorts()
    db.session.commit()
    return cohort


def enrol(user: User, cohort: Cohort) -> Enrolment:
    """Enrol a learner; enrolling one who already is returns the existing enrolment."""
    existing = db.session.scalar(
        sa.select(Enrolment).where(Enrolment.user_id == user.id, Enrolment.cohort_id == cohort.id)
    )
    if existing is not None:
        return existing
    enrolment = Enrolment(user=user, cohort=cohort, status=EnrolmentStatus.ENROLLED)
    db.session.add(enrolment)
    db.session.commit()
    return enrolment


def _by_slug(model: type[SluggedT], slug: str, what: str) -> SluggedT:
    found = db.session.scalar(sa.select(model).where(model.slug == slug))
    if found is None:
        raise ProgramError(f"No {what} with slug {slug!r}.")
    return found


def get_cohort(slug: str) -> Cohort:
    return _by_slug(Cohort, slug, "cohort")


def get_program(slug: str) -> Program:
    return _by_slug(Program, slug, "program")


def get_organisation(slug: str) -> Organisation:
    return _by_slug(Organisation, slug, "organisation")


def get_course(slug: str) -> Course:
    return _by_slug(Course, slug, "course")


def schedule_cohorts() -> int:
    """Give every cohort dates for each active assignment of its courses that has none.

    Opens when the cohort starts; due `due_days` after that, at the end of the day (UTC).
    Existing dates (perhaps moved by an instructor) are left as they are. Does not commit.
    """
    db.session.flush()
    rows = db.session.execute(
        sa.select(Cohort.id, Cohort.starts_on, Assignment.id, Assignment.due_days)
        .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
        .join(Assignment, Assignment.course_id == cohort_courses.c.course_id)
        .outerjoin(
            CohortAssignment,
            sa.and_(
                CohortAssignment.cohort_id == Cohort.id,
                CohortAssignment.assignment_id == Assignment.id,
            ),
        )
        .where(Assignment.active.is_(True), CohortAssignment.id.is_(None))
    ).all()
    for cohort_id, starts_on, assignment_id, due_days in rows:
        opens = datetime.combine(starts_on, time(0, 0), tzinfo=UTC)
        due = datetime.combine(starts_on + timedelta(days=due_days), time(23, 59), tzinfo=UTC)
        db.session.add(
            CohortAssignment(
                cohort_id=cohort_id, assignment_id=assignment_id, opens_at=opens, due_at=due
            )
        )
    return len(rows)

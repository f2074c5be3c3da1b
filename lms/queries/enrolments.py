"""Enrolment counts: who counts toward a target, per program and course, a learner's
enrolments and cohorts, a cohort's roster and the cohorts taking a course. One definition of
enrolled and completed (COUNTED, COMPLETED), used by every page, export and the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from lms.extensions import db
from lms.models import (
    Cohort,
    Course,
    Enrolment,
    EnrolmentStatus,
    Program,
    User,
    cohort_courses,
)

# Enrolment states that count toward a target, and those past each milestone.
COUNTED = (EnrolmentStatus.ENROLLED, EnrolmentStatus.COMPLETED, EnrolmentStatus.CERTIFIED)
COMPLETED = (EnrolmentStatus.COMPLETED, EnrolmentStatus.CERTIFIED)


@dataclass(frozen=True)
class Progress:
    """Learner counts of one program or cohort against a target."""

    target: int
    enrolled: int
    completed: int
    certified: int

    @property
    def completed_percent(self) -> float:
        return 100.0 * self.completed / self.target if self.target else 0.0

    @property
    def enrolled_percent(self) -> float:
        return 100.0 * self.enrolled / self.target if self.target else 0.0


def _counts() -> tuple[sa.ColumnElement[int], ...]:
    return (
        sa.func.count(Enrolment.id).filter(Enrolment.status.in_(COUNTED)),
        sa.func.count(Enrolment.id).filter(Enrolment.status.in_(COMPLETED)),
        sa.func.count(Enrolment.id).filter(Enrolment.status == EnrolmentStatus.CERTIFIED),
    )


def program_progress(program_ids: set[int] | None) -> list[tuple[Program, Progress]]:
    """Each program (all when program_ids is None) with its counts, by name."""
    query = (
        sa.select(Program, *_counts())
        .outerjoin(Cohort, Cohort.program_id == Program.id)
        .outerjoin(Enrolment, Enrolment.cohort_id == Cohort.id)
        .group_by(Program.id)
        .order_by(Program.name)
    )
    if program_ids is not None:
        query = query.where(Program.id.in_(program_ids))
    return [
        (program, Progress(program.target_learners, enrolled, completed, certified))
        for program, enrolled, completed, certified in db.session.execute(query).tuples()
    ]


def course_learner_counts(course_ids: Sequence[int]) -> dict[int, int]:
    """Learners (not withdrawn) in cohorts that take each course."""
    query = (
        sa.select(cohort_courses.c.course_id, sa.func.count(Enrolment.id))
        .join(Enrolment, Enrolment.cohort_id == cohort_courses.c.cohort_id)
        .where(cohort_courses.c.course_id.in_(course_ids), Enrolment.status.in_(COUNTED))
        .group_by(cohort_courses.c.course_id)
    )
    return dict(db.session.execute(query).tuples().all())


def courses(course_ids: set[int] | None) -> list[Course]:
    query = sa.select(Course).order_by(Course.title)
    if course_ids is not None:
        query = query.where(Course.id.in_(course_ids))
    return list(db.session.scalars(query))


def learner_enrolment(user_id: int, cohort_slug: str) -> Enrolment | None:
    """The user's live enrolment in the cohort (None if not enrolled or withdrawn)."""
    return db.session.scalar(
        sa.select(Enrolment)
        .join(Cohort, Cohort.id == Enrolment.cohort_id)
        .where(
            Enrolment.user_id == user_id,
            Cohort.slug == cohort_slug,
            Enrolment.status != EnrolmentStatus.WITHDRAWN,
        )
    )


def course_cohorts(course_id: int) -> list[Cohort]:
    """The cohorts taking the course, newest first."""
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
            .where(cohort_courses.c.course_id == course_id)
            .order_by(Cohort.starts_on.desc(), Cohort.name)
        )
    )


def course_cohorts_with_programs(course_id: int) -> list[Cohort]:
    """The cohorts taking the course with their programs, newest first."""
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
            .where(cohort_courses.c.course_id == course_id)
            .options(selectinload(Cohort.program))
            .order_by(Cohort.starts_on.desc())
        )
    )


def course_cohort(course_id: int, cohort_slug: str) -> Cohort | None:
    """The cohort with that slug if it takes the course, else None."""
    return db.session.scalar(
        sa.select(Cohort)
        .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
        .where(Cohort.slug == cohort_slug, cohort_courses.c.course_id == course_id)
    )


def learner_cohorts(user_id: int, course_id: int) -> list[Cohort]:
    """The cohorts the user learns in (not withdrawn) that take the course, newest first."""
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .join(Enrolment, Enrolment.cohort_id == Cohort.id)
            .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
            .where(
                Enrolment.user_id == user_id,
                Enrolment.status != EnrolmentStatus.WITHDRAWN,
                cohort_courses.c.course_id == course_id,
            )
            .order_by(Cohort.starts_on.desc(), Cohort.id)
        )
    )


def live_enrolments(user_id: int) -> list[Enrolment]:
    """The user's enrolments that are not withdrawn, newest cohort first (then by cohort id),
    each cohort with its courses and program loaded."""
    return list(
        db.session.scalars(
            sa.select(Enrolment)
            .join(Enrolment.cohort)
            .where(Enrolment.user_id == user_id, Enrolment.status != EnrolmentStatus.WITHDRAWN)
            .options(
                contains_eager(Enrolment.cohort).selectinload(Cohort.courses),
                contains_eager(Enrolment.cohort).selectinload(Cohort.program),
            )
            .order_by(Cohort.starts_on.desc(), Cohort.id)
        )
    )


def user_enrolments(user_id: int) -> list[Enrolment]:
    """Every enrolment of the user, withdrawn ones too, with its cohort."""
    return list(
        db.session.scalars(
            sa.select(Enrolment)
            .where(Enrolment.user_id == user_id)
            .options(selectinload(Enrolment.cohort))
        )
    )


def cohort_roster(cohort_id: int) -> sa.Select[tuple[Enrolment]]:
    """Every enrolment in the cohort, withdrawn ones too, with its user, by email: a select
    to filter further or paginate."""
    return (
        sa.select(Enrolment)
        .join(Enrolment.user)
        .where(Enrolment.cohort_id == cohort_id)
        .options(selectinload(Enrolment.user))
        .order_by(User.email)
    )


def cohort_enrolment(cohort_id: int, user_id: int) -> Enrolment | None:
    """The user's enrolment in the cohort, whatever its state, if any."""
    return db.session.scalar(
        sa.select(Enrolment).where(Enrolment.cohort_id == cohort_id, Enrolment.user_id == user_id)
    )

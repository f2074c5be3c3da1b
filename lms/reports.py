"""Read-only queries for pages, exports and the API. Nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lms.extensions import db
from lms.models import (
    Assignment,
    Cohort,
    CohortAssignment,
    Course,
    Enrolment,
    EnrolmentStatus,
    Program,
    Release,
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


def cohort_progress(program: Program) -> list[tuple[Cohort, Progress]]:
    """The program's cohorts with their counts, measured against the program's target."""
    query = (
        sa.select(Cohort, *_counts())
        .outerjoin(Enrolment, Enrolment.cohort_id == Cohort.id)
        .where(Cohort.program_id == program.id)
        .group_by(Cohort.id)
        .order_by(Cohort.starts_on, Cohort.name)
    )
    return [
        (cohort, Progress(program.target_learners, enrolled, completed, certified))
        for cohort, enrolled, completed, certified in db.session.execute(query).tuples()
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


@dataclass(frozen=True)
class ScheduledAssignment:
    """An assignment as one cohort meets it: its dates and whether a release exists."""

    assignment: Assignment
    opens_at: datetime | None
    due_at: datetime | None
    release: Release | None

    def is_open(self, now: datetime) -> bool:
        return self.opens_at is not None and self.opens_at <= now


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


def cohort_course_assignments(cohort: Cohort, course: Course) -> list[ScheduledAssignment]:
    """The course's active assignments in order, with this cohort's dates and the release."""
    query = (
        sa.select(Assignment, CohortAssignment.opens_at, CohortAssignment.due_at, Release)
        .outerjoin(
            CohortAssignment,
            sa.and_(
                CohortAssignment.assignment_id == Assignment.id,
                CohortAssignment.cohort_id == cohort.id,
            ),
        )
        .outerjoin(
            Release,
            sa.and_(Release.assignment_id == Assignment.id, Release.version == Assignment.version),
        )
        .where(Assignment.course_id == course.id, Assignment.active.is_(True))
        .order_by(Assignment.position)
    )
    return [
        ScheduledAssignment(assignment, opens_at, due_at, release)
        for assignment, opens_at, due_at, release in db.session.execute(query).tuples()
    ]

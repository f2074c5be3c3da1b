"""Schedules: when each assignment opens and is due in a cohort, and what applies to one
learner (due date with their extension, late penalty). One definition of the due date with
extension, used by every page, export, rule and the API."""

from __future__ import annotations

import math
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
    Extension,
    Release,
    Submission,
)


@dataclass(frozen=True)
class ScheduledAssignment:
    """An assignment as one cohort meets it: its dates and whether a release exists."""

    assignment: Assignment
    opens_at: datetime | None
    due_at: datetime | None
    release: Release | None

    def is_open(self, now: datetime) -> bool:
        return self.opens_at is not None and self.opens_at <= now


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


def assignment_schedules(assignment_id: int) -> list[tuple[Cohort, CohortAssignment]]:
    """Each cohort that has the assignment, with its dates and late policy, newest first."""
    return list(
        db.session.execute(
            sa.select(Cohort, CohortAssignment)
            .join(CohortAssignment, CohortAssignment.cohort_id == Cohort.id)
            .where(CohortAssignment.assignment_id == assignment_id)
            .order_by(Cohort.starts_on.desc(), Cohort.name)
        ).tuples()
    )


DAY_SECONDS = 86400


@dataclass(frozen=True)
class Deadline:
    """What applies to one learner: the due date (extension included) and the late rule."""

    due_at: datetime
    extended: bool
    penalty_per_day: float
    penalty_cap: float
    cutoff_at: datetime | None

    def late_seconds(self, submitted_at: datetime) -> int:
        return max(0, int((submitted_at - self.due_at).total_seconds()))

    def penalty_percent(self, submitted_at: datetime) -> float:
        """Percent taken off a score submitted at that moment: per started day late, capped;
        everything after the cut-off."""
        if self.cutoff_at is not None and submitted_at > self.cutoff_at:
            return 100.0
        late_days = math.ceil(self.late_seconds(submitted_at) / DAY_SECONDS)
        return min(self.penalty_cap, self.penalty_per_day * late_days)

    @classmethod
    def of(cls, scheduled: CohortAssignment, extended_to: datetime | None) -> Deadline:
        """The cohort's rule, with the learner's extension (if any) as the due date; an
        extension past the cut-off moves the cut-off with it."""
        cutoff = scheduled.cutoff_at
        if cutoff is not None and extended_to is not None:
            cutoff = max(cutoff, extended_to)
        return cls(
            due_at=extended_to or scheduled.due_at,
            extended=extended_to is not None,
            penalty_per_day=scheduled.late_penalty_per_day,
            penalty_cap=scheduled.late_penalty_cap,
            cutoff_at=cutoff,
        )

    @property
    def has_penalty(self) -> bool:
        return self.penalty_per_day > 0 or self.cutoff_at is not None


def with_penalty(raw: float, percent: float) -> float:
    """A score less a late penalty, rounded as every page, export and rule shows it."""
    return round(raw * (1 - percent / 100), 4)


@dataclass(frozen=True)
class Lateness:
    """How late one attempt is by the rule that applies to its learner now (an extension
    granted after submitting counts), and the percent that costs."""

    due_at: datetime | None
    extended: bool
    late_seconds: int
    penalty_percent: float


ON_TIME = Lateness(due_at=None, extended=False, late_seconds=0, penalty_percent=0.0)


def lateness(attempts: Sequence[tuple[int, int, int, datetime]]) -> list[Lateness]:
    """The lateness of each (cohort id, assignment id, user id, submitted at), extensions
    included; on time where no dates are set. Two queries, however many attempts."""
    if not attempts:
        return []
    scheduled = {
        (ca.cohort_id, ca.assignment_id): ca
        for ca in db.session.scalars(
            sa.select(CohortAssignment).where(
                sa.tuple_(CohortAssignment.cohort_id, CohortAssignment.assignment_id).in_(
                    {(cohort_id, assignment_id) for cohort_id, assignment_id, _, _ in attempts}
                )
            )
        )
    }
    extensions = {
        (ca_id, user_id): due_at
        for ca_id, user_id, due_at in db.session.execute(
            sa.select(Extension.cohort_assignment_id, Extension.user_id, Extension.due_at).where(
                Extension.cohort_assignment_id.in_([ca.id for ca in scheduled.values()])
            )
        ).tuples()
    }
    found = []
    for cohort_id, assignment_id, user_id, submitted_at in attempts:
        ca = scheduled.get((cohort_id, assignment_id))
        if ca is None:
            found.append(ON_TIME)
            continue
        deadline = Deadline.of(ca, extensions.get((ca.id, user_id)))
        found.append(
            Lateness(
                due_at=deadline.due_at,
                extended=deadline.extended,
                late_seconds=deadline.late_seconds(submitted_at),
                penalty_percent=deadline.penalty_percent(submitted_at),
            )
        )
    return found


def late_penalties(attempts: Sequence[tuple[int, int, int, datetime]]) -> list[float]:
    """The percent off each (cohort id, assignment id, user id, submitted at): see lateness."""
    return [found.penalty_percent for found in lateness(attempts)]


def lateness_of(submission: Submission) -> Lateness:
    return lateness(
        [
            (
                submission.cohort_id,
                submission.assignment_id,
                submission.user_id,
                submission.submitted_at,
            )
        ]
    )[0]


def extended_due_dates(
    user_id: int, cohort_id: int | None = None
) -> dict[tuple[int, int], datetime]:
    """A learner's extensions as {(cohort id, assignment id): their due date}, in one query
    (pages and the API that list many assignments show the learner's own due date)."""
    query = (
        sa.select(CohortAssignment.cohort_id, CohortAssignment.assignment_id, Extension.due_at)
        .join(Extension, Extension.cohort_assignment_id == CohortAssignment.id)
        .where(Extension.user_id == user_id)
    )
    if cohort_id is not None:
        query = query.where(CohortAssignment.cohort_id == cohort_id)
    return {
        (cohort, assignment): due_at
        for cohort, assignment, due_at in db.session.execute(query).tuples()
    }


def schedule(cohort_id: int, assignment_id: int) -> CohortAssignment | None:
    return db.session.scalar(
        sa.select(CohortAssignment).where(
            CohortAssignment.cohort_id == cohort_id,
            CohortAssignment.assignment_id == assignment_id,
        )
    )


def deadline_for(scheduled: CohortAssignment, user_id: int) -> Deadline:
    extension = db.session.scalar(
        sa.select(Extension).where(
            Extension.cohort_assignment_id == scheduled.id, Extension.user_id == user_id
        )
    )
    return Deadline.of(scheduled, extension.due_at if extension is not None else None)

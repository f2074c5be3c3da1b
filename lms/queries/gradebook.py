"""The gradebook of a cohort and one learner's progress in it: the latest attempt at each
required assignment, its score after the late penalty, passed or not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lms.extensions import db
from lms.models import (
    Assignment,
    Cohort,
    Course,
    Enrolment,
    EnrolmentStatus,
    Grade,
    Submission,
    User,
    cohort_courses,
)
from lms.queries import marking, schedules


@dataclass(frozen=True)
class Attempt:
    """A learner's latest attempt at an assignment in a cohort, with its score as shown
    everywhere: the sum of its grades less the late penalty that applies now."""

    submission_id: int
    attempt: int
    submitted_at: datetime
    raw: float | None  # None until anything is graded
    penalty_percent: float

    @property
    def final(self) -> float | None:
        if self.raw is None:
            return None
        return schedules.with_penalty(self.raw, self.penalty_percent)


def required_assignments(cohort_id: int) -> list[Assignment]:
    """The active assignments of the cohort's courses, course by course in order."""
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .join(cohort_courses, cohort_courses.c.course_id == Assignment.course_id)
            .join(Course, Course.id == Assignment.course_id)
            .where(cohort_courses.c.cohort_id == cohort_id, Assignment.active.is_(True))
            .order_by(Course.title, Assignment.position)
        )
    )


def latest_attempts(
    cohort_id: int, assignment_ids: Sequence[int], users: set[int] | None = None
) -> dict[tuple[int, int], Attempt]:
    """(user id, assignment id) -> the latest attempt, for the cohort's learners (or those of
    `users`) at the given assignments. Three queries, however many learners."""
    if not assignment_ids or (users is not None and not users):
        return {}
    last = marking.latest_attempt_numbers(assignment_ids, cohort_id, users)
    rows = db.session.execute(
        sa.select(
            Submission.id,
            Submission.user_id,
            Submission.assignment_id,
            Submission.attempt,
            Submission.submitted_at,
            sa.func.sum(sa.func.coalesce(Grade.manual_score, Grade.auto_score)),
        )
        .join(last, marking.is_latest(last))
        .outerjoin(Grade, Grade.submission_id == Submission.id)
        .group_by(
            Submission.id,
            Submission.user_id,
            Submission.assignment_id,
            Submission.attempt,
            Submission.submitted_at,
        )
    ).tuples()
    found = list(rows)
    penalties = schedules.late_penalties(
        [(cohort_id, assignment_id, user_id, at) for _, user_id, assignment_id, _, at, _ in found]
    )
    return {
        (user_id, assignment_id): Attempt(
            submission_id, attempt, at, None if raw is None else float(raw), penalty
        )
        for (submission_id, user_id, assignment_id, attempt, at, raw), penalty in zip(
            found, penalties, strict=True
        )
    }


@dataclass(frozen=True)
class GradebookRow:
    learner: User
    enrolment: Enrolment
    attempts: dict[int, Attempt]  # assignment id -> latest attempt

    def passed(self, assignments: Sequence[Assignment]) -> int:
        count = 0
        for assignment in assignments:
            attempt = self.attempts.get(assignment.id)
            if assignment.passed_by(attempt.final if attempt is not None else None):
                count += 1
        return count


@dataclass(frozen=True)
class Gradebook:
    cohort: Cohort
    assignments: list[Assignment]
    rows: list[GradebookRow]

    def sort(self, key: str, descending: bool = False) -> list[GradebookRow]:
        """Rows by "name", "email", "status", "passed" or an assignment id ("a12"); learners
        without a score go last either way."""

        def by(row: GradebookRow) -> tuple[bool, Any]:
            if key == "email":
                return (False, row.learner.email.casefold())
            if key == "status":
                return (False, STATUS_ORDER.index(row.enrolment.status))
            if key == "passed":
                return (False, row.passed(self.assignments))
            if key.startswith("a") and key[1:].isdigit():
                attempt = row.attempts.get(int(key[1:]))
                final = attempt.final if attempt is not None else None
                return (final is None, final if final is not None else 0.0)
            return (False, row.learner.name.casefold())

        ordered = sorted(self.rows, key=lambda r: r.learner.name.casefold())
        ordered.sort(key=by, reverse=descending)
        if descending:  # missing scores still last
            ordered.sort(key=lambda r: by(r)[0])
        return ordered


STATUS_ORDER = (
    EnrolmentStatus.WITHDRAWN,
    EnrolmentStatus.ENROLLED,
    EnrolmentStatus.COMPLETED,
    EnrolmentStatus.CERTIFIED,
)


def gradebook(cohort: Cohort) -> Gradebook:
    """Every learner of the cohort (withdrawn ones too) with the final score of their latest
    attempt at each required assignment. Four queries."""
    assignments = required_assignments(cohort.id)
    enrolments = db.session.execute(
        sa.select(Enrolment, User)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.cohort_id == cohort.id)
    ).tuples()
    attempts = latest_attempts(cohort.id, [a.id for a in assignments])
    per_user: dict[int, dict[int, Attempt]] = {}
    for (user_id, assignment_id), attempt in attempts.items():
        per_user.setdefault(user_id, {})[assignment_id] = attempt
    rows = [
        GradebookRow(user, enrolment, per_user.get(user.id, {})) for enrolment, user in enrolments
    ]
    return Gradebook(cohort, assignments, rows)


@dataclass(frozen=True)
class LearnerProgress:
    learner: User
    enrolment: Enrolment
    cohort: Cohort
    # (assignment, latest attempt or None, number of attempts), course by course.
    assignments: list[tuple[Assignment, Attempt | None, int]]

    @property
    def passed(self) -> int:
        return sum(
            1
            for assignment, attempt, _ in self.assignments
            if attempt is not None and assignment.passed_by(attempt.final)
        )


def learner_progress(cohort: Cohort, user_id: int) -> LearnerProgress | None:
    """One learner's standing in the cohort; None when not (and never) enrolled in it."""
    found = db.session.execute(
        sa.select(Enrolment, User)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.cohort_id == cohort.id, Enrolment.user_id == user_id)
    ).first()
    if found is None:
        return None
    enrolment, user = found
    assignments = required_assignments(cohort.id)
    attempts = latest_attempts(cohort.id, [a.id for a in assignments], {user_id})
    counts = dict(
        db.session.execute(
            sa.select(Submission.assignment_id, sa.func.count(Submission.id))
            .where(Submission.cohort_id == cohort.id, Submission.user_id == user_id)
            .group_by(Submission.assignment_id)
        )
        .tuples()
        .all()
    )
    return LearnerProgress(
        user,
        enrolment,
        cohort,
        [(a, attempts.get((user_id, a.id)), counts.get(a.id, 0)) for a in assignments],
    )

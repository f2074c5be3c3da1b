"""The gradebook of a cohort and one learner's progress in it: the latest attempt at each
required assignment, its score after the late penalty, passed or not."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
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


def sorts_by_score(key: str) -> bool:
    """Whether a gradebook sorted by `key` needs every learner's scores to find its order."""
    return key == "passed" or (key.startswith("a") and key[1:].isdigit())


@dataclass(frozen=True)
class Gradebook:
    cohort: Cohort
    assignments: list[Assignment]
    rows: list[GradebookRow]

    @cached_property
    def shared_names(self) -> frozenset[str]:
        """Names (casefolded) that more than one learner of the cohort has: the pages show
        these learners' emails beside them, to tell them apart."""
        counts = Counter(row.learner.name.casefold() for row in self.rows)
        return frozenset(name for name, count in counts.items() if count > 1)

    def shares_name(self, learner: User) -> bool:
        return learner.name.casefold() in self.shared_names

    def sort(self, key: str, descending: bool = False) -> list[GradebookRow]:
        """Rows by "name", "email", "status", "passed" or an assignment id ("a12"); learners
        without a score go last either way; learners of the same name by email."""

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

        ordered = sorted(
            self.rows, key=lambda r: (r.learner.name.casefold(), r.learner.email.casefold())
        )
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


def gradebook(cohort: Cohort, learners: Collection[int] | None = None) -> Gradebook:
    """Every learner of the cohort (withdrawn ones too) with the final score of their latest
    attempt at each required assignment; with `learners`, the attempts of those only (the
    other rows have none). Four queries."""
    assignments = required_assignments(cohort.id)
    enrolments = db.session.execute(
        sa.select(Enrolment, User)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.cohort_id == cohort.id)
    ).tuples()
    per_user = _attempts_per_user(cohort.id, assignments, learners)
    rows = [
        GradebookRow(user, enrolment, per_user.get(user.id, {})) for enrolment, user in enrolments
    ]
    return Gradebook(cohort, assignments, rows)


def _attempts_per_user(
    cohort_id: int, assignments: Sequence[Assignment], learners: Collection[int] | None
) -> dict[int, dict[int, Attempt]]:
    users = None if learners is None else set(learners)
    per_user: dict[int, dict[int, Attempt]] = {}
    for (user_id, assignment_id), attempt in latest_attempts(
        cohort_id, [a.id for a in assignments], users
    ).items():
        per_user.setdefault(user_id, {})[assignment_id] = attempt
    return per_user


@dataclass(frozen=True)
class GradebookPage:
    book: Gradebook  # the whole cohort's rows, without attempts unless sorted by a score
    rows: list[GradebookRow]  # this page's, in order, with their attempts
    total: int
    page: int  # from 1
    pages: int


def gradebook_page(
    cohort: Cohort, sort: str, descending: bool, page: int, per_page: int
) -> GradebookPage:
    """One page of the gradebook in the order asked (see Gradebook.sort); a page number out of
    range gives the nearest page. Sorted by name, email or status, only the page's learners'
    attempts are read, not the whole cohort's. Five queries at most."""
    by_score = sorts_by_score(sort)
    book = gradebook(cohort, None if by_score else ())
    rows = book.sort(sort, descending)
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * per_page : page * per_page]
    if not by_score:
        per_user = _attempts_per_user(
            cohort.id, book.assignments, {row.learner.id for row in shown}
        )
        shown = [replace(row, attempts=per_user.get(row.learner.id, {})) for row in shown]
    return GradebookPage(book, shown, len(rows), page, pages)


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

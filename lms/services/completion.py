"""The completion rule: when a learner has completed a cohort.

A learner completes a cohort when, for every active assignment of the cohort's courses, the
final score of their latest attempt in that cohort (the sum of its grades less the late
penalty, as reports.SubmissionScore.final shows it) reaches the assignment's pass mark. A
cohort without active assignments completes nobody.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from lms.extensions import db
from lms.models import (
    Assignment,
    Enrolment,
    EnrolmentStatus,
    Grade,
    Submission,
    cohort_courses,
)
from lms.services import deadlines

# The states refresh() may move a learner between; withdrawn and certified are left alone.
REVIEWED = (EnrolmentStatus.ENROLLED, EnrolmentStatus.COMPLETED)


def refresh(cohort_id: int, user_ids: Iterable[int] | None = None) -> int:
    """Recompute completion of the cohort's learners (only user_ids when given): an enrolled
    learner who meets the rule is completed at the moment of the last of the passing
    submissions; a completed one who no longer meets it is enrolled again. Returns how many
    enrolments changed. A handful of queries per cohort, whatever its size; one transaction."""
    users = None if user_ids is None else set(user_ids)
    enrolments = _enrolments(cohort_id, users)
    if not enrolments:
        db.session.commit()
        return 0
    passed = passed_at(cohort_id, users)
    changed = 0
    for enrolment in enrolments:
        completed_at = passed.get(enrolment.user_id)
        if enrolment.status == EnrolmentStatus.ENROLLED and completed_at is not None:
            enrolment.status = EnrolmentStatus.COMPLETED
            enrolment.completed_at = completed_at
            changed += 1
        elif enrolment.status == EnrolmentStatus.COMPLETED and completed_at is None:
            enrolment.status = EnrolmentStatus.ENROLLED
            enrolment.completed_at = None
            changed += 1
    db.session.commit()
    return changed


def _enrolments(cohort_id: int, users: set[int] | None) -> list[Enrolment]:
    query = sa.select(Enrolment).where(
        Enrolment.cohort_id == cohort_id, Enrolment.status.in_(REVIEWED)
    )
    if users is not None:
        if not users:
            return []
        query = query.where(Enrolment.user_id.in_(users))
    return list(db.session.scalars(query))


def passed_at(cohort_id: int, users: set[int] | None = None) -> dict[int, datetime]:
    """Learner id -> when the last of their passing submissions came, for every learner of
    the cohort (or of users) who meets the rule now. Read-only; four queries."""
    pass_marks = dict(
        db.session.execute(
            sa.select(Assignment.id, Assignment.pass_mark)
            .join(cohort_courses, cohort_courses.c.course_id == Assignment.course_id)
            .where(cohort_courses.c.cohort_id == cohort_id, Assignment.active.is_(True))
        )
        .tuples()
        .all()
    )
    if not pass_marks:
        return {}

    # Each learner's latest attempt at each assignment in the cohort, with its raw score.
    latest = sa.select(
        Submission.user_id,
        Submission.assignment_id,
        sa.func.max(Submission.attempt).label("attempt"),
    ).where(Submission.cohort_id == cohort_id, Submission.assignment_id.in_(pass_marks))
    if users is not None:
        latest = latest.where(Submission.user_id.in_(users))
    last = latest.group_by(Submission.user_id, Submission.assignment_id).subquery()
    rows = db.session.execute(
        sa.select(
            Submission.user_id,
            Submission.assignment_id,
            Submission.submitted_at,
            sa.func.sum(sa.func.coalesce(Grade.manual_score, Grade.auto_score)),
        )
        .join(
            last,
            sa.and_(
                Submission.cohort_id == cohort_id,
                Submission.user_id == last.c.user_id,
                Submission.assignment_id == last.c.assignment_id,
                Submission.attempt == last.c.attempt,
            ),
        )
        .join(Grade, Grade.submission_id == Submission.id)
        .group_by(
            Submission.id, Submission.user_id, Submission.assignment_id, Submission.submitted_at
        )
    ).tuples()

    graded = [row for row in rows if row[3] is not None]  # nothing graded: not passed
    penalties = deadlines.late_penalties(
        [(cohort_id, assignment_id, user_id, at) for user_id, assignment_id, at, _ in graded]
    )
    passing: dict[int, list[datetime]] = {}
    for (user_id, assignment_id, submitted_at, raw), penalty in zip(graded, penalties, strict=True):
        if deadlines.with_penalty(float(raw), penalty) >= pass_marks[assignment_id]:
            passing.setdefault(user_id, []).append(submitted_at)
    return {
        user_id: max(moments)
        for user_id, moments in passing.items()
        if len(moments) == len(pass_marks)
    }

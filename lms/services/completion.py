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
from lms.models import Enrolment, EnrolmentStatus
from lms.queries import gradebook

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
    the cohort (or of users) who meets the rule now. Read-only."""
    required = {a.id: a for a in gradebook.required_assignments(cohort_id)}
    if not required:
        return {}
    passing: dict[int, list[datetime]] = {}
    for (user_id, assignment_id), attempt in gradebook.latest_attempts(
        cohort_id, list(required), users
    ).items():
        if required[assignment_id].passed_by(attempt.final):
            passing.setdefault(user_id, []).append(attempt.submitted_at)
    return {
        user_id: max(moments)
        for user_id, moments in passing.items()
        if len(moments) == len(required)
    }

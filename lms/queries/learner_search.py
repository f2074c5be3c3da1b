"""Finding one learner of a cohort from what a person typed: part of a name or an email.
Read-only; used by the deadlines page to pick the learner of an extension."""

from __future__ import annotations

import sqlalchemy as sa

from lms.extensions import db
from lms.models import Enrolment, EnrolmentStatus, User


def _cohort_learners(cohort_id: int) -> sa.Select[tuple[User]]:
    """The cohort's learners who have not withdrawn (those a deadline applies to), as
    queries.insight.cohort_learners lists them."""
    return (
        sa.select(User)
        .join(Enrolment, Enrolment.user_id == User.id)
        .where(Enrolment.cohort_id == cohort_id, Enrolment.status != EnrolmentStatus.WITHDRAWN)
    )


def learner_count(cohort_id: int) -> int:
    """How many learners of the cohort have not withdrawn."""
    counted = _cohort_learners(cohort_id).with_only_columns(sa.func.count(User.id))
    return int(db.session.scalar(counted) or 0)


def by_email(cohort_id: int, email: str) -> User | None:
    """The learner of the cohort with this email (any case), or None."""
    return db.session.scalar(
        _cohort_learners(cohort_id).where(sa.func.lower(User.email) == email.strip().lower())
    )


def matching(cohort_id: int, text: str, limit: int) -> list[User]:
    """Learners of the cohort whose name or email contains text (any case), by name then
    email; at most limit of them."""
    needle = text.strip().lower()
    if not needle:
        return []
    return list(
        db.session.scalars(
            _cohort_learners(cohort_id)
            .where(
                sa.or_(
                    sa.func.lower(User.name).contains(needle, autoescape=True),
                    sa.func.lower(User.email).contains(needle, autoescape=True),
                )
            )
            .order_by(User.name, User.email)
            .limit(limit)
        )
    )

"""Setting due dates, late penalties and extensions (what applies to whom is read in
lms.queries.schedules)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from lms.extensions import db
from lms.models import CohortAssignment, Extension, User, utcnow
from lms.services import ServiceError


class DeadlineError(ServiceError):
    pass


def set_policy(
    scheduled: CohortAssignment,
    *,
    due_at: datetime,
    penalty_per_day: float,
    penalty_cap: float,
    cutoff_at: datetime | None,
) -> CohortAssignment:
    if not 0 <= penalty_per_day <= 100 or not 0 <= penalty_cap <= 100:
        raise DeadlineError(_("Penalties are percentages between 0 and 100."))
    if due_at < scheduled.opens_at:
        raise DeadlineError(_("The due date cannot be before the assignment opens."))
    if cutoff_at is not None and cutoff_at < due_at:
        raise DeadlineError(_("The cut-off cannot be before the due date."))
    scheduled.due_at = due_at
    scheduled.late_penalty_per_day = penalty_per_day
    scheduled.late_penalty_cap = penalty_cap
    scheduled.cutoff_at = cutoff_at
    db.session.commit()
    return scheduled


def grant_extension(
    scheduled: CohortAssignment, learner: User, due_at: datetime, granted_by: User, reason: str = ""
) -> Extension:
    """Give (or change) one learner's own due date."""
    if due_at <= scheduled.due_at:
        raise DeadlineError(_("An extension must end after the cohort's due date."))
    extension = db.session.scalar(
        sa.select(Extension).where(
            Extension.cohort_assignment_id == scheduled.id, Extension.user_id == learner.id
        )
    )
    if extension is None:
        extension = Extension(cohort_assignment_id=scheduled.id, user_id=learner.id, due_at=due_at)
        db.session.add(extension)
    extension.due_at = due_at
    extension.reason = reason.strip()[:500]
    extension.granted_by_id = granted_by.id
    extension.granted_at = utcnow()
    db.session.commit()
    return extension

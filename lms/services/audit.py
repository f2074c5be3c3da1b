"""The audit log of actions on people's accounts: who did what to whom, and when."""

from __future__ import annotations

import sqlalchemy as sa

from lms.extensions import db
from lms.models import AuditEvent, User


def record(actor: User | None, subject: User | None, action: str, detail: str = "") -> None:
    """Add an event; it commits with the caller's change (one transaction: no action without
    its record, no record without the action)."""
    db.session.add(
        AuditEvent(
            actor_id=actor.id if actor is not None else None,
            subject_id=subject.id if subject is not None else None,
            action=action[:40],
            detail=detail[:500],
        )
    )


def of(subject: User, limit: int = 200) -> list[AuditEvent]:
    """The newest events about a person, newest first."""
    return list(
        db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.subject_id == subject.id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )

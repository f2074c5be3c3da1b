"""Account links (invitations, password resets, email changes) and bulk invitation batches."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, enum_column, utcnow
from lms.models.people import User
from lms.models.programs import Cohort


class LinkPurpose(enum.StrEnum):
    INVITE = "invite"
    RESET = "reset"
    EMAIL = "email"  # confirms a new email address


class AccountLink(Base):
    """A one-time link sent to a person. The URL holds a random token; only its sha256 is
    stored. A link works once, until it expires, and only while it is the newest of its
    purpose for that person (sending a new one supersedes the old)."""

    __tablename__ = "account_links"
    # batch_id last: "has this round invited this person" is a lookup by all three, never a
    # walk through every link of a 50,000-person round.
    __table_args__ = (
        sa.Index("ix_account_links_user_purpose_batch", "user_id", "purpose", "batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[LinkPurpose] = mapped_column(enum_column(LinkPurpose))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # Set when a newer link of the same purpose was made, or the link was used up otherwise.
    superseded_at: Mapped[datetime | None]
    # The address an EMAIL link confirms.
    new_email: Mapped[str | None] = mapped_column(sa.String(254))
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    # Bulk invitations: the batch that made it. A batch's sender claims a link (sending_at)
    # before handing it to the SMTP server and records the outcome after, so a batch resumed
    # after a crash never mails one person twice.
    batch_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invitation_batches.id", ondelete="SET NULL"), index=True
    )
    # "mail", or "file": handed out in a coordinator's file of personal links.
    delivery: Mapped[str] = mapped_column(sa.String(8), default="mail")
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # The SMTP server refused the recipient (its reply), or sending failed.
    bounced_at: Mapped[datetime | None]
    bounce_reason: Mapped[str | None] = mapped_column(sa.String(300))

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class InvitationBatchState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class InvitationBatch(Base):
    """Invitations to a whole cohort, made and mailed by the worker with live progress."""

    __tablename__ = "invitation_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cohorts.id", ondelete="CASCADE"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    # Also invite people who were invited before (not only those never invited).
    reinvite: Mapped[bool] = mapped_column(default=False)
    state: Mapped[InvitationBatchState] = mapped_column(
        enum_column(InvitationBatchState), default=InvitationBatchState.QUEUED
    )
    total: Mapped[int] = mapped_column(default=0)
    sent: Mapped[int] = mapped_column(default=0)
    bounced: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    # Written as each chunk is sent: a running batch whose heartbeat stops is taken for dead.
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    cohort: Mapped[Cohort] = relationship()
    requested_by: Mapped[User | None] = relationship()


class AuditEvent(Base):
    """Who did what to a person's account, and when (invitations, deactivation, erasure...)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    subject_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[str] = mapped_column(sa.String(500), default="")

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    subject: Mapped[User | None] = relationship(foreign_keys=[subject_id])

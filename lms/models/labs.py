"""Learners' labs as the lab hub reports them: servers started and stopped, and the kernels
they borrowed (kernel minutes per cohort come from these)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, utcnow
from lms.models.courses import Assignment
from lms.models.people import User


class LabServer(Base):
    """One run of a learner's lab server, from start to stop (open while stopped_at is NULL)."""

    __tablename__ = "lab_servers"
    __table_args__ = (sa.Index("ix_lab_servers_open", "stopped_at", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    # "idle" (culled), "stopped" (by the learner), "hub stopped", "failed", "exited"
    stop_reason: Mapped[str] = mapped_column(sa.String(32), default="")

    user: Mapped[User] = relationship()


class LabKernel(Base):
    """A sandboxed kernel lent to a learner's lab, from start to end."""

    __tablename__ = "lab_kernels"
    __table_args__ = (sa.Index("ix_lab_kernels_user_started", "user_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    # The assignment whose folder the kernel was started in (None: elsewhere in the workspace).
    assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
    assignment: Mapped[Assignment | None] = relationship()

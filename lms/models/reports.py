"""Certificates issued to learners who completed a cohort, and export jobs that write progress
reports in the background."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, enum_column, utcnow
from lms.models.people import User
from lms.models.programs import Enrolment


class Certificate(Base):
    """A certificate of completion. What it states is frozen when it is issued (names, courses,
    scores), so the public verification page shows exactly what the PDF says, even after the
    learner's name or the program changes."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("enrolments.id", ondelete="RESTRICT"), unique=True
    )
    # The verification code printed on the certificate: random, unguessable, unique.
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    learner_name: Mapped[str] = mapped_column(sa.String(200))
    program_name: Mapped[str] = mapped_column(sa.String(200))
    cohort_name: Mapped[str] = mapped_column(sa.String(200))
    completed_on: Mapped[date]
    # [{"title": ..., "score": ..., "max_score": ...}, ...] in course order.
    courses: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str] = mapped_column(sa.String(500), default="")

    enrolment: Mapped[Enrolment] = relationship()
    issued_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<Certificate {self.code}>"


class ExportState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExportJob(Base):
    """A progress report written by the worker: too many rows to write while the browser
    waits. The file is stored as exports/<id>.<ext> (lms.storage) until replaced."""

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(sa.String(16))  # program | cohort | course
    scope_id: Mapped[int]
    format: Mapped[str] = mapped_column(sa.String(8))  # csv | xlsx | pdf
    state: Mapped[ExportState] = mapped_column(enum_column(ExportState), default=ExportState.QUEUED)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    file_name: Mapped[str] = mapped_column(sa.String(200), default="")
    path: Mapped[str] = mapped_column(sa.String(500), default="")
    error: Mapped[str] = mapped_column(sa.Text, default="")
    # The requester's zone when they asked (account setting or browser): the worker has no
    # request to take it from, and the PDF says its moments in it.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    requested_by: Mapped[User] = relationship()

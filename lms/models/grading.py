"""Submissions, grading jobs and batches, grades and their audit trail, late policy, API tokens.

The database is the source of truth. A submission is an immutable row pointing at files stored
by content hash. A grading job is a row with a state and a lease; the queue carries only its
id. A grade is one row per (submission, graded cell) that is never changed without an event
saying who changed it, when, from what to what, and why.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, enum_column, utcnow
from lms.models.courses import Assignment, GradedCell
from lms.models.people import User
from lms.models.programs import Cohort, CohortAssignment


class Submission(Base):
    """One version of a learner's work on an assignment in a cohort; never changed."""

    __tablename__ = "submissions"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "assignment_id", "cohort_id", "attempt"),
        # A retried request (double click, network retry) carries the same key: one row.
        sa.UniqueConstraint("user_id", "submit_key"),
        sa.Index("ix_submissions_assignment_cohort", "assignment_id", "cohort_id"),
        # Who submitted lately (active learners): a range of recent rows, covered.
        sa.Index("ix_submissions_recent", "submitted_at", "cohort_id", "user_id"),
        # Each learner's progress in a cohort (progress reports): one covered index range.
        sa.Index("ix_submissions_progress", "cohort_id", "user_id", "attempt", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(sa.ForeignKey("assignments.id", ondelete="CASCADE"))
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohorts.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The assignment version the learner was given when submitting.
    version: Mapped[int]
    # File name -> sha256 of its bytes (lms.storage.blobs).
    files: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    submit_key: Mapped[str | None] = mapped_column(sa.String(64))
    # The due date that applied (extension included) and how late it came, at submission time.
    due_at: Mapped[datetime | None]
    late_seconds: Mapped[int] = mapped_column(default=0)
    via: Mapped[str] = mapped_column(sa.String(16), default="upload")

    user: Mapped[User] = relationship()
    assignment: Mapped[Assignment] = relationship()
    cohort: Mapped[Cohort] = relationship()
    grades: Mapped[list[Grade]] = relationship(back_populates="submission")
    jobs: Mapped[list[GradingJob]] = relationship(
        back_populates="submission", order_by="GradingJob.id"
    )

    def __repr__(self) -> str:
        return f"<Submission {self.id} {self.user_id}/{self.assignment_id} #{self.attempt}>"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobKind(enum.StrEnum):
    INSTANT = "instant"  # a learner waiting for feedback: goes ahead of batches
    BATCH = "batch"


class BatchState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class GradingBatch(Base):
    """An instructor's request to autograde many submissions, followed with a progress bar."""

    __tablename__ = "grading_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    cohort_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cohorts.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    state: Mapped[BatchState] = mapped_column(enum_column(BatchState), default=BatchState.RUNNING)
    scope: Mapped[str] = mapped_column(sa.String(16), default="all")
    total: Mapped[int] = mapped_column(default=0)

    assignment: Mapped[Assignment] = relationship()
    cohort: Mapped[Cohort | None] = relationship()
    created_by: Mapped[User | None] = relationship()


class GradingJob(Base):
    """Autograding one submission. Claimed by a worker with a lease that it keeps renewing:
    a worker killed mid-job leaves an expired lease and the job is graded again."""

    __tablename__ = "grading_jobs"
    __table_args__ = (
        sa.Index("ix_grading_jobs_state_lease", "state", "lease_until"),
        sa.Index("ix_grading_jobs_batch_state", "batch_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        sa.ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("grading_batches.id", ondelete="CASCADE")
    )
    kind: Mapped[JobKind] = mapped_column(enum_column(JobKind))
    priority: Mapped[int] = mapped_column(default=0)
    # The queue it waits on (lms.queue.LANES): "gpu" is taken only by workers with GPU slots.
    lane: Mapped[str] = mapped_column(sa.String(8), default="cpu", server_default="cpu")
    state: Mapped[JobState] = mapped_column(enum_column(JobState), default=JobState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(sa.String(100))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(sa.Text, default="")
    score: Mapped[float | None]
    max_score: Mapped[float | None]
    # The autograder's result as JSON (cells, errors, flags, device, seconds).
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # Notebook name -> sha256 of its sanitized feedback HTML (lms.storage.blobs).
    feedback: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)

    submission: Mapped[Submission] = relationship(back_populates="jobs")
    batch: Mapped[GradingBatch | None] = relationship()


class Grade(Base):
    """The current score of one graded cell of one submission: the sum of its events."""

    __tablename__ = "grades"
    __table_args__ = (sa.UniqueConstraint("submission_id", "cell_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("submissions.id", ondelete="CASCADE"))
    cell_id: Mapped[int] = mapped_column(
        sa.ForeignKey("graded_cells.id", ondelete="CASCADE"), index=True
    )
    max_score: Mapped[float]
    # What the autograder gave (None: not autograded yet, or an answer that needs a person).
    auto_score: Mapped[float | None]
    status: Mapped[str] = mapped_column(sa.String(32), default="")
    # What a person gave; it wins over auto_score (a manual grade or an override).
    manual_score: Mapped[float | None]
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="grades")
    cell: Mapped[GradedCell] = relationship()
    events: Mapped[list[GradeEvent]] = relationship(
        back_populates="grade", order_by="GradeEvent.id"
    )

    @property
    def score(self) -> float | None:
        return self.manual_score if self.manual_score is not None else self.auto_score


class GradeSource(enum.StrEnum):
    AUTOGRADE = "autograde"
    MANUAL = "manual"  # a person scoring an answer the autograder cannot
    OVERRIDE = "override"  # a person replacing an autograded score


class GradeEvent(Base):
    """One change to a grade: who, when, old, new, why. Never updated or deleted."""

    __tablename__ = "grade_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    grade_id: Mapped[int] = mapped_column(
        sa.ForeignKey("grades.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[GradeSource] = mapped_column(enum_column(GradeSource))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("grading_jobs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    old_score: Mapped[float | None]
    new_score: Mapped[float | None]
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    reason: Mapped[str] = mapped_column(sa.String(500), default="")

    grade: Mapped[Grade] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class Extension(Base):
    """A later due date for one learner on one assignment of a cohort."""

    __tablename__ = "extensions"
    __table_args__ = (sa.UniqueConstraint("cohort_assignment_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cohort_assignments.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    granted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    cohort_assignment: Mapped[CohortAssignment] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ApiToken(Base):
    """A bearer token for the JSON API. Only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class WorkerProcess(Base):
    """A live grading worker process, as it last said (lms.services.workers): which lanes it
    takes and how many GPU slots its host has. Rows not heard from for a while are gone."""

    __tablename__ = "worker_processes"

    # "<host>:<pid>", as in the grading leases it takes.
    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(100))
    lanes: Mapped[str] = mapped_column(sa.String(32))  # "cpu", "gpu" or "cpu,gpu"
    gpu_slots: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

"""Programs with learner targets, their cohorts, and learners' enrolments in cohorts."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, enum_column, utcnow
from lms.models.courses import Assignment, Course
from lms.models.people import Organisation, User

cohort_courses = sa.Table(
    "cohort_courses",
    Base.metadata,
    sa.Column("cohort_id", sa.ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("course_id", sa.ForeignKey("courses.id", ondelete="RESTRICT"), primary_key=True),
)


class Program(Base):
    """A training program with a target: e.g. 1,200 trained learners by a date."""

    __tablename__ = "programs"
    __table_args__ = (sa.CheckConstraint("target_learners > 0", name="target_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    target_learners: Mapped[int]
    target_date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cohorts: Mapped[list[Cohort]] = relationship(
        back_populates="program", order_by="Cohort.starts_on"
    )

    def __repr__(self) -> str:
        return f"<Program {self.slug}>"


class Cohort(Base):
    """A group of learners taking a program's courses together between two dates."""

    __tablename__ = "cohorts"
    __table_args__ = (sa.CheckConstraint("ends_on >= starts_on", name="dates_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="RESTRICT"), index=True
    )
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    program: Mapped[Program] = relationship(back_populates="cohorts")
    organisation: Mapped[Organisation | None] = relationship()
    courses: Mapped[list[Course]] = relationship(secondary=cohort_courses, order_by=Course.title)
    enrolments: Mapped[list[Enrolment]] = relationship(back_populates="cohort")

    def __repr__(self) -> str:
        return f"<Cohort {self.slug}>"


class EnrolmentStatus(enum.StrEnum):
    ENROLLED = "enrolled"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    CERTIFIED = "certified"


class Enrolment(Base):
    """A learner in a cohort. Timestamps record when each milestone was reached."""

    __tablename__ = "enrolments"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "cohort_id"),
        sa.Index("ix_enrolments_cohort_status", "cohort_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohorts.id", ondelete="CASCADE"))
    status: Mapped[EnrolmentStatus] = mapped_column(
        enum_column(EnrolmentStatus), default=EnrolmentStatus.ENROLLED
    )
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    certified_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="enrolments")
    cohort: Mapped[Cohort] = relationship(back_populates="enrolments")


class CohortAssignment(Base):
    """When an assignment opens and is due for one cohort (defaults from course.toml)."""

    __tablename__ = "cohort_assignments"
    __table_args__ = (sa.UniqueConstraint("cohort_id", "assignment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohorts.id", ondelete="CASCADE"))
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    opens_at: Mapped[datetime]
    due_at: Mapped[datetime]
    # Late policy: a percentage off per started day late, up to a cap; nothing after cutoff_at.
    late_penalty_per_day: Mapped[float] = mapped_column(default=0.0)
    late_penalty_cap: Mapped[float] = mapped_column(default=100.0)
    cutoff_at: Mapped[datetime | None]
    # Learners see their scores, comments and feedback from this moment on.
    feedback_released_at: Mapped[datetime | None]

    cohort: Mapped[Cohort] = relationship()
    assignment: Mapped[Assignment] = relationship()

"""Courses and their assignments, synced from courses/ (the single source of content).

An assignment's content is versioned by a hash of its folder. Once a version is released,
changing it needs force, and every forced change is recorded because it changes grades.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, enum_column, utcnow


class Level(enum.StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Equal to the course's folder name under courses/.
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    level: Mapped[Level] = mapped_column(enum_column(Level), default=Level.BEGINNER)
    # Its GPU assignments may be graded on a CPU worker when no GPU worker runs (course.toml
    # `gpu_on_cpu`; the models must then be small enough to train on a CPU in time).
    gpu_on_cpu: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    synced_at: Mapped[datetime | None]

    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="course", order_by="Assignment.position"
    )

    def __repr__(self) -> str:
        return f"<Course {self.slug}>"


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        sa.UniqueConstraint("course_id", "slug"),
        sa.CheckConstraint("pass_mark >= 0 AND pass_mark <= points", name="pass_mark_in_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)
    points: Mapped[float]
    pass_mark: Mapped[float]
    gpu: Mapped[bool] = mapped_column(default=False)
    preload: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    due_days: Mapped[int] = mapped_column(default=14)
    instant_feedback: Mapped[bool] = mapped_column(default=False)
    # sha256 of the assignment folder as last synced; a release pins the version it was made of.
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[int] = mapped_column(default=1)
    # False once the folder is gone from courses/ (kept: submissions and grades point here).
    active: Mapped[bool] = mapped_column(default=True)

    course: Mapped[Course] = relationship(back_populates="assignments")
    notebooks: Mapped[list[AssignmentNotebook]] = relationship(
        back_populates="assignment",
        cascade="all, delete-orphan",
        order_by="AssignmentNotebook.name",
    )
    releases: Mapped[list[Release]] = relationship(
        back_populates="assignment", order_by="Release.version"
    )

    def passed_by(self, final: float | None) -> bool:
        """Whether a final score (the late penalty applied) passes this assignment: the one
        rule behind completions, gradebooks, dashboards and reports."""
        return final is not None and final >= self.pass_mark

    @property
    def current_release(self) -> Release | None:
        return next((r for r in self.releases if r.version == self.version), None)

    def __repr__(self) -> str:
        return f"<Assignment {self.slug} v{self.version}>"


class AssignmentNotebook(Base):
    __tablename__ = "assignment_notebooks"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(sa.ForeignKey("assignments.id", ondelete="CASCADE"))
    # File name without .ipynb, as nbgrader names notebooks.
    name: Mapped[str] = mapped_column(sa.String(200))

    assignment: Mapped[Assignment] = relationship(back_populates="notebooks")
    cells: Mapped[list[GradedCell]] = relationship(
        back_populates="notebook", cascade="all, delete-orphan", order_by="GradedCell.position"
    )


class CellKind(enum.StrEnum):
    AUTOGRADED = "autograded"  # a locked test cell scored by running it
    MANUAL = "manual"  # a learner's answer scored by an instructor


class GradedCell(Base):
    __tablename__ = "graded_cells"
    __table_args__ = (sa.UniqueConstraint("notebook_id", "grade_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notebook_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assignment_notebooks.id", ondelete="CASCADE")
    )
    grade_id: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int] = mapped_column(default=0)
    points: Mapped[float]
    kind: Mapped[CellKind] = mapped_column(enum_column(CellKind))

    notebook: Mapped[AssignmentNotebook] = relationship(back_populates="cells")


class Release(Base):
    """The learner version of one assignment version, generated by nbgrader."""

    __tablename__ = "releases"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(sa.ForeignKey("assignments.id", ondelete="CASCADE"))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    # Storage folder (lms.storage key) holding the release notebooks and data files.
    path: Mapped[str] = mapped_column(sa.String(500))
    released_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    assignment: Mapped[Assignment] = relationship(back_populates="releases")


class AssignmentChange(Base):
    """A forced change to released content: who, when, from which hash to which."""

    __tablename__ = "assignment_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str] = mapped_column(sa.String(254))
    old_hash: Mapped[str] = mapped_column(sa.String(64))
    new_hash: Mapped[str] = mapped_column(sa.String(64))
    old_version: Mapped[int]
    new_version: Mapped[int]
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    assignment: Mapped[Assignment] = relationship()

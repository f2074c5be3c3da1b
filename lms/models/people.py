"""People: users, the partner organisations they come from, and their scoped role grants."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, enum_column, utcnow

if TYPE_CHECKING:
    from lms.models.courses import Course
    from lms.models.programs import Enrolment, Program


class OrganisationKind(enum.StrEnum):
    SCHOOL = "school"
    UNIVERSITY = "university"
    COMPANY = "company"
    CITY = "city"
    GOVERNMENT = "government"
    OTHER = "other"


class Organisation(Base):
    """A partner (school, company, city...) that learners come from or that hosts a cohort."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[OrganisationKind] = mapped_column(enum_column(OrganisationKind))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Organisation {self.slug}>"


class Role(enum.StrEnum):
    """Granted roles. Learners are not granted: they are learners through an enrolment."""

    ADMIN = "admin"
    COORDINATOR = "coordinator"
    INSTRUCTOR = "instructor"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # None until a password is set: imported learners cannot sign in before that.
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    # An IANA zone ("Asia/Seoul") chosen on the account page; None: the browser's.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Personal data erased on request (lms.services.people.erase): the row stays for the
    # figures it counts in, anonymised.
    erased_at: Mapped[datetime | None]
    # A duplicate account folded into another (lms.services.people.merge).
    merged_into_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    organisation: Mapped[Organisation | None] = relationship()
    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", foreign_keys="RoleGrant.user_id"
    )
    enrolments: Mapped[list[Enrolment]] = relationship(back_populates="user")

    # Flask-Login's user protocol, spelled out (its UserMixin is untyped).
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def has_role(self, role: Role) -> bool:
        return any(g.role == role for g in self.grants)

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class RoleGrant(Base):
    """A role scoped to what it governs: the site, one program, or one course."""

    __tablename__ = "role_grants"
    __table_args__ = (
        sa.CheckConstraint(
            "(role = 'admin' AND program_id IS NULL AND course_id IS NULL)"
            " OR (role = 'coordinator' AND program_id IS NOT NULL AND course_id IS NULL)"
            " OR (role = 'instructor' AND course_id IS NOT NULL AND program_id IS NULL)",
            name="scope_matches_role",
        ),
        sa.UniqueConstraint("user_id", "role", "program_id", "course_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(enum_column(Role))
    program_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    user: Mapped[User] = relationship(back_populates="grants", foreign_keys=[user_id])
    program: Mapped[Program | None] = relationship()
    course: Mapped[Course | None] = relationship()

    @property
    def scope_label(self) -> str:
        if self.program is not None:
            return self.program.name
        if self.course is not None:
            return self.course.title
        return ""

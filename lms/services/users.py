"""Users, passwords and role grants."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

from lms import formatting
from lms.extensions import db
from lms.models import Course, Organisation, Program, Role, RoleGrant, User, utcnow
from lms.services import ServiceError, audit, sessions

EMAIL_RE = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")
# Checked when the email is unknown, so that a miss costs as long as a hit (no user enumeration).
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


class UserError(ServiceError):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    return len(email) <= 254 and EMAIL_RE.match(email) is not None


def hash_password(password: str) -> str:
    """The stored form of a password. The rule people meet when they choose one is checked
    where they choose it (lms.services.passwords); demo and test accounts skip it."""
    if not password:
        raise UserError("A password cannot be empty.")
    return generate_password_hash(password, method="scrypt")


def find_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalize_email(email)))


def create_user(
    email: str,
    name: str,
    password: str | None = None,
    organisation: Organisation | None = None,
    locale: str | None = None,
    by: User | None = None,
) -> User:
    email = normalize_email(email)
    if not is_valid_email(email):
        raise UserError(f"Not a valid email address: {email!r}.")
    if find_by_email(email) is not None:
        raise UserError(f"A user with email {email} already exists.")
    user = User(
        email=email,
        name=name.strip() or email.split("@")[0],
        password_hash=hash_password(password) if password else None,
        organisation=organisation,
        locale=locale,
    )
    db.session.add(user)
    if by is not None:
        db.session.flush()
        audit.record(by, user, "created")
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same cost either way)."""
    user = find_by_email(email)
    stored = user.password_hash if user is not None and user.password_hash else None
    ok = check_password_hash(stored or _DUMMY_HASH, password)
    if user is None or stored is None or not ok or not user.active:
        return None
    return user


def record_login(user: User) -> None:
    user.last_login_at = utcnow()
    db.session.commit()


def grant_role(
    user: User,
    role: Role,
    *,
    program: Program | None = None,
    course: Course | None = None,
    granted_by: User | None = None,
) -> RoleGrant:
    """Grant a role in its scope; granting one the user already has returns the existing one."""
    if role == Role.COORDINATOR and (program is None or course is not None):
        raise UserError("A coordinator role is granted for one program.")
    if role == Role.INSTRUCTOR and (course is None or program is not None):
        raise UserError("An instructor role is granted for one course.")
    if role == Role.ADMIN and (program is not None or course is not None):
        raise UserError("The admin role is site-wide: give no program or course.")
    for grant in user.grants:
        if grant.role == role and grant.program == program and grant.course == course:
            return grant
    grant = RoleGrant(
        role=role,
        program=program,
        course=course,
        granted_by_id=granted_by.id if granted_by else None,
    )
    user.grants.append(grant)
    if granted_by is not None:
        audit.record(granted_by, user, "role-granted", f"{role.value} {grant.scope_label}".strip())
    db.session.commit()
    return grant


def revoke_grant(grant: RoleGrant, by: User | None = None) -> None:
    if by is not None:
        audit.record(
            by, grant.user, "role-revoked", f"{grant.role.value} {grant.scope_label}".strip()
        )
    db.session.delete(grant)
    db.session.commit()


def deactivate(user: User, by: User | None) -> None:
    """The user can no longer sign in, and every session of theirs ends now (session_ended
    is sent with all_sessions=True, which stops their lab). `by` is the admin (None: the
    command line); nobody deactivates themself."""
    if by is not None and by.id == user.id:
        raise UserError("You cannot deactivate yourself.")
    user.active = False
    audit.record(by, user, "deactivated")
    # One transaction: the flag, its record and the revoked sessions commit together.
    sessions.revoke_all(user, "deactivated")
    current_app.logger.info(
        "user %s deactivated by %s", user.email, by.email if by is not None else "the CLI"
    )


def reactivate(user: User, by: User | None) -> None:
    """The user may sign in again (their old sessions stay ended)."""
    user.active = True
    audit.record(by, user, "reactivated")
    db.session.commit()
    current_app.logger.info(
        "user %s reactivated by %s", user.email, by.email if by is not None else "the CLI"
    )


def set_locale(user: User, locale: str) -> None:
    user.locale = locale
    db.session.commit()


def set_time_zone(user: User, zone: str | None) -> None:
    """An IANA zone the person reads dates in; None goes back to the browser's."""
    if zone is not None and formatting.valid_timezone(zone) is None:
        raise ServiceError(_("Unknown time zone: %(zone)s", zone=zone))
    user.time_zone = zone
    db.session.commit()

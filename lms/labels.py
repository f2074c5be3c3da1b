"""Translated labels for stored values (states, roles, kinds), and the template filters."""

from __future__ import annotations

import enum

from flask import Flask
from flask_babel import format_number
from flask_babel import lazy_gettext as _l

from lms import formatting
from lms.models import CellKind, EnrolmentStatus, OrganisationKind, Role

LABELS: dict[enum.StrEnum, str] = {
    EnrolmentStatus.ENROLLED: _l("enrolled"),
    EnrolmentStatus.WITHDRAWN: _l("withdrawn"),
    EnrolmentStatus.COMPLETED: _l("completed"),
    EnrolmentStatus.CERTIFIED: _l("certified"),
    Role.ADMIN: _l("admin"),
    Role.COORDINATOR: _l("coordinator"),
    Role.INSTRUCTOR: _l("instructor"),
    OrganisationKind.SCHOOL: _l("school"),
    OrganisationKind.UNIVERSITY: _l("university"),
    OrganisationKind.COMPANY: _l("company"),
    OrganisationKind.CITY: _l("city"),
    OrganisationKind.GOVERNMENT: _l("government"),
    OrganisationKind.OTHER: _l("other"),
    CellKind.AUTOGRADED: _l("autograded test"),
    CellKind.MANUAL: _l("written answer, graded by hand"),
}


# The audit log's actions (lms.services.audit), as the log's reader says them.
AUDIT_ACTIONS: dict[str, str] = {
    "created": _l("account created"),
    "imported": _l("imported from CSV"),
    "enrolled": _l("enrolled from CSV"),
    "invited": _l("invited"),
    "cohort-invited": _l("cohort invited"),
    "links-handed-out": _l("personal links downloaded"),
    "joined": _l("joined (password chosen)"),
    "password-reset": _l("password reset by link"),
    "password-changed": _l("password changed"),
    "email-changed": _l("email changed"),
    "role-granted": _l("role granted"),
    "role-revoked": _l("role revoked"),
    "deactivated": _l("deactivated"),
    "reactivated": _l("reactivated"),
    "withdrawn": _l("withdrawn from a cohort"),
    "reinstated": _l("reinstated in a cohort"),
    "merged": _l("duplicate merged into this account"),
    "merged-away": _l("merged into another account"),
    "data-exported": _l("personal data downloaded"),
    "erased": _l("personal data erased"),
    "certificate-revoked": _l("certificate revoked"),
}


def audit_action(action: str) -> str:
    return str(AUDIT_ACTIONS.get(action, action))


def label(value: enum.StrEnum) -> str:
    """The value in the reader's language (`{{ enrolment.status|label }}`)."""
    return str(LABELS.get(value, value.value))


def register(app: Flask) -> None:
    app.add_template_filter(label, "label")
    app.add_template_filter(audit_action, "audit_action")
    # Thousands separators as the reader's language writes them: 50,000 / 50.000.
    app.add_template_filter(format_number, "number")
    # Moments in the reader's time zone and format (lms.formatting).
    app.add_template_filter(formatting.when, "when")
    app.add_template_filter(formatting.day, "day")
    app.add_template_filter(formatting.decimal, "decimal")
    app.add_template_filter(formatting.duration, "duration")
    app.add_template_filter(formatting.late_by, "late_by")
    app.add_template_global(formatting.time_zone_name)

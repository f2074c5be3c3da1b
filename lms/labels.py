"""Translated labels for stored values (states, roles, kinds), and the template filters."""

from __future__ import annotations

import enum

from flask import Flask
from flask_babel import format_number
from flask_babel import lazy_gettext as _l

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


def label(value: enum.StrEnum) -> str:
    """The value in the reader's language (`{{ enrolment.status|label }}`)."""
    return str(LABELS.get(value, value.value))


def register(app: Flask) -> None:
    app.add_template_filter(label, "label")
    # Thousands separators as the reader's language writes them: 50,000 / 50.000.
    app.add_template_filter(format_number, "number")

"""Form pieces shared by several blueprints."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import ValidationError

from lms.services import passwords
from lms.services.users import is_valid_email, normalize_email


class EmailAddress:
    """WTForms validator using the same rule as the services (no DNS lookups)."""

    def __call__(self, form: Any, field: Any) -> None:
        if field.data and not is_valid_email(normalize_email(field.data)):
            raise ValidationError(_l("Enter a valid email address."))


class StrongPassword:
    """The password rule of lms.services.passwords, checked against the form's email and name
    fields when it has them."""

    def __call__(self, form: Any, field: Any) -> None:
        if not field.data:
            return
        inputs = [getattr(form, name).data or "" for name in ("email", "name") if name in form]
        problem = passwords.problem(field.data, inputs)
        if problem:
            raise ValidationError(problem)

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField


class IssueForm(FlaskForm):  # type: ignore[misc]
    """Issue certificates to a cohort's completed learners; its CSRF token protects the button."""

    next = HiddenField()
    submit = SubmitField(_l("Issue certificates"))

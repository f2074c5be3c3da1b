from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import HiddenInput

from lms.services.certificates import MAX_REASON


class IssueForm(FlaskForm):  # type: ignore[misc]
    """Issue certificates to a cohort's completed learners. It reaches many people at once:
    the box (whose label says how many) must be ticked, and the number shown must still be
    the number waiting."""

    next = HiddenField()
    confirm = BooleanField(_l("Yes, issue the certificates"))
    # How many the page said were waiting; another number now means the page is stale.
    expected = IntegerField(widget=HiddenInput(), validators=[Optional()])
    submit = SubmitField(_l("Issue certificates"))


class RevokeForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField(
        _l("Reason for revoking"),
        validators=[
            DataRequired(message=_l("Give the reason for revoking the certificate.")),
            Length(max=MAX_REASON),
        ],
        description=_l(
            "Recorded with your name in the learner's log. The verification page says only "
            "that the certificate was revoked, and when."
        ),
    )
    submit = SubmitField(_l("Revoke certificate"))

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField
from wtforms.validators import DataRequired


class InviteCohortForm(FlaskForm):  # type: ignore[misc]
    again = BooleanField(_l("Also invite again those invited before who have not joined"))
    confirm = BooleanField(
        _l("Yes, send the invitations now"),
        validators=[DataRequired(message=_l("Tick the box to confirm."))],
    )
    submit = SubmitField(_l("Send invitations"))


class HandOutLinksForm(FlaskForm):  # type: ignore[misc]
    confirm = BooleanField(
        _l("I understand: each new link replaces the link mailed to that person before"),
        validators=[DataRequired(message=_l("Tick the box to confirm."))],
    )
    submit = SubmitField(_l("Download personal links (CSV)"))


class InviteOneForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField(_l("Invite"))


class ResumeForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField(_l("Go on sending"))

"""Forms of the deadlines page: the late policy, extensions, feedback release."""

from __future__ import annotations

from datetime import UTC

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, FloatField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

# What a datetime-local input sends (with or without seconds); the first is how it is shown.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
PERCENT = NumberRange(min=0, max=100, message=_l("A percentage between 0 and 100."))


def _utc_field(label: str, *validators: object, **kwargs: object) -> DateTimeLocalField:
    """A date and time read and shown in UTC."""
    return DateTimeLocalField(
        label,
        validators=list(validators),
        format=DATETIME_FORMATS,
        tz=UTC,
        invalid_value_message=_l("Enter a date and time."),
        **kwargs,
    )


class PolicyForm(FlaskForm):  # type: ignore[misc]
    due_at = _utc_field(_l("Due (UTC)"), DataRequired(message=_l("Enter the due date.")))
    late_penalty_per_day = FloatField(
        _l("Late penalty per started day (%)"),
        validators=[InputRequired(), PERCENT],
        description=_l("Taken off the score for each day or part of a day late."),
    )
    late_penalty_cap = FloatField(
        _l("Most taken off for lateness (%)"), validators=[InputRequired(), PERCENT]
    )
    cutoff_at = _utc_field(
        _l("Cut-off (UTC)"),
        Optional(),
        description=_l("Optional. Work submitted after it gets no credit."),
    )
    submit = SubmitField(_l("Save late policy"))


class ExtensionForm(FlaskForm):  # type: ignore[misc]
    learner = SelectField(_l("Learner"), coerce=int)
    due_at = _utc_field(_l("New due date (UTC)"), DataRequired(message=_l("Enter the due date.")))
    reason = StringField(_l("Reason"), validators=[Length(max=500)])
    submit = SubmitField(_l("Grant extension"))


class FeedbackForm(FlaskForm):  # type: ignore[misc]
    """Release or withdraw: the page shows the one button that applies."""

    release = SubmitField(_l("Release feedback"))
    withdraw = SubmitField(_l("Withdraw feedback"))

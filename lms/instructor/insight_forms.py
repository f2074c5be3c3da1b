"""Forms of the deadlines page: the late policy, extensions, feedback release."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, FloatField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from lms.formatting import viewer_zone

# What a datetime-local input sends (with or without seconds); the first is how it is shown.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
PERCENT = NumberRange(min=0, max=100, message=_l("A percentage between 0 and 100."))


def _local_field(label: str, *validators: object, **kwargs: object) -> DateTimeLocalField:
    """A date and time read and shown in the viewer's time zone (lms.formatting), stored UTC."""
    return DateTimeLocalField(
        label,
        validators=list(validators),
        format=DATETIME_FORMATS,
        tz=viewer_zone,
        invalid_value_message=_l("Enter a date and time."),
        **kwargs,
    )


class PolicyForm(FlaskForm):  # type: ignore[misc]
    due_at = _local_field(_l("Due"), DataRequired(message=_l("Enter the due date.")))
    late_penalty_per_day = FloatField(
        _l("Late penalty per started day (%)"),
        validators=[InputRequired(), PERCENT],
        description=_l("Taken off the score for each day or part of a day late."),
    )
    late_penalty_cap = FloatField(
        _l("Most taken off for lateness (%)"), validators=[InputRequired(), PERCENT]
    )
    cutoff_at = _local_field(
        _l("Cut-off"),
        Optional(),
        description=_l("Optional. Work submitted after it gets no credit."),
    )
    submit = SubmitField(_l("Save late policy"))


class ExtensionForm(FlaskForm):  # type: ignore[misc]
    # A search field: the view finds the cohort's learner the text names (learner_pick).
    learner = StringField(
        _l("Learner"),
        validators=[
            DataRequired(message=_l("Type part of the learner's name or email.")),
            Length(max=300),
        ],
        description=_l("Type part of a name or an email, then choose from the suggestions."),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    due_at = _local_field(_l("New due date"), DataRequired(message=_l("Enter the due date.")))
    reason = StringField(_l("Reason"), validators=[Length(max=500)])
    submit = SubmitField(_l("Grant extension"))


class FeedbackForm(FlaskForm):  # type: ignore[misc]
    """Release or withdraw: the page shows the one button that applies. Releasing reaches the
    whole cohort, so the view requires confirm (its label, set by the view, says how many)."""

    confirm = BooleanField(
        _l("Yes, release the feedback to the cohort"), render_kw={"required": True}
    )
    release = SubmitField(_l("Release feedback"))
    withdraw = SubmitField(_l("Withdraw feedback"))

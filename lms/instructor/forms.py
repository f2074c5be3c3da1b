"""The instructor's forms: grading batches and grades set by hand."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    FloatField,
    HiddenField,
    IntegerField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import HiddenInput, NumberInput


class AutogradeAllForm(FlaskForm):  # type: ignore[misc]
    """Autograde every learner's latest submission (of the chosen cohort, or all)."""

    cohort = HiddenField()
    submit = SubmitField(_l("Autograde all latest submissions"))


class RegradeForm(FlaskForm):  # type: ignore[misc]
    """Autograde again the submissions ticked in the table."""

    cohort = HiddenField()
    # The service checks that every id is a submission of the assignment.
    submissions = SelectMultipleField(
        _l("Submissions"),
        coerce=int,
        validate_choice=False,
        validators=[DataRequired(message=_l("Choose at least one submission."))],
    )
    submit = SubmitField(_l("Regrade selected"))


class CancelBatchForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField(_l("Cancel batch"))


class GradeForm(FlaskForm):  # type: ignore[misc]
    """A person's score and comment for one graded cell of one submission."""

    score = FloatField(
        _l("Score"),
        validators=[Optional()],
        widget=NumberInput(step="any", min=0),
        description=_l("Leave empty to keep the autograder's score (or no score)."),
    )
    comment = TextAreaField(_l("Comment for the learner"), validators=[Length(max=5000)])
    reason = StringField(
        _l("Reason for overriding the autograder"),
        validators=[Length(max=500)],
        description=_l("Required when you change an autograded score. Learners do not see it."),
    )
    submit = SubmitField(_l("Save"))

    # Set by the view before validating: a new score on an autograded cell overrides the
    # autograder, and an override needs a reason in the audit trail.
    autograded: bool = False
    current_override: float | None = None

    def validate_reason(self, field: Any) -> None:
        overriding = (
            self.autograded
            and self.score.data is not None
            and self.score.data != self.current_override
        )
        if overriding and not (field.data or "").strip():
            raise ValidationError(_l("Say why you override the autograder's score."))


class QuestionGradeForm(GradeForm):
    """The question-by-question form: saving moves on to the next learner."""

    # The answer graded, named by id: a learner submitting meanwhile shifts the positions.
    submission_id = IntegerField(widget=HiddenInput(), validators=[Optional()])
    submit = SubmitField(_l("Save and next"))

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from lms.forms import EmailAddress, StrongPassword
from lms.labels import LABELS
from lms.models import OrganisationKind, Role
from lms.services import passwords

SLUG = Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", message=_l("Lowercase letters, digits and hyphens."))


class MultiCheckboxField(SelectMultipleField):  # type: ignore[misc]
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserForm(FlaskForm):  # type: ignore[misc]
    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254), EmailAddress()])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(
        _l("Password"),
        validators=[Optional(), StrongPassword()],
        description=_l(
            "Optional; if given, at least %(num)d characters. Without one, the user cannot "
            "sign in until they follow an invitation.",
            num=passwords.MIN_LENGTH,
        ),
        render_kw={"autocomplete": "new-password", "minlength": passwords.MIN_LENGTH},
    )
    organisation = SelectField(_l("Organisation"), coerce=int)
    submit = SubmitField(_l("Create user"))


class GrantForm(FlaskForm):  # type: ignore[misc]
    role = SelectField(_l("Role"), choices=[SelectChoice(r.value, LABELS[r]) for r in Role])
    program = SelectField(_l("Program (for a coordinator)"), coerce=int)
    course = SelectField(_l("Course (for an instructor)"), coerce=int)
    submit = SubmitField(_l("Grant role"))


class ProgramForm(FlaskForm):  # type: ignore[misc]
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    slug = StringField(_l("Slug"), validators=[Optional(), Length(max=64), SLUG])
    target_learners = IntegerField(
        _l("Learner target"), validators=[DataRequired(), NumberRange(min=1, max=10_000_000)]
    )
    target_date = DateField(_l("Target date"), validators=[DataRequired()])
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])
    submit = SubmitField(_l("Create program"))


class CohortForm(FlaskForm):  # type: ignore[misc]
    program = SelectField(_l("Program"), coerce=int)
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    slug = StringField(_l("Slug"), validators=[Optional(), Length(max=64), SLUG])
    starts_on = DateField(_l("Starts on"), validators=[DataRequired()])
    ends_on = DateField(_l("Ends on"), validators=[DataRequired()])
    organisation = SelectField(_l("Organisation"), coerce=int)
    courses = MultiCheckboxField(_l("Courses"), coerce=int)
    submit = SubmitField(_l("Create cohort"))


class OrganisationForm(FlaskForm):  # type: ignore[misc]
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(
        _l("Kind"), choices=[SelectChoice(k.value, LABELS[k]) for k in OrganisationKind]
    )
    submit = SubmitField(_l("Create organisation"))


class ImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(), FileAllowed(["csv", "txt"], _l("Upload a .csv file."))],
        description=_l("Columns: email (required), name, organisation. UTF-8."),
    )
    invite = BooleanField(_l("Then invite by email everyone of the cohort not invited yet"))
    submit = SubmitField(_l("Import learners"))


class DeleteForm(FlaskForm):  # type: ignore[misc]
    """An empty form: its CSRF token is what protects a revoke button."""

    submit = SubmitField(_l("Revoke"))


class AccountStateForm(FlaskForm):  # type: ignore[misc]
    """The deactivate and reactivate buttons: the CSRF token, and the email of the user the
    page shows (a post without it, or naming someone else, changes nothing)."""

    email = HiddenField(validators=[DataRequired(), Length(max=254)])


class EraseForm(FlaskForm):  # type: ignore[misc]
    """Erasure cannot be undone: the admin types the person's email to confirm."""

    confirm_email = StringField(
        _l("Type the person's email to confirm"),
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "off"},
    )
    submit = SubmitField(_l("Erase personal data"))


class MergeForm(FlaskForm):  # type: ignore[misc]
    into_email = StringField(
        _l("Email of the account to keep"),
        validators=[DataRequired(), Length(max=254), EmailAddress()],
        description=_l(
            "This account's enrolments, work and roles move there; this account is then "
            "deactivated."
        ),
    )
    submit = SubmitField(_l("Merge into that account"))

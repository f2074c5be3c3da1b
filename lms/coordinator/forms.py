"""The coordinator's forms: progress exports."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from lms.reporting.exports import FORMATS
from lms.services.export_jobs import SCOPES


class ExportForm(FlaskForm):  # type: ignore[misc]
    """One export button: what (scope and slug) and in which format. The labels are the
    buttons' (lms/templates/coordinator/_export_buttons.html); the fields are hidden."""

    scope = SelectField(choices=[SelectChoice(scope, scope) for scope in SCOPES])
    slug = StringField(validators=[DataRequired(), Length(max=64)])
    format = SelectField(choices=[SelectChoice(fmt, fmt) for fmt in FORMATS])

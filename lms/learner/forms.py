"""The learner's forms: uploading a submission, submitting from the lab, resetting a notebook."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileRequired, MultipleFileField
from wtforms import BooleanField, HiddenField, SelectField, SubmitField
from wtforms.validators import DataRequired, Length


class SubmitForm(FlaskForm):  # type: ignore[misc]
    notebook = MultipleFileField(
        _l("Notebook file (.ipynb)"),
        validators=[FileRequired(_l("Choose the notebook file to upload."))],
        description=_l(
            "The notebook you downloaded, with your answers, saved in Jupyter. For an "
            "assignment with several notebooks, choose them all."
        ),
        render_kw={"accept": ".ipynb,application/x-ipynb+json"},
    )
    # One per page shown: a double click or a resent form makes one submission, not two.
    submit_key = HiddenField(validators=[DataRequired(), Length(max=64)])
    submit = SubmitField(_l("Submit"))


class OpenLabForm(FlaskForm):  # type: ignore[misc]
    """Open the lab: make the learner's folder and start their lab server (a POST: a link,
    a prefetch or a crawler never starts anything)."""

    notebook = HiddenField(validators=[Length(max=200)])
    submit = SubmitField(_l("Open lab"))


class LabSubmitForm(FlaskForm):  # type: ignore[misc]
    """Submit the notebooks saved in the lab (no file to choose: the workspace has them)."""

    submit_key = HiddenField(validators=[DataRequired(), Length(max=64)])
    submit = SubmitField(_l("Submit saved notebooks"))


class ResetForm(FlaskForm):  # type: ignore[misc]
    notebook = SelectField(_l("Notebook"), validators=[DataRequired()])
    confirm = BooleanField(
        _l("Yes, put this notebook back as released"),
        validators=[DataRequired(_l("Tick the box to confirm."))],
        description=_l("Your current copy is kept beside it, renamed, in your lab folder."),
    )
    submit = SubmitField(_l("Reset to release"))

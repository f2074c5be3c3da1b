"""The learner's forms: uploading a submission."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileRequired, MultipleFileField
from wtforms import HiddenField, SubmitField
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

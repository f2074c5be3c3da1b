from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from lms.config import LANGUAGE_NAMES


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = StringField(
        _l("Email"),
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Sign in"))


class LanguageForm(FlaskForm):  # type: ignore[misc]
    lang = SelectField(
        _l("Language"), choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()]
    )
    submit = SubmitField(_l("Change language"))


class LogoutForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField(_l("Log out"))

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from lms.config import LANGUAGE_NAMES
from lms.formatting import timezone_choices


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


class TimeZoneForm(FlaskForm):  # type: ignore[misc]
    zone = SelectField(
        _l("Time zone"),
        description=_l("Dates and times on every page are shown in this zone."),
    )
    submit = SubmitField(_l("Save time zone"))

    def __init__(self, *args: object, browser_zone: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        detected = browser_zone or "UTC"
        self.zone.choices = [
            SelectChoice("", str(_l("Your browser's (%(zone)s)", zone=detected))),
            *(SelectChoice(zone, zone) for zone in timezone_choices()),
        ]


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired(), Length(max=1024)],
        description=_l(
            "At least 12 characters. A few unrelated words make a strong password that is "
            "easy to remember."
        ),
        render_kw={"autocomplete": "new-password", "minlength": 12},
    )


class SetPasswordForm(FlaskForm):  # type: ignore[misc]
    """Choosing a password from an invitation or reset link."""

    password = _new_password(_l("New password"))
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Set my password"))


class ForgotPasswordForm(FlaskForm):  # type: ignore[misc]
    email = StringField(
        _l("Email"),
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    submit = SubmitField(_l("Send me a link"))


class ChangePasswordForm(FlaskForm):  # type: ignore[misc]
    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    password = _new_password(_l("New password"))
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Change my password"))


class ChangeEmailForm(FlaskForm):  # type: ignore[misc]
    email = StringField(
        _l("New email address"),
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    current = PasswordField(
        _l("Current password"),
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Send a confirmation link"))


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """One button: a link followed from a mail changes nothing until it is pressed."""

    submit = SubmitField(_l("Confirm"))

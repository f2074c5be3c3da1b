"""Sign in and out, and the language choice."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from lms.auth.forms import LanguageForm, LoginForm
from lms.extensions import limiter
from lms.services import users

bp = Blueprint("auth", __name__)


def _account_key() -> str:
    return "login-account:" + users.normalize_email(request.form.get("email", ""))


def _ip_key() -> str:
    return "login-ip:" + (request.remote_addr or "unknown")


def _login_failed(response: Response) -> bool:
    return bool(g.get("login_failed"))


def _limit(name: str) -> str:
    from flask import current_app

    return str(current_app.config[name])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: _limit("LOGIN_LIMIT_PER_IP"),
    key_func=_ip_key,
    methods=["POST"],
    deduct_when=_login_failed,
)
@limiter.limit(
    lambda: _limit("LOGIN_LIMIT_PER_ACCOUNT"),
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_login_failed,
)
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(form.email.data, form.password.data)
        if user is not None:
            # A fresh session at sign-in: nothing from before (e.g. a planted one) carries over.
            lang = session.get("lang")
            session.clear()
            if lang:
                session["lang"] = lang
            session.permanent = True
            login_user(user)
            users.record_login(user)
            return redirect(safe_next(request.args.get("next")) or url_for("index"))
        g.login_failed = True
        flash(_("Invalid email or password."), "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: no scheme, no host, no protocol-relative //host."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.post("/logout")
@login_required  # type: ignore[untyped-decorator]
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language() -> ResponseReturnValue:
    form = LanguageForm()
    if form.validate_on_submit():
        session["lang"] = form.lang.data
        if current_user.is_authenticated:
            users.set_locale(current_user, form.lang.data)
    return redirect(safe_next(request.form.get("next")) or url_for("index"))


@bp.get("/welcome")
@login_required  # type: ignore[untyped-decorator]
def no_role() -> ResponseReturnValue:
    return render_template("auth/no_role.html")

"""Sign in and out, and the language choice."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user

from lms.auth.forms import LanguageForm, LoginForm
from lms.services import login_throttle, sessions, users

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        email = users.normalize_email(form.email.data)
        ip = request.remote_addr
        # A throttled attempt is refused before the password is even looked at.
        wait = login_throttle.wait_seconds(
            email, ip, trusted_device=login_throttle.trusted_device(email)
        )
        if wait:
            return _throttled(form, wait)
        user = users.authenticate(email, form.password.data)
        if user is None:
            login_throttle.record_failure(email, ip)
            flash(_("Invalid email or password."), "error")
            return render_template("auth/login.html", form=form), 401
        login_throttle.record_success(email, ip)
        # A fresh session at sign-in: nothing from before (e.g. a planted one) carries over,
        # and a session this browser had before ends on the server too.
        sessions.revoke(session.get("sid"), "replaced")
        token = sessions.start(user, ip, request.user_agent.string)
        lang = session.get("lang")
        session.clear()
        if lang:
            session["lang"] = lang
        session.permanent = True
        login_user(user)
        session["sid"] = token
        users.record_login(user)
        response = redirect(safe_next(request.args.get("next")) or url_for("index"))
        login_throttle.remember_device(response, user)
        return response
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


def _throttled(form: LoginForm, wait: int) -> ResponseReturnValue:
    flash(
        ngettext(
            "Too many failed sign-ins. Wait %(num)d second, then try again.",
            "Too many failed sign-ins. Wait %(num)d seconds, then try again.",
            wait,
        ),
        "error",
    )
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(wait)
    return response


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
    sessions.revoke(session.get("sid"), "sign-out")
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

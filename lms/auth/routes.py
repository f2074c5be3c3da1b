"""Sign in and out, and the language choice."""

from __future__ import annotations

import hashlib

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
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
from limits import parse as parse_limit
from werkzeug.wrappers import Response as BaseResponse

from lms import formatting
from lms.auth.forms import (
    ChangeEmailForm,
    ChangePasswordForm,
    ConfirmForm,
    ForgotPasswordForm,
    LanguageForm,
    LoginForm,
    SetPasswordForm,
    TimeZoneForm,
)
from lms.extensions import limiter
from lms.models import LinkPurpose, User
from lms.services import ServiceError, accounts, login_throttle, people, sessions, users
from lms.urls import safe_next

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
        response = redirect(safe_next(request.args.get("next")) or url_for("index"))
        _sign_in(user, response)
        return response
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


def _sign_in(user: User, response: BaseResponse) -> None:
    # A fresh session at sign-in: nothing from before (e.g. a planted one) carries over,
    # and a session this browser had before ends on the server too.
    sessions.revoke(session.get("sid"), "replaced")
    token = sessions.start(user, request.remote_addr, request.user_agent.string)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session.permanent = True
    login_user(user)
    session["sid"] = token
    users.record_login(user)
    login_throttle.remember_device(response, user)


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


# --- Links from mails: invitations, resets, email changes ---------------------------------


def _link_problem(problem: str) -> ResponseReturnValue:
    """A page that says why a link does not work, and what to do instead."""
    messages = {
        "expired": _("This link has expired."),
        "used": _("This link has already been used."),
        "superseded": _("A newer link was sent to you since: use the newest one."),
        "inactive": _("This account is deactivated. Ask your program's coordinator."),
    }
    message = messages.get(problem, _("This link is not valid. Check that you copied all of it."))
    return _private(render_template("auth/link_problem.html", message=message), 410)


def _private(body: str, status: int = 200) -> Response:
    """Pages whose URL holds a token: the token must not leak through the Referer header to
    another site, nor be kept in a cache."""
    response = make_response(body, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _choose_password(token: str, purpose: LinkPurpose) -> ResponseReturnValue:
    check = accounts.check_link(token, purpose)
    if check.problem is not None or check.link is None:
        return _link_problem(check.problem or "unknown")
    form = SetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.set_password_with_link(token, purpose, form.password.data)
        except accounts.AccountError as e:
            return _link_problem(str(e))
        except ServiceError as e:
            form.password.errors.append(str(e))
            status = 400
        else:
            response = redirect(url_for("index"))
            _sign_in(user, response)
            flash(
                _("Welcome! Your password is set.")
                if purpose == LinkPurpose.INVITE
                else _("Your password is changed. You were signed out everywhere else."),
                "info",
            )
            return response
    elif form.errors:
        status = 400
    return _private(
        render_template(
            "auth/set_password.html", form=form, user=check.link.user, purpose=str(purpose)
        ),
        status,
    )


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str) -> ResponseReturnValue:
    """An invitation's link: choose a password, and land on My learning signed in."""
    return _choose_password(token, LinkPurpose.INVITE)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> ResponseReturnValue:
    return _choose_password(token, LinkPurpose.RESET)


def _reset_allowed(email: str) -> bool:
    """Per client address and per address asked for (counted whether it exists or not)."""
    config = current_app.config
    storage = limiter.limiter
    client_ok = storage.hit(
        parse_limit(str(config["RESET_LIMIT_PER_CLIENT"])),
        "reset-client",
        request.remote_addr or "-",
    )
    if not client_ok:
        return False
    digest = hashlib.sha256(email.encode()).hexdigest()
    return storage.hit(parse_limit(str(config["RESET_LIMIT_PER_ADDRESS"])), "reset-address", digest)


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    """Never says whether the address has an account: the same answer, in the same time."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = users.normalize_email(form.email.data)
        if not _reset_allowed(email):
            flash(_("Too many requests. Wait an hour, then try again."), "error")
            response = make_response(render_template("auth/forgot_password.html", form=form), 429)
            response.headers["Retry-After"] = "3600"
            return response
        if users.is_valid_email(email):
            accounts.request_reset(email)
        flash(
            _(
                "If an account uses %(email)s, a link to choose a new password is on its way. "
                "It works for %(minutes)d minutes.",
                email=email,
                minutes=int(current_app.config["RESET_MINUTES"]),
            ),
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form), 400 if form.errors else 200


@bp.route("/account", methods=["GET", "POST"])
@login_required  # type: ignore[untyped-decorator]
def account() -> ResponseReturnValue:
    """One's own account: password, email and the time zone dates are shown in."""
    password_form = ChangePasswordForm(prefix="pw")
    email_form = ChangeEmailForm(prefix="em")
    user: User = current_user
    zone_form = TimeZoneForm(
        prefix="tz",
        browser_zone=formatting.valid_timezone(request.cookies.get(formatting.TIMEZONE_COOKIE)),
        data={"zone": user.time_zone or ""},
    )
    status = 200
    if zone_form.submit.data and zone_form.validate_on_submit():
        users.set_time_zone(user, zone_form.zone.data or None)
        flash(
            _(
                "Dates and times are now shown in %(zone)s.",
                zone=formatting.select_timezone() or "UTC",
            ),
            "info",
        )
        return redirect(url_for("auth.account"))
    if password_form.submit.data and password_form.validate_on_submit():
        try:
            accounts.change_password(
                user, password_form.current.data, password_form.password.data, session.get("sid")
            )
        except accounts.AccountError as e:
            password_form.current.errors.append(_account_error(str(e)))
            status = 400
        except ServiceError as e:
            password_form.password.errors.append(str(e))
            status = 400
        else:
            flash(_("Your password is changed. You were signed out everywhere else."), "info")
            return redirect(url_for("auth.account"))
    elif email_form.submit.data and email_form.validate_on_submit():
        if users.authenticate(user.email, email_form.current.data) is None:
            email_form.current.errors.append(_("Your current password is not right."))
            status = 400
        else:
            try:
                accounts.request_email_change(user, email_form.email.data)
            except accounts.AccountError as e:
                email_form.email.errors.append(_account_error(str(e)))
                status = 400
            else:
                flash(
                    _(
                        "A confirmation link is on its way to %(email)s. Your address changes "
                        "when you follow it.",
                        email=users.normalize_email(email_form.email.data),
                    ),
                    "info",
                )
                return redirect(url_for("auth.account"))
    if password_form.errors or email_form.errors or zone_form.errors:
        status = 400
    return render_template(
        "auth/account.html", password_form=password_form, email_form=email_form, zone_form=zone_form
    ), status


@bp.get("/account/data.zip")
@login_required  # type: ignore[untyped-decorator]
def my_data() -> ResponseReturnValue:
    """Everything the system holds about me, as one archive."""
    response = Response(
        people.personal_data(current_user, current_user), mimetype="application/zip"
    )
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.zip"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _account_error(message: str) -> str:
    """The service's English reasons, in the reader's language."""
    known: dict[str, str] = {
        "Your current password is not right.": _("Your current password is not right."),
        "Another account uses this address.": _("Another account uses this address."),
    }
    if message.startswith("Not a valid email address"):
        return str(_("Not a valid email address."))
    return known.get(message, message)


@bp.route("/account/email/<token>", methods=["GET", "POST"])
def confirm_email(token: str) -> ResponseReturnValue:
    check = accounts.check_link(token, LinkPurpose.EMAIL)
    if check.problem is not None or check.link is None:
        return _link_problem(check.problem or "unknown")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            user = accounts.confirm_email(token)
        except accounts.AccountError as e:
            if str(e) in ("expired", "used", "superseded", "inactive", "unknown"):
                return _link_problem(str(e))
            flash(_account_error(str(e)), "error")
            return redirect(url_for("auth.login"))
        flash(_("Your email address is now %(email)s.", email=user.email), "info")
        return redirect(url_for("auth.account" if current_user.is_authenticated else "auth.login"))
    if request.method == "POST":
        abort(400)
    return _private(
        render_template("auth/confirm_email.html", form=form, new_email=check.link.new_email)
    )

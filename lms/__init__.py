"""The LMS Flask application."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, has_request_context, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from lms import config, formatting, queue, storage
from lms.extensions import (
    babel,
    csrf,
    db,
    limit_idle_transactions,
    limiter,
    login_manager,
    mail,
    migrate,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # LMS_INSTANCE_PATH moves instance/ (SQLite files, secret key, data), e.g. onto a volume.
    instance_path = os.environ.get("LMS_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
    )
    config.load(app, test_config)
    app.session_interface = SessionInterface()
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )

    db.init_app(app)
    limit_idle_transactions(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=formatting.select_timezone)
    queue.init_app(app)
    storage.init_app(app)
    _init_login(app)

    from lms import (
        admin,
        api,
        auth,
        certificates,
        commands,
        coordinator,
        errors,
        health,
        instructor,
        invitations,
        labels,
        learner,
    )

    for module in (
        health,
        auth,
        learner,
        instructor,
        coordinator,
        admin,
        invitations,
        certificates,
        api,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(learner.stopped_bp)
    app.register_blueprint(learner.identity_bp)
    errors.register(app)
    labels.register(app)
    app.cli.add_command(commands.lms)

    app.add_url_rule("/", "index", index)
    # Browsers ask for /favicon.ico whatever the page says: the same icon, no 404.
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.svg"))
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    return app


def select_locale() -> str | None:
    if not has_request_context():  # the CLI and the worker speak the default language
        return None
    chosen = session.get("lang")
    if chosen in config.LANGUAGES:
        return str(chosen)
    if current_user.is_authenticated and current_user.locale in config.LANGUAGES:
        return str(current_user.locale)
    return request.accept_languages.best_match(config.LANGUAGES)


def index() -> ResponseReturnValue:
    from lms import access

    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    pages = access.homes(current_user)
    if not pages:
        return redirect(url_for("auth.no_role"))
    return redirect(url_for(pages[0][0]))


def _init_login(app: Flask) -> None:
    from flask_babel import lazy_gettext

    from lms.models import User

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in to open this page.")
    # "basic": a changed address (a phone switching networks) only marks the session non-fresh.
    login_manager.session_protection = "basic"

    @login_manager.user_loader  # type: ignore[untyped-decorator]
    def load_user(user_id: str) -> User | None:
        """The user only while the cookie's `sid` is a valid server-side session of theirs
        (not signed out, not revoked, the user active); anonymous otherwise."""
        from lms.services import sessions

        found = sessions.current(session.get("sid"))
        if found is None or str(found.user_id) != user_id:
            return None
        sessions.touch(found)
        return found.user


def _template_globals() -> dict[str, Any]:
    from lms import access

    # Mails are rendered by the worker, outside any request (and signed-in user).
    signed_in = has_request_context() and current_user.is_authenticated
    homes = access.homes(current_user) if signed_in else []
    return {"role_homes": homes, "languages": config.LANGUAGE_NAMES, "get_locale": get_locale}


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie Secure whenever the request came over
    HTTPS (directly, or through a trusted proxy saying X-Forwarded-Proto: https), so that
    `make run` on plain http://127.0.0.1 keeps working."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if has_request_context() and request.is_secure:
            return True
        return super().get_cookie_secure(app)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        # Only over HTTPS: browsers ignore it on plain HTTP, and localhost must stay usable.
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    return response

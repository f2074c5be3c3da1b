"""Error pages: one template, a clear message, the right status."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError) -> ResponseReturnValue:
        message = _(
            "This form has expired or was not sent by this site. Reload the page and try again."
        )
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> ResponseReturnValue:
        if e.code is None or e.code < 400 or e.response is not None:
            return e
        messages = {
            403: _("You do not have access to this page."),
            404: _("This page does not exist."),
            413: _(
                "The upload is too large (the limit is %(mb)s MB).",
                mb=current_app.config["MAX_UPLOAD_MB"],
            ),
            429: _("Too many attempts. Please wait a few minutes and try again."),
        }
        message = messages.get(e.code, e.description or "")
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return {"error": message}, e.code
        # A refused upload: back to the page of its form, where the file can be chosen again.
        back = request.path if e.code == 413 and request.method == "POST" else None
        return render_template("errors/error.html", code=e.code, message=message, back=back), e.code

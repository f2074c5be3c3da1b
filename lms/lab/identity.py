"""The identity provider of a learner's lab server: it trusts the LMS, and only the LMS.

A lab server (jupyter-server, one per learner, behind the same host as the LMS) admits a
request only when it carries the LMS's own session cookie, signed with the LMS's secret key,
of the learner who owns the server. There is no token in any URL: a copied lab link opens
nothing for anyone else, and signing out of the LMS closes the lab too.

This module runs inside the lab server process: it imports Flask's session serializer, not
the LMS app. The server is configured with
    --ServerApp.identity_provider_class=lms.lab.identity.LmsIdentityProvider
    --LmsIdentityProvider.owner=<LMS user id>
and reads the secret from the environment (LMS_LAB_SECRET_KEY), never from its command line,
which other local users can read.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from traitlets import Int, Unicode

SECRET_ENV = "LMS_LAB_SECRET_KEY"


def session_serializer(secret_key: str, max_age_seconds: int) -> URLSafeTimedSerializer:
    """Flask's serializer of the LMS session cookie, for this secret (no LMS app needed)."""
    signer = Flask("lms-lab")
    signer.secret_key = secret_key
    signer.permanent_session_lifetime = timedelta(seconds=max_age_seconds)
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    if serializer is None:
        raise ValueError("no session serializer")
    return serializer


class LmsIdentityProvider(IdentityProvider):
    owner = Unicode(help="The LMS user id of the learner who owns this lab server.").tag(
        config=True
    )
    session_cookie = Unicode("session", help="The LMS's session cookie name.").tag(config=True)
    max_age_seconds = Int(
        12 * 3600, help="Sessions older than this (the LMS's own lifetime) are refused."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        secret = os.environ.get(SECRET_ENV, "")
        if not secret or not self.owner:
            raise ValueError(f"a lab server needs {SECRET_ENV} and LmsIdentityProvider.owner")
        self._serializer = session_serializer(secret, self.max_age_seconds)

    @property
    def login_available(self) -> bool:
        return False  # sign-in happens in the LMS

    def get_user(self, handler: web.RequestHandler) -> User | None:
        """The owner, from the LMS session cookie. Someone signed in to the LMS as anyone
        else gets 403; without a valid session, None (pages then send the browser to the
        LMS sign-in, the API answers 403). Tokens are never looked at."""
        raw = handler.get_cookie(self.session_cookie)
        if not raw:
            return None
        try:
            session = self._serializer.loads(raw, max_age=self.max_age_seconds)
        except BadSignature:
            return None
        signed_in = str(session.get("_user_id", ""))
        if not signed_in:
            return None
        if signed_in != self.owner:
            raise web.HTTPError(403, "this lab belongs to another learner")
        return User(username=f"learner-{self.owner}", name=self.owner, display_name=self.owner)

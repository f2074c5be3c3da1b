"""JupyterHub's authenticator for the LMS: a learner is admitted to JupyterHub on the strength
of their LMS session, by asking the LMS.

The browser reaches JupyterHub on the site's own address (JupyterHub's proxy sends every path
but /hub/ and /user/ to the LMS), so it carries the LMS's session cookie to /hub/lms-login.
The hub posts that cookie to the LMS (POST /labs/identity, with the identity token that lets
it ask only this) and the LMS answers with the user's lab name while the session is valid: a
signed-out, revoked, expired or deactivated session gets no lab. JupyterHub never holds the
LMS's secret key, and the LMS decides who may have a lab.

Runs inside JupyterHub (lms.lab.jupyterhub_config): imports nothing of Flask or the LMS's
database.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Unicode

IDENTITY_PATH = "/labs/identity"


class LmsLoginHandler(BaseHandler):  # type: ignore[misc]
    """/hub/lms-login: signed in to the LMS, signed in here; otherwise to the LMS's sign-in,
    which brings the browser back."""

    async def get(self) -> None:
        user = await self.login_user()
        if user is None:
            if getattr(self, "lms_unreachable", False):
                raise web.HTTPError(503, "The LMS did not answer: try again in a moment.")
            self.redirect(f"/login?next={quote(self.request.uri or '/hub/', safe='')}")
            return
        self.redirect(self.get_next_url(user))


class LmsAuthenticator(Authenticator):  # type: ignore[misc]
    lms_url = Unicode(
        "http://127.0.0.1:8001", config=True, help="Where the hub reaches the LMS directly."
    )
    identity_token = Unicode(config=True, help="Lets the hub ask the LMS whose a session is.")
    session_cookie = Unicode("session", config=True, help="The LMS's session cookie's name.")
    auto_login = Bool(True)
    # Who may have a lab is the LMS's to say: whoever it vouches for is allowed.
    allow_all = Bool(True)

    def login_url(self, base_url: str) -> str:
        return str(url_path_join(base_url, "lms-login"))

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        return [("/lms-login", LmsLoginHandler)]

    async def authenticate(self, handler: Any, data: Any = None) -> dict[str, Any] | None:
        cookie = handler.get_cookie(self.session_cookie)
        if not cookie:
            return None
        request = HTTPRequest(
            self.lms_url.rstrip("/") + IDENTITY_PATH,
            method="POST",
            headers={
                "Authorization": f"token {self.identity_token}",
                "Content-Type": "application/json",
            },
            body=json.dumps({"cookie": cookie}),
            request_timeout=10,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if e.code not in (401, 403):
                handler.lms_unreachable = True
                self.log.warning("the LMS answered %s to an identity question", e.code)
            return None
        except OSError as e:
            handler.lms_unreachable = True
            self.log.warning("the LMS did not answer an identity question: %s", e)
            return None
        answer = json.loads(response.body)
        return {"name": str(answer["name"]), "auth_state": None}

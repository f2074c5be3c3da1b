"""The identity provider of a learner's lab server: it trusts the lab hub, and only the hub.

A lab server (jupyter-server, one per learner) holds no secret of the LMS: it never sees a
browser's LMS cookies, and it could not check one if it did. The lab hub is the only way in:
its proxy checks each request to /lab/<owner>/ against the LMS's server-side sessions (signed
out, deactivated or stolen-and-revoked sessions are refused at once), removes the LMS's cookies,
and adds this server's own credential (X-Lab-Token), a random token the hub made when it started
the server and handed to it in its environment. A request without it, or with another server's,
opens nothing: the server listens on the loopback only, and the hub is what is in front.

This module runs inside the lab server process and imports nothing of the LMS app.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from traitlets import Unicode

TOKEN_ENV = "LMS_LAB_SERVER_TOKEN"
TOKEN_HEADER = "X-Lab-Token"


class LmsIdentityProvider(IdentityProvider):
    owner = Unicode(help="The LMS user id of the learner who owns this lab server.").tag(
        config=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        token = os.environ.pop(TOKEN_ENV, "")  # not left for anything this process starts
        if len(token) < 32 or not self.owner:
            raise ValueError(f"a lab server needs {TOKEN_ENV} and LmsIdentityProvider.owner")
        self._token = token.encode()

    @property
    def login_available(self) -> bool:
        return False  # sign-in happens in the LMS

    def get_user(self, handler: web.RequestHandler) -> User | None:
        """The owner when the request came through the hub (its header holds this server's
        credential); None otherwise: pages then send the browser to the LMS sign-in, the API
        answers 403. Tokens and cookies are never looked at."""
        given = handler.request.headers.get(TOKEN_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self._token):
            return None
        return User(username=f"learner-{self.owner}", name=self.owner, display_name=self.owner)

"""A small Jupyter client of one lab server, through its public URL (the proxy).

What a browser does, without the browser: the benchmark (benchmarks/labs.py) and the tests use
it to start a kernel in a learner's lab, run code in it and read or write notebooks.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
import websocket


class LabClientError(RuntimeError):
    pass


class LabClient:
    """A lab server at `base` (e.g. http://127.0.0.1:8000/lab/7/) as the holder of `cookies`
    (a browser's, through the proxy) or of `headers` (the hub's, straight to the server)."""

    def __init__(
        self,
        base: str,
        cookies: dict[str, str] | None = None,
        timeout: float = 120.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base = base if base.endswith("/") else base + "/"
        self.http = requests.Session()
        self.http.cookies.update(cookies or {})
        self.http.headers.update(headers or {})
        self.timeout = timeout

    def _xsrf(self) -> str:
        """Tornado's XSRF token: the cookie a page sets, echoed in a header."""
        token = self._xsrf_cookie()
        if not token:
            self.http.get(self.base + "api/status", timeout=self.timeout)
            self.http.get(self.base + "tree", timeout=self.timeout)
            token = self._xsrf_cookie()
        if not token:
            raise LabClientError("the lab server set no _xsrf cookie")
        return token

    def _xsrf_cookie(self) -> str | None:
        """The server's own _xsrf cookie: the one with the longest path over its base, as a
        browser picks it (JupyterHub sets another for /hub/)."""
        path = urlsplit(self.base).path
        matching = [
            c for c in self.http.cookies if c.name == "_xsrf" and path.startswith(c.path or "/")
        ]
        if not matching:
            return None
        return str(max(matching, key=lambda c: len(c.path or "")).value)

    def request(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"X-XSRFToken": self._xsrf()} if method != "GET" else {}
        return self.http.request(
            method, self.base + path, json=body, headers=headers, timeout=self.timeout
        )

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, body)
        if response.status_code >= 400:
            raise LabClientError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def start_kernel(self, path: str = "") -> str:
        """A kernel whose working folder is `path` (relative to the workspace); its id."""
        kernel = self.api("POST", "api/kernels", {"name": "python3", "path": path})
        return str(kernel["id"])

    def shutdown_kernel(self, kernel_id: str) -> None:
        self.api("DELETE", f"api/kernels/{kernel_id}")

    def execute(self, kernel_id: str, code: str, timeout: float = 60.0) -> str:
        """Run code in the kernel over its websocket; the text it printed or returned.
        An error in the code raises LabClientError with the error's name and value."""
        url = self.base.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        headers = [f"{k}: {v}" for k, v in self.http.headers.items() if k.lower().startswith("x-")]
        socket = websocket.create_connection(
            url, cookie=cookie or None, header=headers, timeout=timeout
        )
        try:
            return _run(socket, code, time.monotonic() + timeout)
        finally:
            socket.close()

    def notebook(self, path: str) -> dict[str, Any]:
        model: dict[str, Any] = self.api("GET", f"api/contents/{path}?content=1")
        return model

    def save_notebook(self, path: str, content: dict[str, Any]) -> None:
        self.api("PUT", f"api/contents/{path}", {"type": "notebook", "content": content})


def _run(socket: websocket.WebSocket, code: str, deadline: float) -> str:
    msg_id = uuid.uuid4().hex
    socket.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": False},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    output: list[str] = []
    error = None
    while time.monotonic() < deadline:
        message = json.loads(socket.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            output.append(content["text"])
        elif kind == "execute_result":
            output.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            error = f"{content['ename']}: {content['evalue']}"
        elif kind == "status" and content["execution_state"] == "idle":
            if error:
                raise LabClientError(error)
            return "".join(output)
    raise LabClientError("the kernel did not finish in time")

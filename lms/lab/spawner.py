"""JupyterHub's spawner for the LMS's labs: a learner's lab server, started as the lab hub
starts it (lms.lab.launch: bubblewrap, a uid of its own, seccomp, a cgroup) and run as
JupyterHub's single-user server (lms.lab.singleuser), one per learner with all their
assignments in one workspace (a learner holds one server's memory; the kernel caps are per
learner). Its kernels come from the kernel service's sandboxed pool (`flask lms labs`): the
spawner registers the server's kernel token and relay folder there, and takes them back when
the server stops. The learner's LMS language (the `language` user option the LMS starts the
server with) is the lab's.

Runs inside JupyterHub (lms.lab.jupyterhub_config), as root.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

from jupyterhub.spawner import Spawner
from jupyterhub.utils import random_port
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Float, Unicode

from lms.lab import kernels, launch, server

STOP_WAIT_SECONDS = 10.0


class LabSpawner(Spawner):  # type: ignore[misc]
    data_dir = Unicode(config=True, help="LMS_DATA_DIR: workspaces/<id>/ and labs/<id>/.")
    kernels_url = Unicode(config=True, help="The kernel service's API (LMS_LAB_HUB_URL).")
    kernels_token = Unicode(config=True, help="The kernel service's token.")
    sandboxed = Bool(True, config=True, help="False only for development (LMS_SANDBOX=off).")
    idle_seconds = Float(30 * 60, config=True, help="A kernel idle this long is given back.")
    release_seconds = Float(
        120, config=True, help="A kernel no browser watches is given back after this long."
    )

    launched: launch.Launched | None = None

    @property
    def owner(self) -> int:
        return int(self.user.name)

    async def start(self) -> tuple[str, int]:
        owner = self.owner
        data = Path(self.data_dir)
        private = data / "labs" / str(owner)
        for name in ("runtime", "data", "config"):
            (private / name).mkdir(parents=True, exist_ok=True)
        os.chmod(private, 0o700)
        root = data / "workspaces" / str(owner)
        root.mkdir(parents=True, exist_ok=True)
        config = server.write_config(
            private / "lab.json",
            owner,
            idle_seconds=self.idle_seconds,
            release_seconds=self.release_seconds,
            jupyterhub=True,
        )
        server.write_language(private / "config", (self.user_options or {}).get("language"))
        self.ip, self.port = "127.0.0.1", random_port()
        api_token = secrets.token_urlsafe(32)
        env = {
            **self.get_env(),  # JupyterHub's: its API, the OAuth client, the URL prefix, the port
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "USER": f"learner-{owner}",
            **server.environment(private),
            "PYTHONPATH": str(launch.REPOSITORY),
            kernels.HUB_URL_ENV: self.kernels_url,
            kernels.HUB_TOKEN_ENV: api_token,
            kernels.OWNER_ENV: str(owner),
        }
        launched = await asyncio.to_thread(
            launch.launch,
            owner,
            server.singleuser_command(config, root),
            env,
            root=root,
            private=private,
            sandboxed=self.sandboxed,
        )
        self.launched = launched
        try:
            await self._kernel_service(
                "PUT",
                owner,
                {
                    "api_token": api_token,
                    "relay_folder": str(launched.relay_folder),
                    "uid": launched.uid,
                },
            )
        except BaseException:
            await self.stop(now=True)
            raise
        return self.ip, self.port

    async def poll(self) -> int | None:
        if self.launched is None:
            return 0  # not started by this hub process (JupyterHub stops its servers on exit)
        return self.launched.process.poll()

    async def stop(self, now: bool = False) -> None:
        launched, self.launched = self.launched, None
        if launched is None:
            return
        process = launched.process
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)  # jupyter-server shuts its kernels down
            for _ in range(int(STOP_WAIT_SECONDS * 10)):
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                _signal_group(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait)
        await asyncio.to_thread(launched.release)
        try:
            await self._kernel_service("DELETE", self.owner, None)
        except (HTTPClientError, OSError) as e:  # the service gives them back when it restarts
            self.log.warning("could not unregister %s's lab from the kernels: %s", self.owner, e)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.launched is not None:
            state["pid"] = self.launched.process.pid
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self.launched = None

    async def _kernel_service(self, method: str, owner: int, body: dict[str, Any] | None) -> None:
        request = HTTPRequest(
            f"{self.kernels_url.rstrip('/')}/servers/{owner}/registration",
            method=method,
            headers={"Authorization": f"token {self.kernels_token}"},
            body=None if body is None else json.dumps(body),
            request_timeout=10,
        )
        await AsyncHTTPClient().fetch(request)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # its own session: the sandbox and everything in it
    except ProcessLookupError:
        pass

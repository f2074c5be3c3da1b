"""JupyterHub's configuration for the LMS (`flask lms hub` runs `jupyterhub -f` this file).

Every value comes from the environment `flask lms hub` gives JupyterHub (LMSHUB_*), which holds
no LMS secret key and no LMS database URL: only the two tokens derived for the hub (the LMS's
service token, and the identity token that asks the LMS whose a session is).

- The site's one address is JupyterHub's proxy (configurable-http-proxy, its Python
  implementation): /hub/ goes to JupyterHub, /user/<name>/ to that learner's running lab
  server, and every other path to the LMS (the proxy's default target). A lab that is not
  running is therefore the LMS's to answer (its "lab stopped" page).
- Sign-in is the LMS's (lms.lab.jupyterhub_auth).
- The LMS drives JupyterHub through its REST API as the "lms" service.
- Lab servers are started by lms.lab.spawner (sandboxed, one per learner), their kernels
  lent by the kernel service (`flask lms labs`, LMSHUB_KERNELS_URL).
- jupyterhub-idle-culler stops lab servers idle for LMSHUB_IDLE_SECONDS.
"""

# ruff: noqa: F821 - `c` is JupyterHub's config object, given to this file when it is loaded

from __future__ import annotations

import os
import sys
from pathlib import Path

from lms.lab.jupyterhub_auth import LmsAuthenticator
from lms.lab.spawner import LabSpawner

env = os.environ
state = Path(env["LMSHUB_STATE_DIR"])
state.mkdir(parents=True, exist_ok=True)
lms_url = env["LMSHUB_LMS_URL"]
bin_dir = Path(sys.executable).parent

c = get_config()  # type: ignore[name-defined]  # noqa: F821

c.JupyterHub.bind_url = f"http://{env.get('LMSHUB_IP', '127.0.0.1')}:{env['LMSHUB_PORT']}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{env['LMSHUB_HUB_PORT']}"
c.JupyterHub.hub_routespec = "/hub/"
c.JupyterHub.db_url = env.get("LMSHUB_DB_URL") or f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
# Lab servers are the LMS's to start: nobody lands on a JupyterHub page of their own.
c.JupyterHub.default_url = "/"
c.JupyterHub.cleanup_servers = True

c.ConfigurableHTTPProxy.command = [
    str(bin_dir / "configurable-http-proxy"),
    "--default-target",
    lms_url,
]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['LMSHUB_PROXY_API_PORT']}"

c.JupyterHub.authenticator_class = LmsAuthenticator
c.LmsAuthenticator.lms_url = lms_url
c.LmsAuthenticator.identity_token = env["LMSHUB_IDENTITY_TOKEN"]
c.LmsAuthenticator.session_cookie = env.get("LMSHUB_SESSION_COOKIE", "session")

idle_seconds = int(float(env.get("LMSHUB_IDLE_SECONDS", "1800")))

# One lab server per learner, started as the lab hub starts them (sandboxed), its kernels from
# the kernel service's pool.
c.JupyterHub.spawner_class = LabSpawner
c.LabSpawner.data_dir = env["LMSHUB_DATA_DIR"]
c.LabSpawner.kernels_url = env["LMSHUB_KERNELS_URL"]
c.LabSpawner.kernels_token = env["LMSHUB_KERNELS_TOKEN"]
c.LabSpawner.sandboxed = env.get("LMSHUB_SANDBOX", "bwrap") == "bwrap"
c.LabSpawner.idle_seconds = float(idle_seconds)
c.LabSpawner.release_seconds = float(env.get("LMSHUB_KERNEL_RELEASE_SECONDS", "120"))
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.JupyterHub.services = [
    {"name": "lms", "api_token": env["LMSHUB_SERVICE_TOKEN"]},
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={idle_seconds}",
            f"--cull-every={max(10, min(300, idle_seconds // 6))}",
        ],
    },
]
c.JupyterHub.load_roles = [
    {
        "name": "lms",
        "description": "The LMS: starts, stops and lists learners' labs",
        "scopes": ["admin:users", "admin:servers", "list:users", "read:users"],
        "services": ["lms"],
    },
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
]

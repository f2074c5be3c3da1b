"""How a learner's lab server is started: the jupyter-server command and its configuration.

The server runs the Notebook 7 / JupyterLab front end on the learner's workspace, under
/lab/<user id>/, and admits only its owner (lms.lab.identity). Everything that would run
code outside the kernel sandbox is switched off: terminals, language servers and the
nbgrader extensions (formgrader is an instructor's tool; the LMS does the grading).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lms.lab import base_url
from lms.lab.identity import SECRET_ENV, LmsIdentityProvider
from lms.lab.kernels import SandboxKernelSpecManager

__all__ = ["SECRET_ENV", "base_url", "command", "write_config"]

DISABLED_EXTENSIONS = (
    "jupyter_server_terminals",
    "jupyter_lsp",
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)


def write_config(
    path: Path,
    owner: int,
    session_cookie: str,
    max_age_seconds: int,
    idle_seconds: float = 30 * 60,
    gateway_url: str = "",
) -> Path:
    """The server's JSON configuration (read with --config): no secret in it.

    Kernels come from the lab hub's sandboxed pool (lms.lab.kernels) or, with gateway_url, from
    a Jupyter Kernel Gateway; a kernel idle for idle_seconds is given back.
    """
    app: dict[str, Any] = {
        "identity_provider_class": _dotted(LmsIdentityProvider),
        "base_url": base_url(owner),
        "ip": "127.0.0.1",
        "open_browser": False,
        "terminals_enabled": False,
        "jpserver_extensions": dict.fromkeys(DISABLED_EXTENSIONS, False),
        # Requests come through the LMS's proxy, under whatever host name the site has.
        "allow_remote_access": True,
        "trust_xheaders": True,
        # Pages without a session go to the LMS's sign-in, and come back after it.
        "tornado_settings": {"login_url": "/login"},
    }
    config: dict[str, Any] = {
        "ServerApp": app,
        "LmsIdentityProvider": {
            "owner": str(owner),
            "session_cookie": session_cookie,
            "max_age_seconds": max_age_seconds,
        },
        "MappingKernelManager": {
            "cull_idle_timeout": int(idle_seconds),
            "cull_interval": max(10, min(300, int(idle_seconds) // 4)),
            "cull_connected": True,
        },
    }
    if gateway_url:
        config["GatewayClient"] = {"url": gateway_url}
    else:
        app["kernel_spec_manager_class"] = _dotted(SandboxKernelSpecManager)
    path.write_text(json.dumps(config, indent=2))
    return path


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def command(config: Path, root: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--config={config}",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        # The LMS may run as root (containers, CI); learner code never runs in this process.
        "--allow-root",
    ]

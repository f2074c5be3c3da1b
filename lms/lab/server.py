"""How a learner's lab server is started: the jupyter-server command and its configuration.

The server runs the Notebook 7 front end on the learner's workspace, under /lab/<user id>/,
and admits only requests that came through the lab hub for its owner (lms.lab.identity).
Nothing in it runs code outside the kernel sandbox:
- its server extensions are an allow-list (Notebook 7 only): the environment's Jupyter config
  files are not read (JUPYTER_NO_CONFIG), so an extension installed later is not loaded either;
  JupyterLab's own server extension (an extension manager that runs pip, a build handler that
  runs the JavaScript toolchain), terminals, language servers and nbgrader's extensions stay out,
  and JupyterLab's extension manager is read-only should it ever be loaded;
- nbconvert's handlers are removed (lms.lab.serverapp);
- kernels come from the lab hub's sandboxed pool (lms.lab.kernels) or a Kernel Gateway.
The hub starts the server itself in a bubblewrap sandbox of its own (lms.lab.hub): the system and
the Python environment read-only, only the owner's workspace and the server's private folder
writable, no other learner's files and nothing of the LMS's instance folder visible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lms.lab import base_url
from lms.lab.identity import TOKEN_ENV, LmsIdentityProvider
from lms.lab.kernels import SandboxKernelSpecManager
from lms.lab.serverapp import LabKernelManager

__all__ = ["TOKEN_ENV", "base_url", "command", "environment", "write_config"]

# The only server extensions a lab server loads.
ALLOWED_EXTENSIONS = ("notebook",)


def write_config(
    path: Path,
    owner: int,
    idle_seconds: float = 30 * 60,
    gateway_url: str = "",
    release_seconds: float = 120,
    jupyterhub: bool = False,
) -> Path:
    """The server's JSON configuration (read with --config): no secret in it.

    Kernels come from the lab hub's sandboxed pool (lms.lab.kernels) or, with gateway_url, from
    a Jupyter Kernel Gateway; a kernel idle for idle_seconds is given back, and a pool kernel
    that no browser has watched for release_seconds too (lms.lab.serverapp.LabKernelManager).
    jupyterhub: started by JupyterHub (lms.lab.singleuser), whose single-user extension sets
    the port, the base URL and the sign-in from the spawner's environment.
    """
    app: dict[str, Any] = {
        "identity_provider_class": _dotted(LmsIdentityProvider),
        "base_url": base_url(owner),
        "ip": "127.0.0.1",
        "open_browser": False,
        "terminals_enabled": False,
        "jpserver_extensions": dict.fromkeys(ALLOWED_EXTENSIONS, True),
        # Requests come through the LMS's proxy, under whatever host name the site has.
        "allow_remote_access": True,
        "trust_xheaders": True,
        # Pages without the hub's credential go to the LMS's sign-in, and come back after it.
        "tornado_settings": {"login_url": "/login"},
    }
    config: dict[str, Any] = {
        "ServerApp": app,
        "LmsIdentityProvider": {"owner": str(owner)},
        "LabApp": {"extension_manager": "readonly"},
        # The LMS's lab page (same origin) saves the open notebooks before "Submit": it reaches
        # the app as window.jupyterapp. Nothing in it is a secret from the learner it serves.
        "JupyterNotebookApp": {"expose_app_in_browser": True},
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
        app["kernel_manager_class"] = _dotted(LabKernelManager)
        config["LabKernelManager"] = {
            **config.pop("MappingKernelManager"),
            "release_unwatched_after": float(release_seconds),
            # Looked at often enough that a closed tab's kernel is back within the release
            # time and a quarter.
            "cull_interval": max(1, min(30, int(release_seconds) // 4)),
        }
    if jupyterhub:
        for key in ("identity_provider_class", "base_url", "ip", "tornado_settings"):
            del app[key]
        del config["LmsIdentityProvider"]
        app["jpserver_extensions"]["jupyterhub"] = True
    path.write_text(json.dumps(config, indent=2))
    return path


# The LMS's languages as Jupyter's language packs name them (requirements.txt installs them).
JUPYTER_LOCALES = {"en": "en", "vi": "vi_VN", "ko": "ko_KR"}
TRANSLATION_SETTINGS = Path(
    "lab", "user-settings", "@jupyterlab", "translation-extension", "plugin.jupyterlab-settings"
)


def write_language(config_dir: Path, language: str | None) -> None:
    """Jupyter's interface in the learner's LMS language: the translation setting, written
    each time the lab is opened (a choice made in the lab's own menu lasts until then)."""
    locale = JUPYTER_LOCALES.get(language or "", "en")
    path = config_dir / TRANSLATION_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"locale": locale}))


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def singleuser_command(config: Path, root: Path) -> list[str]:
    """The lab server as JupyterHub's single-user server (its port comes from JupyterHub)."""
    return [
        sys.executable,
        "-m",
        "lms.lab.singleuser",
        f"--config={config}",
        f"--ServerApp.root_dir={root}",
        "--allow-root",
    ]


def command(config: Path, root: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lms.lab.serverapp",
        f"--config={config}",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        # The hub may run as root (containers, CI); the server itself runs in a sandbox under a
        # uid of its own, and learner code never runs in it.
        "--allow-root",
    ]


def environment(private: Path) -> dict[str, str]:
    """Where the server keeps its runtime files, and no config file but the one it is given."""
    return {
        "HOME": str(private),
        "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
        "JUPYTER_DATA_DIR": str(private / "data"),
        "JUPYTER_CONFIG_DIR": str(private / "config"),
        # Named outright: with JUPYTER_NO_CONFIG the default would be a throwaway folder.
        "JUPYTERLAB_SETTINGS_DIR": str(private / "config" / TRANSLATION_SETTINGS.parents[2]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_NO_CONFIG": "1",
    }

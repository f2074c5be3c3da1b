"""The lab server: jupyter-server without the services that would run code outside a kernel.

nbconvert's handlers (exporting a notebook from the browser) run converters in the server
process, some of which start other programs (LaTeX, pandoc, a browser); learners export from the
LMS instead. JupyterLab's own server extension (its extension manager runs pip, its build handler
runs the JavaScript toolchain) is not loaded either (lms.lab.server).

    python -m lms.lab.serverapp --config=lab.json ...
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Float

REMOVED_SERVICES = frozenset({"nbconvert"})

# Front-end parts that would call servers the lab does not run, failing on every page load:
# nbgrader's (the LMS grades, and its Validate button needs nbgrader's server extension), the
# language-server client (no jupyter-lsp), and "Save and Export As" (no nbconvert service).
DISABLED_FRONTEND = (
    "@jupyter/nbgrader",
    "@jupyterlab/lsp-extension",
    "@jupyterlab/notebook-extension:export",
)


def page_config_hook(handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
    """Notebook's page config with DISABLED_FRONTEND added (the lab reads no labconfig files:
    it runs with JUPYTER_NO_CONFIG)."""
    disabled = list(page_config.get("disabledExtensions") or [])
    page_config["disabledExtensions"] = [
        *disabled,
        *(d for d in DISABLED_FRONTEND if d not in disabled),
    ]
    return page_config


class LabKernelManager(AsyncMappingKernelManager):
    """Kernels are borrowed from a pool that a whole class shares: one that no browser has
    been connected to for release_unwatched_after seconds (its learner closed the tab) and
    that runs nothing is shut down, so its pool kernel goes to the next learner; the notebook
    stays saved. Kernels with a browser connected are culled as jupyter-server does (idle for
    cull_idle_timeout)."""

    release_unwatched_after = Float(
        120.0, config=True, help="Seconds without a browser before an idle kernel is given back."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._unwatched_since: dict[str, datetime] = {}

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        kernel = self._kernels.get(kernel_id)
        if kernel is None:
            self._unwatched_since.pop(kernel_id, None)
            return
        now = utcnow()
        if self._kernel_connections.get(kernel_id, 0):
            self._unwatched_since.pop(kernel_id, None)
        else:
            since = self._unwatched_since.setdefault(kernel_id, now)
            last = max(since, getattr(kernel, "last_activity", since))
            unwatched = now - last > timedelta(seconds=self.release_unwatched_after)
            if unwatched and getattr(kernel, "execution_state", None) != "busy":
                self.log.info(
                    "Kernel %s: no browser for a while, given back to the pool", kernel_id
                )
                self._unwatched_since.pop(kernel_id, None)
                await self.shutdown_kernel(kernel_id)  # type: ignore[no-untyped-call]
                return
        await super().cull_kernel_if_idle(kernel_id)  # type: ignore[no-untyped-call]


class LabServerApp(ServerApp):
    default_services = tuple(  # type: ignore[assignment]
        s for s in ServerApp.default_services if s not in REMOVED_SERVICES
    )

    def init_webapp(self) -> None:
        self.tornado_settings = {**self.tornado_settings, "page_config_hook": page_config_hook}
        super().init_webapp()
        # The notebook page asks which export formats exist: none (a 404 is an error there).
        route = url_path_join(self.base_url, "api", "nbconvert")
        self.web_app.add_handlers(".*$", [(route, NoExportFormats)])  # type: ignore[no-untyped-call]


class NoExportFormats(APIHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish({})


main = LabServerApp.launch_instance

if __name__ == "__main__":
    main()

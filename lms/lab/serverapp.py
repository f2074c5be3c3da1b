"""The lab server: jupyter-server without the services that would run code outside a kernel.

nbconvert's handlers (exporting a notebook from the browser) run converters in the server
process, some of which start other programs (LaTeX, pandoc, a browser); learners export from the
LMS instead. JupyterLab's own server extension (its extension manager runs pip, its build handler
runs the JavaScript toolchain) is not loaded either (lms.lab.server).

    python -m lms.lab.serverapp --config=lab.json ...
"""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from tornado import web

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

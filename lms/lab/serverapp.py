"""The lab server: jupyter-server without the services that would run code outside a kernel.

nbconvert's handlers (exporting a notebook from the browser) run converters in the server
process, some of which start other programs (LaTeX, pandoc, a browser); learners export from the
LMS instead. JupyterLab's own server extension (its extension manager runs pip, its build handler
runs the JavaScript toolchain) is not loaded either (lms.lab.server).

    python -m lms.lab.serverapp --config=lab.json ...
"""

from __future__ import annotations

from jupyter_server.serverapp import ServerApp

REMOVED_SERVICES = frozenset({"nbconvert"})


class LabServerApp(ServerApp):
    default_services = tuple(  # type: ignore[assignment]
        s for s in ServerApp.default_services if s not in REMOVED_SERVICES
    )


main = LabServerApp.launch_instance

if __name__ == "__main__":
    main()

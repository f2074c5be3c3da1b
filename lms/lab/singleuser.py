"""A lab server started by JupyterHub (lms.lab.spawner): the LMS's LabServerApp (no nbconvert,
no terminals, the lab's page config, kernels from the sandboxed pool) with JupyterHub's
single-user extension, which takes the port, the base URL (/user/<id>/) and the sign-in
(OAuth with JupyterHub) from the environment the spawner gives it.

    python -m lms.lab.singleuser --config=lab.json --ServerApp.root_dir=...
"""

from __future__ import annotations

from jupyterhub.singleuser.extension import JupyterHubSingleUser

from lms.lab.serverapp import LabServerApp


def main() -> None:
    # The extension starts its server application itself: ours, not plain jupyter-server.
    JupyterHubSingleUser.serverapp_class = LabServerApp
    JupyterHubSingleUser.launch_instance()


if __name__ == "__main__":
    main()

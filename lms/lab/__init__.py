"""Learners' labs: the lab hub (a proxy, per-learner jupyter-servers, a warm pool of sandboxed
kernels) and what runs inside a lab server (identity provider, kernel provisioner).

This module stays light: the web process imports it, never the hub's Jupyter machinery."""

from __future__ import annotations

import hmac


def base_url(owner: int) -> str:
    """Where a learner's lab server is served, on the site's one host."""
    return f"/lab/{owner}/"


def hub_token(secret_key: str) -> str:
    """The token of the hub's API: derived from the LMS secret, so the LMS needs no other."""
    return hmac.new(secret_key.encode(), b"lms-lab-hub", "sha256").hexdigest()


def jupyterhub_service_token(secret_key: str) -> str:
    """The LMS's API token in JupyterHub (its "lms" service: start, stop and list labs)."""
    return hmac.new(secret_key.encode(), b"lms-jupyterhub-service", "sha256").hexdigest()


def lab_identity_token(secret_key: str) -> str:
    """What JupyterHub shows the LMS when it asks whose session a browser's cookie is: it
    answers that question only, so JupyterHub holds no key that signs anything of the LMS."""
    return hmac.new(secret_key.encode(), b"lms-lab-identity", "sha256").hexdigest()

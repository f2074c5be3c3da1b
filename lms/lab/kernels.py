"""Kernels of a lab server: borrowed from the lab hub's warm, sandboxed pool.

This module runs inside a learner's lab server (jupyter-server). The server offers one kernel
spec, "Python 3 (sandboxed)", whose provisioner does not start a process: it asks the lab hub
(lms.lab.hub) for a kernel that is already running in a bubblewrap sandbox, the same sandbox as
grading, and connects to it. Interrupt, liveness and shutdown go back to the hub, which kills
the sandbox's processes, wipes it and warms the next kernel.

The hub is reached at LMS_LAB_HUB_URL with LMS_LAB_HUB_TOKEN, both from the environment the hub
started this server with: that token is this server's own, good only for its owner's kernels;
the learner's code never runs in this process, so never sees it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from importlib.metadata import EntryPoint
from typing import Any, cast

import ipykernel
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

HUB_URL_ENV = "LMS_LAB_HUB_URL"
HUB_TOKEN_ENV = "LMS_LAB_HUB_TOKEN"
OWNER_ENV = "LMS_LAB_OWNER"
PROVISIONER = "lms-sandbox"
KERNEL_NAME = "python3"
# How long a kernel request may wait for a free kernel (the hub queues it meanwhile).
LEND_TIMEOUT = 600.0
# What the kernel spec's resource URLs serve: ipykernel's logos, nothing else (never a folder of
# this project's source).
RESOURCE_DIR = os.path.join(os.path.dirname(ipykernel.__file__), "resources")


class HubError(RuntimeError):
    def __init__(self, message: str, status: int = 502, reason: str = "") -> None:
        super().__init__(message)
        self.status = status  # the hub's HTTP status (502: no answer from it)
        self.reason = reason  # the hub's own explanation, meant for the learner


async def hub_request(method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    """A JSON request to the lab hub's API."""
    url = os.environ[HUB_URL_ENV].rstrip("/") + path
    request = HTTPRequest(
        url,
        method=method,
        headers={
            "Authorization": f"token {os.environ[HUB_TOKEN_ENV]}",
            "Content-Type": "application/json",
        },
        body=None if body is None else json.dumps(body),
        allow_nonstandard_methods=True,
        request_timeout=timeout,
    )
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as e:
        detail = e.response.body.decode(errors="replace") if e.response else str(e)
        try:
            reason = str(json.loads(detail).get("error") or "")
        except (ValueError, AttributeError):
            reason = ""
        status = e.code if 400 <= e.code < 599 else 502
        raise HubError(f"the lab hub refused {method} {path}: {detail}", status, reason) from e
    return json.loads(response.body) if response.body else None


class HubKernelProvisioner(KernelProvisionerBase):
    """A kernel lent by the lab hub; `kernel_ref` is the hub's id for it while lent."""

    kernel_ref: str | None = None
    exit_code: int | None = None

    @property
    def has_process(self) -> bool:
        return self.kernel_ref is not None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.pop("extra_arguments", None)
        result: dict[str, Any] = await super().pre_launch(cmd=[], **kwargs)
        return result

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        body = {
            "owner": os.environ[OWNER_ENV],
            "cwd": str(kwargs.get("cwd") or ""),
            "kernel_id": self.kernel_id,  # the server's id: the hub may shut it down by it
        }
        try:
            lent = await hub_request("POST", "/kernels", body, timeout=LEND_TIMEOUT)
        except HubError as e:
            # As an HTTP error, jupyter-server shows the learner the hub's reason (the kernel
            # cap, a full pool) instead of "Unhandled error".
            raise web.HTTPError(e.status, e.reason or str(e)) from e
        self.kernel_ref = str(lent["id"])
        self.exit_code = None
        # The key as bytes, as a local kernel manager holds it (the typing says str).
        key = str(lent["connection"]["key"]).encode()
        info = cast(KernelConnectionInfo, {**lent["connection"], "key": key})
        self.connection_info = info
        return info

    async def poll(self) -> int | None:
        if self.kernel_ref is None:
            return self.exit_code if self.exit_code is not None else 0
        try:
            state = await hub_request("GET", f"/kernels/{self.kernel_ref}")
        except HubError:
            return 1  # the hub no longer lends it: gone
        return None if state.get("alive") else 1

    async def wait(self) -> int | None:
        while (status := await self.poll()) is None:
            await asyncio.sleep(0.1)
        return status

    async def send_signal(self, signum: int) -> None:
        if self.kernel_ref is None:
            return
        if signum == signal.SIGINT:
            await hub_request("POST", f"/kernels/{self.kernel_ref}/interrupt", {})
        else:
            await self.kill()

    async def kill(self, restart: bool = False) -> None:
        await self._give_back()

    async def terminate(self, restart: bool = False) -> None:
        await self._give_back()

    async def cleanup(self, restart: bool = False) -> None:
        await self._give_back()

    async def _give_back(self) -> None:
        ref, self.kernel_ref = self.kernel_ref, None
        if ref is not None:
            self.exit_code = 0
            try:
                await hub_request("DELETE", f"/kernels/{ref}")
            except HubError:
                pass  # already taken back (the hub culled it)

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return min(recommended, 2.0)  # the hub kills what a polite shutdown leaves

    async def get_provisioner_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await super().get_provisioner_info()
        info["kernel_ref"] = self.kernel_ref
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.kernel_ref = provisioner_info.get("kernel_ref")


def _register_provisioner() -> None:
    """Known to jupyter_client by name without installing this project as a package."""
    factory = KernelProvisionerFactory.instance()
    factory.provisioners[PROVISIONER] = EntryPoint(
        name=PROVISIONER,
        value=f"{__name__}:{HubKernelProvisioner.__name__}",
        group=KernelProvisionerFactory.GROUP_NAME,
    )


class SandboxKernelSpecManager(KernelSpecManager):
    """Only the sandboxed kernel: a lab server never starts a kernel on its own host."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _register_provisioner()

    def _spec(self) -> KernelSpec:
        return KernelSpec(
            argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (sandboxed)",
            language="python",
            interrupt_mode="signal",
            metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER}},
            resource_dir=RESOURCE_DIR,
        )

    def find_kernel_specs(self) -> dict[str, str]:
        return {KERNEL_NAME: RESOURCE_DIR}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != KERNEL_NAME:
            raise NoSuchKernel(kernel_name)
        return self._spec()

    def get_all_specs(self) -> dict[str, Any]:
        spec = self._spec()
        return {KERNEL_NAME: {"resource_dir": spec.resource_dir, "spec": spec.to_dict()}}

"""Relays between a learner's lab server and a kernel lent to it, run by the lab hub.

A kernel's sockets live in its own sandbox (a tmpfs the hub reaches through /proc/<pid>/root);
a lab server lives in a sandbox of its own, under another uid, and cannot reach them. For each
lent kernel the hub relays the five Jupyter channels: it binds sockets in a folder that only the
owner's lab server sees (mounted there as /run/relay), and connects them to the kernel's. The
messages are signed end to end with the kernel's key: the relay neither needs nor checks it.

shell, control, stdin and heartbeat are ROUTER/DEALER brokers (the client's identity travels as
an envelope frame); iopub is XPUB/XSUB (subscriptions go up, messages come down).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import zmq
from zmq.devices import ThreadProxySteerable

# Where the lab server finds the relayed sockets, in its own sandbox.
INSIDE = "/run/relay"
CHANNELS = {
    "shell_port": (zmq.ROUTER, zmq.DEALER),
    "iopub_port": (zmq.XPUB, zmq.XSUB),
    "stdin_port": (zmq.ROUTER, zmq.DEALER),
    "control_port": (zmq.ROUTER, zmq.DEALER),
    "hb_port": (zmq.ROUTER, zmq.DEALER),
}


def relay_root() -> Path:
    """A short host folder for the relays' sockets (unix socket paths are short)."""
    root = Path(tempfile.gettempdir()) / f"lmsr-{os.geteuid()}"
    root.mkdir(mode=0o711, exist_ok=True)
    os.chmod(root, 0o711)
    return root


def owner_folder(owner: int, uid: int | None) -> Path:
    """The owner's relay folder: theirs alone (0700, their lab server's uid)."""
    folder = relay_root() / str(owner)
    folder.mkdir(mode=0o700, exist_ok=True)
    if uid is not None:
        os.chown(folder, uid, uid)
    return folder


class KernelRelay:
    """The five channels of one lent kernel, relayed into the owner's relay folder."""

    def __init__(
        self,
        kernel: dict[str, Any],
        folder: Path,
        name: str,
        uid: int | None,
        inside: str = INSIDE,
    ) -> None:
        self.name = name
        self.folder = folder
        self.devices: list[tuple[ThreadProxySteerable, str]] = []
        self.connection = {
            **{k: v for k, v in kernel.items() if k not in CHANNELS and k != "ip"},
            "ip": f"{inside}/{name}",
            **{port: index + 1 for index, port in enumerate(CHANNELS)},
        }
        kernel_base = f"ipc://{kernel['ip']}"
        try:
            for index, (port, (front, back)) in enumerate(CHANNELS.items(), start=1):
                device = ThreadProxySteerable(front, back, ctrl_type=zmq.PAIR)  # type: ignore[no-untyped-call]
                path = folder / f"{name}-{index}"
                device.bind_in(f"ipc://{path}")
                device.connect_out(f"{kernel_base}-{kernel[port]}")
                control = f"inproc://relay-{name}-{index}-{id(device)}"
                device.bind_ctrl(control)  # type: ignore[no-untyped-call]
                device.setsockopt_in(zmq.LINGER, 0)
                device.setsockopt_out(zmq.LINGER, 0)
                device.daemon = True
                device.start()
                self.devices.append((device, control))
                self._own(path, uid)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _own(path: Path, uid: int | None) -> None:
        """The socket file appears when the device's thread binds it: then it is the lab
        server's to connect to."""
        for _ in range(200):
            if path.exists():
                if uid is not None:
                    os.chown(path, uid, uid)
                os.chmod(path, 0o600)
                return
            threading.Event().wait(0.005)

    def close(self) -> None:
        """Stop the devices and remove their sockets."""
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        for device, control in self.devices:
            stopper = context.socket(zmq.PAIR)
            try:
                stopper.connect(control)
                stopper.send(b"TERMINATE")
            finally:
                stopper.close(linger=0)
            device.join(timeout=5)
        self.devices = []
        for index in range(1, len(CHANNELS) + 1):
            (self.folder / f"{self.name}-{index}").unlink(missing_ok=True)

"""GPU slots: which device a GPU assignment's kernel may see, one kernel per slot at a time.

LMS_GPU_SLOTS lists the slots, one entry per concurrent GPU kernel: "0,0,1,1" lets two kernels
share each of two GPUs; MIG instances are given by UUID ("MIG-..."). A sandboxed kernel that
holds a slot has only that GPU's device files in its sandbox (slot_nodes), so the variable
CUDA_VISIBLE_DEVICES, which learner code can change, reaches no other GPU; a kernel that needs
a slot waits until one is free (slots are leased host-wide, autograder.leases).
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path


class GpuSlots:
    def __init__(self, devices: tuple[str, ...] | list[str], root: Path = Path("/")) -> None:
        self.devices = tuple(devices)
        self.root = root  # where /proc/driver/nvidia and /dev are (tests use a fake tree)
        self._free = list(range(len(self.devices)))
        self._condition = threading.Condition()
        self.waits = 0  # how many acquisitions had to wait: shown by tests and benchmarks

    @classmethod
    def parse(cls, text: str | None, root: Path = Path("/")) -> GpuSlots:
        return cls(tuple(part.strip() for part in (text or "").split(",") if part.strip()), root)

    def bind_pairs(self, slot: int) -> tuple[tuple[str, str], ...]:
        """(host file, file in the sandbox) for each device file of the slot."""
        return tuple(
            (str(self.root / node.lstrip("/")), node)
            for node in slot_nodes(self.devices[slot], self.root)
        )

    @property
    def available(self) -> bool:
        return bool(self.devices)

    def device(self, slot: int) -> str:
        return self.devices[slot]

    def acquire(self, timeout: float | None = None) -> int:
        with self._condition:
            if not self._free:
                self.waits += 1
            if not self._condition.wait_for(lambda: bool(self._free), timeout=timeout):
                raise TimeoutError("no GPU slot became free")
            return self._free.pop(0)

    def release(self, slot: int) -> None:
        with self._condition:
            self._free.append(slot)
            self._condition.notify()

    @property
    def free(self) -> int:
        with self._condition:
            return len(self._free)


# Device files every CUDA process opens besides its GPU's own (those present on the host).
COMMON_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


class GpuSlotError(RuntimeError):
    """A slot names a device this host does not have (or one its files cannot be found for)."""


def gpu_table(root: Path = Path("/")) -> list[dict[str, str | int]]:
    """The host's GPUs from /proc/driver/nvidia/gpus/<PCI bus>/information, numbered as
    nvidia-smi and CUDA_DEVICE_ORDER=PCI_BUS_ID number them (by bus): index, minor, uuid, bus."""
    gpus: list[dict[str, str | int]] = []
    for info in sorted((root / "proc/driver/nvidia/gpus").glob("*/information")):
        fields = {}
        for line in info.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        try:
            minor = int(fields["Device Minor"])
        except (KeyError, ValueError):
            continue
        gpus.append(
            {"bus": info.parent.name.lower(), "minor": minor, "uuid": fields.get("GPU UUID", "")}
        )
    gpus.sort(key=lambda gpu: str(gpu["bus"]))
    for index, gpu in enumerate(gpus):
        gpu["index"] = index
    return gpus


def mig_table(nvidia_smi_list: str, nvidia_smi_table: str) -> dict[str, tuple[int, int, int]]:
    """MIG device UUID -> (GPU index, GPU instance id, compute instance id), from the output of
    `nvidia-smi -L` (which numbers each GPU's MIG devices) and of plain `nvidia-smi` (whose
    "MIG devices" table gives each device's GI and CI)."""
    by_device: dict[tuple[int, int], str] = {}
    gpu = -1
    for line in nvidia_smi_list.splitlines():
        found = re.match(r"GPU (\d+):", line.strip())
        if found:
            gpu = int(found.group(1))
            continue
        found = re.search(r"MIG .*Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)", line)
        if found and gpu >= 0:
            by_device[(gpu, int(found.group(1)))] = found.group(2)
    table: dict[str, tuple[int, int, int]] = {}
    in_mig = False
    for line in nvidia_smi_table.splitlines():
        if "MIG devices" in line:
            in_mig = True
            continue
        if in_mig and line.startswith("| Processes"):
            break
        found = re.match(r"\|\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|", line) if in_mig else None
        if found:
            gpu_index, gi, ci, device = (int(g) for g in found.groups())
            uuid = by_device.get((gpu_index, device))
            if uuid:
                table[uuid] = (gpu_index, gi, ci)
    return table


def _cap_minor(access: Path) -> int:
    for line in access.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "DeviceFileMinor":
            return int(value)
    raise GpuSlotError(f"{access}: no DeviceFileMinor")


def slot_nodes(
    device: str, root: Path = Path("/"), mig: dict[str, tuple[int, int, int]] | None = None
) -> tuple[str, ...]:
    """The device files a kernel on this slot needs, and no other GPU's: the GPU's own
    /dev/nvidiaN (for a MIG slot: its parent's, and the capability files of that one GPU and
    compute instance), plus the driver's common files."""
    gpus = gpu_table(root)
    caps: list[str] = []
    if device.startswith("MIG-"):
        table = mig if mig is not None else _mig_from_nvidia_smi()
        if device not in table:
            raise GpuSlotError(f"GPU slot {device}: no such MIG device on this host")
        index, gi, ci = table[device]
        gpu = next((g for g in gpus if g["index"] == index), None)
        if gpu is None:
            raise GpuSlotError(f"GPU slot {device}: its GPU {index} is not in /proc/driver/nvidia")
        base = root / f"proc/driver/nvidia/capabilities/gpu{gpu['minor']}/mig"
        for access in (base / f"gi{gi}/access", base / f"gi{gi}/ci{ci}/access"):
            caps.append(f"/dev/nvidia-caps/nvidia-cap{_cap_minor(access)}")
    else:
        gpu = next((g for g in gpus if str(g["index"]) == device or g["uuid"] == device), None)
        if gpu is None:
            raise GpuSlotError(f"GPU slot {device}: no such GPU on this host")
    nodes = [f"/dev/nvidia{gpu['minor']}", *caps]
    nodes += [node for node in COMMON_NODES if (root / node.lstrip("/")).exists()]
    return tuple(nodes)


def slot_environment(device: str) -> dict[str, str]:
    """What a kernel on this slot is told. Its sandbox has only this GPU's device files, so
    changing the variable reaches no other GPU; CUDA numbers the one it sees 0."""
    return {"CUDA_VISIBLE_DEVICES": device if device.startswith("MIG-") else "0"}


def _mig_from_nvidia_smi() -> dict[str, tuple[int, int, int]]:
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        table = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GpuSlotError(f"MIG slots need nvidia-smi: {e}") from e
    return mig_table(listed.stdout, table.stdout)

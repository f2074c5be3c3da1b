"""GPU slots: which device a GPU assignment's kernel may see, one kernel per slot at a time.

LMS_GPU_SLOTS lists the slots, one entry per concurrent GPU kernel: "0,0,1,1" lets two kernels
share each of two GPUs; MIG instances are given by UUID ("MIG-..."). A kernel that holds a slot
sees only that device (CUDA_VISIBLE_DEVICES); a kernel that needs one waits until one is free.
"""

from __future__ import annotations

import glob
import threading


class GpuSlots:
    def __init__(self, devices: tuple[str, ...] | list[str]) -> None:
        self.devices = tuple(devices)
        self._free = list(range(len(self.devices)))
        self._condition = threading.Condition()
        self.waits = 0  # how many acquisitions had to wait: shown by tests and benchmarks

    @classmethod
    def parse(cls, text: str | None) -> GpuSlots:
        return cls(tuple(part.strip() for part in (text or "").split(",") if part.strip()))

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


def nvidia_devices() -> tuple[str, ...]:
    """The device files a sandbox needs to reach the GPUs (empty on a machine without them)."""
    return tuple(sorted(glob.glob("/dev/nvidia*")))

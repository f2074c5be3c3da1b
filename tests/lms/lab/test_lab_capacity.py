"""A whole class at once: how many lab kernels and servers a machine holds (from its cores,
memory and the measured footprints), and the wait a learner in the kernel queue is told."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from lms.lab import capacity
from lms.lab.hub import CPU, RETURN_WINDOW, LabHub, Settings

GIB = 2**30


def test_kernels_follow_the_cores_as_far_as_memory_holds_them() -> None:
    assert capacity.lab_kernels(cpu_cores=2, memory=24 * GIB) == 8  # cores decide
    assert capacity.lab_kernels(cpu_cores=32, memory=64 * GIB) == 128
    # 4 GiB less the reserve holds 22 kernels of 120 MB, not the 64 the cores would take.
    assert capacity.lab_kernels(cpu_cores=16, memory=4 * GIB) == 22
    assert capacity.lab_kernels(cpu_cores=1, memory=GIB // 4) == 2  # never fewer than 2


def test_lab_servers_fill_the_memory_the_kernels_leave() -> None:
    servers = capacity.lab_servers(128, memory=64 * GIB)
    left = 64 * GIB * (1 - capacity.RESERVED_FRACTION) - 128 * capacity.KERNEL_MB * 2**20
    assert servers == int(left // (capacity.SERVER_MB * 2**20))
    assert 200 < servers < 300  # a 64 GB machine: some two hundred learners' labs at once
    assert capacity.lab_servers(8, memory=GIB // 2) == 8  # at least one per kernel


def test_the_machine_is_read_as_it_is() -> None:
    assert capacity.cores() >= 1
    assert capacity.memory_bytes() >= 256 * 2**20


def test_the_wait_follows_the_pace_at_which_kernels_come_back(tmp_path: Path) -> None:
    hub = LabHub(Settings(secret_key="k", data_dir=tmp_path), {}, recorder=None)  # type: ignore[arg-type]
    hub.returns[CPU] = deque()
    assert hub.estimated_wait(3, CPU, now=1000.0) is None  # nothing came back yet
    hub.returns[CPU].extend([700.0, 820.0, 940.0])  # one every two minutes, lately
    assert hub.estimated_wait(1, CPU, now=1000.0) == 100.0  # 3 in the last 300 s
    assert hub.estimated_wait(3, CPU, now=1000.0) == 300.0
    # Returns older than the window no longer count.
    assert hub.estimated_wait(1, CPU, now=700.0 + RETURN_WINDOW + 130) is None

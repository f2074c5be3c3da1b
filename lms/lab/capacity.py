"""How many lab kernels and lab servers a machine holds, from its cores and memory and the
measured footprint of each (`python -m benchmarks.labs` prints them: PSS of an idle warm
kernel with the default preloads, and of an idle lab server). LMS_LAB_KERNELS and
LMS_LAB_SERVERS set to 0 (the default) use these; a number overrides them.
"""

from __future__ import annotations

import os
from pathlib import Path

# Measured with benchmarks.labs on the 2-core development machine (2026-12-07), PSS: an idle
# pool slot (its sandbox's fork server and warm kernel, numpy, pandas and matplotlib.pyplot
# imported) 113 MB, an idle Notebook 7 lab server 110 MB; rounded up.
KERNEL_MB = 120
SERVER_MB = 120
# Lab kernels wait on people most of the time (reading, typing): a core serves several.
KERNELS_PER_CORE = 4
# Memory kept for everything else on the host (the LMS, the database, page cache, spikes).
RESERVED_FRACTION = 0.35


def memory_bytes() -> int:
    """The memory this process may use: the cgroup's limit where one is set (a container),
    else the machine's."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return min(physical, int(text))
    return physical


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def lab_kernels(
    cpu_cores: int | None = None, memory: int | None = None, kernel_mb: int = KERNEL_MB
) -> int:
    """Kernels for the pool: KERNELS_PER_CORE per core, as far as memory (less the reserve)
    holds them; at least 2."""
    cpu_cores = cpu_cores or cores()
    usable = (memory or memory_bytes()) * (1 - RESERVED_FRACTION)
    return max(2, min(cpu_cores * KERNELS_PER_CORE, int(usable // (kernel_mb * 2**20))))


def lab_servers(
    kernels: int, memory: int | None = None, server_mb: int = SERVER_MB, kernel_mb: int = KERNEL_MB
) -> int:
    """Lab servers that fit beside the kernels (a learner's server runs no code and idles
    while they read): the memory the kernels leave, at least as many as kernels."""
    usable = (memory or memory_bytes()) * (1 - RESERVED_FRACTION) - kernels * kernel_mb * 2**20
    return max(kernels, int(usable // (server_mb * 2**20)))

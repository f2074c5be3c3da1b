"""Real graders and kernel pools for the autograder tests (bubblewrap sandbox, real kernels).

Starting a pool costs seconds, so graders are shared per module; every test grades its own
submission, and a submission never sees another's files or process (that is what is tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.execute import ExecutionLimits
from autograder.grade import Grader, grader_for
from autograder.results import GradeResult
from autograder.sandbox import SandboxPolicy
from tests.course_builder import notebook, write_assignment

# The doubling assignment, with a test that also goes through numpy.
SOLUTION = """def double(x):
    ### BEGIN SOLUTION
    return 2 * x if hasattr(x, "shape") else int(2 * x)
    ### END SOLUTION
"""
TEST = """import numpy as np
assert type(double(2)) is int
assert double(2) == 4
assert np.allclose(double(np.arange(3)), [0, 2, 4])
### BEGIN HIDDEN TESTS
assert double(-7) == -14  # secret-hidden-test
### END HIDDEN TESTS
"""
LIMITS = ExecutionLimits(cell_timeout=4, notebook_timeout=30)


def doubling_notebook() -> Any:
    nb = notebook(test=TEST)
    nb.cells[1].source = SOLUTION
    return nb


@pytest.fixture(scope="module")
def doubling_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source") / "double-it"
    write_assignment(folder, doubling_notebook())
    return folder


@pytest.fixture(scope="module")
def grader(doubling_source: Path) -> Iterator[Grader]:
    with grader_for(doubling_source, pool_size=2, policy=SandboxPolicy(), limits=LIMITS) as g:
        yield g


def submit(
    grader: Grader,
    tmp_path: Path,
    solution: str,
    name: str = "learner",
    executed: dict[str, Any] | None = None,
) -> GradeResult:
    """Grade the doubling notebook with the learner's answer cell replaced by `solution`."""
    nb = doubling_notebook()
    nb.cells[1].source = solution
    folder = tmp_path / name
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "double-it.ipynb")
    return grader.grade(folder, executed)


def score_of(result: GradeResult) -> float:
    return result.notebooks["double-it"].cells["test-double"].score


def fake_gpus(root: Path, count: int) -> Path:
    """A host tree with `count` NVIDIA GPUs as the driver shows them (/proc/driver/nvidia and
    real character device files, major 195, that nothing opens): no GPU is needed to check
    which device files a sandbox gets. Needs root (mknod), as CI runs."""
    import os
    import stat

    for index in range(count):
        info = root / f"proc/driver/nvidia/gpus/0000:0{index + 1}:00.0/information"
        info.parent.mkdir(parents=True, exist_ok=True)
        info.write_text(
            f"Model:\t\t NVIDIA Fake\nDevice Minor:\t {index}\nGPU UUID:\t GPU-fake-{index}\n"
        )
    dev = root / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    nodes = {f"nvidia{i}": i for i in range(count)} | {"nvidiactl": 255, "nvidia-uvm": 254}
    for name, minor in nodes.items():
        os.mknod(dev / name, stat.S_IFCHR | 0o666, os.makedev(195, minor))
    return root

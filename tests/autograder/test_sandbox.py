"""What learner code can reach and use inside the sandbox: real bubblewrap, real kernels.

Each check runs learner cells through the same path as grading (autograder.execute) on a kernel
lent by a real pool, and reads what the cells printed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from autograder.execute import ExecutionLimits, ExecutionOutcome, execute_notebook
from autograder.pool import KernelPool
from autograder.sandbox import SandboxPolicy, SandboxUnavailable, check_available

LIMITS = ExecutionLimits(cell_timeout=10, notebook_timeout=60, output_bytes=2 * 1024 * 1024)


@pytest.fixture(scope="module")
def pool() -> Iterator[KernelPool]:
    os.environ["LMS_SECRET_KEY"] = "grader-secret-value"  # what the grader's process holds
    try:
        with KernelPool(2, SandboxPolicy()) as kernels:
            yield kernels
    finally:
        os.environ.pop("LMS_SECRET_KEY", None)


def run(pool: KernelPool, *cells: str) -> tuple[NotebookNode, ExecutionOutcome]:
    nb = new_notebook(cells=[new_code_cell(code) for code in cells])
    with pool.kernel() as kernel:
        outcome = execute_notebook(nb, kernel, LIMITS)
    return nb, outcome


def text(cell: NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return "".join(parts)


def test_environment_holds_no_secret_of_the_grader(pool: KernelPool) -> None:
    nb, _ = run(
        pool, "import os\nprint(sorted(os.environ))\nprint(os.environ.get('LMS_SECRET_KEY'))"
    )
    assert os.environ["LMS_SECRET_KEY"] == "grader-secret-value"
    output = text(nb.cells[0])
    assert "grader-secret-value" not in output and "LMS_SECRET_KEY" not in output
    assert "None" in output


def test_no_network_not_even_loopback(pool: KernelPool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # reachable from the grader
        port = server.getsockname()[1]
        nb, _ = run(
            pool,
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "    print('connected')\nexcept OSError as e:\n    print('refused', type(e).__name__)",
        )
    assert "refused" in text(nb.cells[0]), text(nb.cells[0])


def test_only_its_own_folder_is_writable(pool: KernelPool) -> None:
    nb, _ = run(
        pool,
        "try:\n    open('/tmp/escape', 'w').write('x')\n    print('tmp writable')\n"
        "except OSError as e:\n    print('tmp refused', type(e).__name__)",
        "open('mine.txt', 'w').write('ok'); print(open('mine.txt').read())",
    )
    assert "tmp refused" in text(nb.cells[0]), text(nb.cells[0])
    assert text(nb.cells[1]).strip() == "ok"
    assert not Path("/tmp/escape").exists()


def test_grader_files_are_invisible(pool: KernelPool, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    secret = tmp_path / "hidden-tests.txt"
    secret.write_text("assert hidden")
    paths = [str(secret), str(repo / "courses"), str(repo / "lms"), str(repo / "instance")]
    nb, _ = run(pool, f"import os\nprint([os.path.exists(p) for p in {paths!r}])")
    assert text(nb.cells[0]).strip() == str([False] * len(paths))


def test_process_limit_refuses_3000_children_and_none_survive(pool: KernelPool) -> None:
    nb, outcome = run(
        pool,
        "import subprocess\nstarted = 0\n"
        "try:\n    for _ in range(3000):\n"
        "        subprocess.Popen(['sleep', '600'])\n        started += 1\n"
        "except OSError as e:\n    print('refused after', started, type(e).__name__)",
    )
    output = text(nb.cells[0])
    assert "refused after" in output, output
    assert int(output.split()[2]) < 3000
    # The kernel is gone with its sandbox's processes: nothing of the learner's runs on.
    for _ in range(100):
        if not _sleepers():
            break
        import time

        time.sleep(0.1)
    assert not _sleepers()


def _sleepers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline == b"sleep\x00600\x00":
            found.append(int(entry.name))
    return found


def test_huge_allocation_fails_inside_the_kernel_only(pool: KernelPool) -> None:
    nb, outcome = run(
        pool,
        "try:\n    block = bytearray(40 * 2**30)\n    print('allocated')\n"
        "except MemoryError:\n    print('MemoryError')",
        "print(6 * 7)",
    )
    assert text(nb.cells[0]).strip() == "MemoryError"
    assert text(nb.cells[1]).strip() == "42"
    assert outcome.flags == []


def test_output_flood_is_capped_and_flagged(pool: KernelPool) -> None:
    flood = "for _ in range(50):\n    print('x' * 1_000_000, flush=True)"
    nb, outcome = run(pool, flood, "print('after')")
    kept = sum(len(o.get("text", "")) for cell in nb.cells for o in cell.outputs)
    assert kept <= LIMITS.output_bytes + 1024
    assert "output was truncated" in outcome.flags


def test_one_huge_message_cuts_the_kernel_off_with_a_reason(pool: KernelPool) -> None:
    nb, outcome = run(pool, "print('x' * 50_000_000)", "print('never')")
    assert any("flooded its output" in flag for flag in outcome.flags), outcome.flags
    assert 1 in outcome.not_run


def test_kernel_that_dies_or_hangs_then_the_next_is_graded_normally(pool: KernelPool) -> None:
    _, died = run(pool, "import os\nos._exit(3)", "print(1)")
    assert any("kernel died" in flag for flag in died.flags)
    _, hung = run(
        pool,
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "print(1)",
    )
    assert any("ignored the interrupt" in flag for flag in hung.flags), hung.flags
    nb, fine = run(pool, "print(6 * 7)")
    assert text(nb.cells[0]).strip() == "42" and fine.flags == []


def test_no_state_is_shared_between_two_kernels(pool: KernelPool) -> None:
    first, _ = run(pool, "import math\nmath.pi = 3\nopen('left-behind', 'w').write('x')")
    second, _ = run(pool, "import math, os\nprint(math.pi, os.path.exists('left-behind'))")
    assert text(second.cells[0]).strip() == "3.141592653589793 False"


def test_grading_refuses_to_run_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("autograder.sandbox.bwrap_path", lambda: None)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        check_available(SandboxPolicy(mode="bwrap"))


def test_sandbox_off_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    check_available(SandboxPolicy(mode="off"))
    assert "UNSANDBOXED" in caplog.text

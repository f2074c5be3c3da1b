"""Attacks by a learner who has read this repository, on real sandboxed kernels.

Each test plays what the security review found (or the next trick of the same kind) and checks
that it gains nothing: the wrong answer still scores nothing, the trick is flagged, and what the
kernel may reach (its fork server, the report pipe, other sandboxes, the host) stays out of
reach. Every one of these passed against the grader before this review's fixes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

from autograder import seccomp
from autograder.execute import ExecutionLimits, execute_notebook
from autograder.grade import Grader, grader_for
from autograder.pool import KernelPool
from autograder.sandbox import SandboxPolicy
from autograder.stock import grade_stock
from tests.autograder.conftest import score_of, submit
from tests.conftest import needs

WRONG = "def double(x):\n    return 0\n"
NBGRADER_FILES = Path(str(__import__("nbgrader").__file__)).parent / "tests" / "apps" / "files"
KEYCTL = seccomp.SYSCALLS[seccomp.native_machine()]["keyctl"]
LIMITS = ExecutionLimits(cell_timeout=20, notebook_timeout=90, output_bytes=2 * 1024 * 1024)


# --- 1. forged full marks ----------------------------------------------------------------------

# The review's exploit, verbatim in spirit: reach the guard's runner through builtins (its key
# included), and answer every test with a "passed" report of one's own.
FORGED_RUNNER = (
    WRONG
    + """import builtins
real = builtins.__nbgrader_run_test__.__self__
def __nbgrader_run_test__(nonce, source):
    print(source)  # the hidden tests, handed over
    real.report(nonce, source, False, [])
"""
)


def test_the_reviews_forged_runner_gets_nothing(grader: Grader, tmp_path: Path) -> None:
    executed: dict[str, NotebookNode] = {}
    result = submit(grader, tmp_path, FORGED_RUNNER, executed=executed)
    assert score_of(result) == 0.0, result.to_json()
    outputs = json.dumps([cell.get("outputs", []) for cell in executed["double-it"].cells])
    assert "secret-hidden-test" not in outputs


# The same kind, next tricks: find the guard's state some other way, or speak for it.
ATTEMPTS = {
    "every object": WRONG
    + """import gc
found = [o for o in gc.get_objects() if type(o).__name__ in ('Core', 'Guard', 'Machinery')]
""",
    "whoever refers to the builtins": WRONG
    + "import gc, builtins\nfound = gc.get_referrers(builtins.__dict__)\n",
    "every thread's frames": WRONG + "import sys\nframes = sys._current_frames()\n",
    "the process's memory": WRONG + "data = open('/proc/self/mem', 'rb')\n",
    "an audit hook of one's own": WRONG
    + "import sys\nsys.addaudithook(lambda event, args: None)\n",
    "forged reports on every pipe": WRONG
    + """import json, os, stat
line = json.dumps({"body": json.dumps({"nonce": "x", "completed": True}), "mac": "0" * 64})
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, (line + "\\n").encode())
    except OSError:
        pass
""",
    "the guard's events raised by hand": WRONG
    + """import sys
for step in ("begin", "done", "ast", "end"):
    sys.audit("autograder.guard", step)
__autograder_done__()
""",
    "the done-call from inside the answer": """def double(x):
    __autograder_done__()
    import sys
    sys.audit("autograder.guard", "done")
    return 0
""",
    # Learner code the test calls walks up to IPython's loop over the cell's statements and
    # drops the ones still to come, keeping the last (which carries the guard's done-call).
    "the test's remaining statements dropped": """import sys
def double(x):
    frame = sys._getframe()
    while frame is not None:
        todo = frame.f_locals.get("to_run")
        if isinstance(todo, list) and len(todo) > 2:
            todo[:] = todo[:2] + todo[-1:]
            break
        frame = frame.f_back
    return 0
""",
    "a thread patching numpy while tests run": """import threading, time
import numpy as np
real = np.allclose
def flip():
    while True:
        np.allclose = lambda *a, **k: True
        time.sleep(0.0005)
        np.allclose = real
        time.sleep(0.0005)
threading.Thread(target=flip, daemon=True).start()
def double(x):
    return x if hasattr(x, "shape") else int(2 * x)
""",
    "a signal handler that runs during the test": """import signal
def handler(*args):
    import numpy as np
    np.allclose = lambda *a, **k: True
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
def double(x):
    return x if hasattr(x, "shape") else int(2 * x)
""",
}
EXPECTED_FLAG = {
    "every object": "tried gc.get_objects (refused)",
    "whoever refers to the builtins": "tried gc.get_referrers (refused)",
    "every thread's frames": "tried sys._current_frames (refused)",
    "the process's memory": "tried open /proc/.../mem (refused)",
    "an audit hook of one's own": "tried sys.addaudithook (refused)",
    "forged reports on every pipe": "forged report",
    "the guard's events raised by hand": "called the guard from outside a test",
    "the done-call from inside the answer": "called the guard from outside a test",
    "the test's remaining statements dropped": "different code ran in place of the test",
    "a thread patching numpy while tests run": "a thread running the notebook's code",
    "a signal handler that runs during the test": "a handler for signal",
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
def test_reaching_for_the_guard_gains_nothing(grader: Grader, tmp_path: Path, attempt: str) -> None:
    result = submit(grader, tmp_path, ATTEMPTS[attempt])
    assert score_of(result) == 0.0, result.to_json()
    assert any(EXPECTED_FLAG[attempt] in flag for flag in result.flags), result.flags


def test_a_later_cell_cannot_print_a_hidden_test(tmp_path: Path) -> None:
    """History, the In/_i variables and the line cache hold no copy of a test with hidden
    parts once it has run: a later answer cell printing them shows none of it (and feedback
    shows answer cells' outputs)."""
    from tests.autograder.conftest import LIMITS as GRADING_LIMITS
    from tests.autograder.conftest import doubling_notebook
    from tests.course_builder import write_assignment

    nb = doubling_notebook()
    leak = new_code_cell(
        "import linecache\n"
        "print(In, _ih, [v for k, v in globals().items() if k.startswith('_i')])\n"
        "print(get_ipython().history_manager.input_hist_raw)\n"
        "print(''.join(''.join(entry[2]) for entry in linecache.cache.values()))\n",
        metadata={
            "nbgrader": {
                "grade_id": "leak",
                "solution": True,
                "grade": False,
                "locked": False,
                "schema_version": 3,
            }
        },
    )
    leak.id = "cell-leak"
    nb.cells.append(leak)
    source = tmp_path / "source" / "double-it"
    write_assignment(source, nb)
    learner = tmp_path / "learner"
    learner.mkdir()
    nbformat.write(nb, learner / "double-it.ipynb")
    executed: dict[str, NotebookNode] = {}
    with grader_for(source, 1, SandboxPolicy(), GRADING_LIMITS) as grader:
        result = grader.grade(learner, executed)
    assert score_of(result) == 2.0, result.to_json()
    printed = "".join(o.get("text", "") for o in executed["double-it"].cells[-1].outputs)
    assert "print(In" in printed  # the history is there, with the learner's own cells
    assert "secret-hidden-test" not in printed, printed


def test_a_hidden_test_read_while_it_runs_never_shows_in_feedback(tmp_path: Path) -> None:
    """Code a test calls can read that test while it runs (it is the code running); what it
    prints of it in a later answer cell is redacted from the feedback learners see."""
    from autograder.feedback import HIDDEN_LINE, released_sources, render
    from tests.autograder.conftest import LIMITS as GRADING_LIMITS
    from tests.autograder.conftest import doubling_notebook
    from tests.course_builder import write_assignment

    stealing = (
        "import sys\nSEEN = []\n"
        "def double(x):\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"  # up to the kernel's message, which holds the code
        "        for value in list(frame.f_locals.values()):\n"
        "            if isinstance(value, dict) and 'content' in value:\n"
        "                SEEN.append(str(value['content'].get('code', '')))\n"
        "        frame = frame.f_back\n"
        "    return 2 * x if hasattr(x, 'shape') else int(2 * x)\n"
    )
    nb = doubling_notebook()
    later = new_code_cell(
        "print(''.join(SEEN))",
        metadata={
            "nbgrader": {
                "grade_id": "later",
                "solution": True,
                "grade": False,
                "locked": False,
                "schema_version": 3,
            }
        },
    )
    later.id = "cell-later"
    nb.cells.append(later)
    source = tmp_path / "source" / "double-it"
    write_assignment(source, nb)
    nb.cells[1].source = stealing
    learner = tmp_path / "learner"
    learner.mkdir()
    nbformat.write(nb, learner / "double-it.ipynb")
    executed: dict[str, NotebookNode] = {}
    with grader_for(source, 1, SandboxPolicy(), GRADING_LIMITS) as grader:
        result = grader.grade(learner, executed)
        release = grader.assignment.course.release_dir / "double-it.ipynb"
        scores = {g: (c.score, c.max_score) for g, c in result.notebooks["double-it"].cells.items()}
        page = render(executed["double-it"], released_sources(release), scores, "double-it")
    stolen = "".join(o.get("text", "") for o in executed["double-it"].cells[-1].outputs)
    assert "assert double(-7) == -14" in stolen  # the trick did read the hidden test...
    assert "assert double(-7) == -14" not in page  # ...and learners never see it
    assert HIDDEN_LINE in page


def test_nbgraders_own_cheat_attempts_score_as_stock_and_are_flagged(tmp_path: Path) -> None:
    """nbgrader's own test notebooks that patch InteractiveShell.showtraceback: stock nbgrader
    scores them 1 of 7, like the unchanged notebook. The guard puts showtraceback back before
    each test, so the honest test keeps its point, and the submissions are flagged."""
    source = tmp_path / "source" / "ps1"
    source.mkdir(parents=True)
    shutil.copy(NBGRADER_FILES / "submitted-unchanged.ipynb", source / "p1.ipynb")
    learners = {}
    for name, file in (
        ("unchanged", "submitted-unchanged.ipynb"),
        ("spam", "submitted-cheat-attempt.ipynb"),
        ("eggs", "submitted-cheat-attempt-alternative.ipynb"),
    ):
        folder = tmp_path / "submitted" / name
        folder.mkdir(parents=True)
        shutil.copy(NBGRADER_FILES / file, folder / "p1.ipynb")
        learners[name] = folder
    stock = grade_stock(source, learners)
    with grader_for(source, 2, SandboxPolicy(), LIMITS) as grader:
        ours = {name: grader.grade(folder) for name, folder in learners.items()}
    for name in learners:
        stock_cells = {g: c.score for g, c in stock[name].notebooks["p1"].cells.items()}
        our_cells = {g: c.score for g, c in ours[name].notebooks["p1"].cells.items()}
        assert our_cells == stock_cells, (name, our_cells, stock_cells)
    assert stock["spam"].score == stock["eggs"].score == 1.0
    assert ours["unchanged"].flags == ()
    for cheat in ("spam", "eggs"):
        assert any("showtraceback was replaced" in f for f in ours[cheat].flags), ours[cheat].flags


# --- 3. the fork server's control pipe --------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[KernelPool]:
    with KernelPool(2, SandboxPolicy()) as kernels:
        yield kernels


def run(pool: KernelPool, *cells: str) -> tuple[NotebookNode, list[str]]:
    nb = new_notebook(cells=[new_code_cell(code) for code in cells])
    with pool.kernel() as kernel:
        outcome = execute_notebook(nb, kernel, LIMITS)
    return nb, outcome.flags


def printed(cell: NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def test_a_kernel_holds_no_descriptor_of_its_fork_server(pool: KernelPool) -> None:
    """The kernel's open files, looked at from outside: none is the fork server's control
    channel (the review wrote forged replies and `exit` to it as fd 3). Writing to every
    descriptor the kernel has, as the review did, leaves the server unharmed."""
    with pool.kernel() as kernel:
        server = kernel.server
        assert server.process is not None and server.process.stdin and server.process.stdout
        control = {
            os.fstat(server.process.stdin.fileno()).st_ino,
            os.fstat(server.process.stdout.fileno()).st_ino,
        }
        init = int(server.root.split("/")[2])
        (fork_server,) = _children(init)
        (kernel_pid,) = _children(fork_server)
        kernel_files = {
            os.stat(f"/proc/{kernel_pid}/fd/{fd}").st_ino
            for fd in os.listdir(f"/proc/{kernel_pid}/fd")
        }
        assert not control & kernel_files
        nb = new_notebook(
            cells=[
                new_code_cell(
                    "import os\n"
                    "for fd in range(3, 256):\n"
                    "    try:\n"
                    "        os.write(fd, b'{\"op\": \"exit\"}\\n' + b'\\0\\0\\0\\2{}')\n"
                    "    except OSError:\n"
                    "        pass\n"
                    "print('written')"
                ),
            ]
        )
        execute_notebook(nb, kernel, LIMITS)
        assert server.request({"op": "alive"}).get("alive") is not None  # the server answers
    nb, flags = run(pool, "print(6 * 7)")  # and its next kernel is as good as new
    assert printed(nb.cells[0]).strip() == "42" and flags == []


def test_a_kernel_runs_under_another_uid_and_cannot_signal_its_server(pool: KernelPool) -> None:
    needs(os.geteuid() == 0, "root (uid separation)")
    nb, _ = run(
        pool,
        "import os, signal\n"
        "server = os.getppid()\n"
        "status = open(f'/proc/{server}/status').read()\n"
        "server_uid = [l.split()[1] for l in status.splitlines() if l.startswith('Uid:')][0]\n"
        "print(os.getuid(), server_uid)\n"
        "try:\n    os.kill(server, signal.SIGKILL)\n    print('killed')\n"
        "except PermissionError:\n    print('refused')\n",
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])",
    )
    kernel_uid, server_uid, verdict = printed(nb.cells[0]).split()
    assert kernel_uid != server_uid and int(kernel_uid) >= 61000
    assert verdict == "refused"
    assert int(printed(nb.cells[1]).strip(), 16) == 0  # no capability at all
    nb, flags = run(pool, "print(6 * 7)")  # the server lives on
    assert printed(nb.cells[0]).strip() == "42" and flags == []


def test_a_100_mb_line_on_the_report_pipe_is_capped(pool: KernelPool) -> None:
    """The review's flood: what the grading process keeps of it is bounded, the flood is
    flagged, and grading goes on."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nb, flags = run(
        pool,
        "import os\nos.set_blocking(3, False)\nchunk = b'x' * (1 << 20)\nsent = 0\n"
        "for _ in range(100):\n"
        "    try:\n        sent += os.write(3, chunk)\n    except OSError:\n        break\n"
        "print('sent', sent)",
    )
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 60, grown_mb
    assert "the guard's report channel was flooded" in flags, flags


# --- 4. sandbox gaps ---------------------------------------------------------------------------


def test_no_new_user_namespace_ptrace_mount_or_keyring_in_a_kernel(pool: KernelPool) -> None:
    nb, _ = run(
        pool,
        "import subprocess\n"
        "done = subprocess.run(['unshare', '-Ur', 'true'], capture_output=True)\n"
        "print('unshare', done.returncode)",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print('userns', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "print('ptrace', libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\n"
        "print('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())\n"
        f"print('keyctl', libc.syscall({KEYCTL}, 0, 0, 0, 0, 0), ctypes.get_errno())",
    )
    assert "unshare 0" not in printed(nb.cells[0]), printed(nb.cells[0])
    lines = printed(nb.cells[1]).split("\n")
    for line in filter(None, lines):
        name, result, errno = line.split()
        assert result == "-1" and errno == "1", line  # EPERM


def test_every_writable_path_is_a_capped_tmpfs(pool: KernelPool) -> None:
    """The kernel's socket folder (a disk bind before) and /dev/shm are capped in size."""
    nb, _ = run(
        pool,
        "import os\n"
        "for folder in ('/run/kernel', '/dev/shm'):\n"
        "    try:\n"
        "        with open(f'{folder}/fill', 'wb') as f:\n"
        "            for _ in range(2048):\n                f.write(b'x' * (1 << 20))\n"
        "        print(folder, 'filled 2 GiB')\n"
        "    except OSError as e:\n        print(folder, 'full', e.errno)\n"
        "    if os.path.exists(f'{folder}/fill'):\n        os.unlink(f'{folder}/fill')",
    )
    output = printed(nb.cells[0])
    assert "/run/kernel full 28" in output, output  # ENOSPC
    assert "/dev/shm full 28" in output or "/dev/shm full 27" in output, output


def test_a_fork_bomb_or_memory_hog_is_capped_per_sandbox(tmp_path: Path) -> None:
    """Two sandboxes (as two grading workers would run): one fills its process and memory caps
    (cgroup) while the other still forks and allocates. Uids are distinct host-wide."""
    needs(os.geteuid() == 0, "root (cgroups and uid leases)")
    policy = SandboxPolicy(processes=64, sandbox_memory_bytes=768 * 1024 * 1024)
    with KernelPool(1, policy) as first, KernelPool(1, policy) as second:
        with first.kernel() as hog, second.kernel() as other:
            uids = {u for k in (hog, other) for u in (k.server.uids or ())}
            assert len(uids) == 4  # a server's and a kernel's uid each, none shared
            hog_nb = new_notebook(
                cells=[
                    new_code_cell(
                        "import os, time\nstarted = 0\n"
                        "try:\n    for _ in range(500):\n"
                        "        if os.fork() == 0:\n            time.sleep(30)\n"
                        "            os._exit(0)\n        started += 1\n"
                        "except OSError as e:\n    print('forks refused after', started)"
                    ),
                    new_code_cell(
                        "import subprocess\n"
                        "hogs = [subprocess.Popen(['python3', '-c', "
                        "'b = bytearray(300 * 2**20); import time; time.sleep(30)']) "
                        "for _ in range(1)]\nprint('started')"
                    ),
                ]
            )
            execute_notebook(hog_nb, hog, LIMITS)
            assert "forks refused after" in printed(hog_nb.cells[0]), printed(hog_nb.cells[0])
            assert int(printed(hog_nb.cells[0]).split()[-1]) < 64
            other_nb = new_notebook(
                cells=[
                    new_code_cell(
                        "import subprocess\n"
                        "print([subprocess.run(['true']).returncode for _ in range(20)])\n"
                        "block = bytearray(400 * 2**20)\nprint('allocated')"
                    )
                ]
            )
            execute_notebook(other_nb, other, LIMITS)
            assert "[0, 0" in printed(other_nb.cells[0]) and "allocated" in printed(
                other_nb.cells[0]
            ), printed(other_nb.cells[0])


def test_the_sandbox_memory_cap_holds_across_processes(tmp_path: Path) -> None:
    """Each process stays under its own rlimit, together they pass the sandbox's cap: the
    cgroup stops them (before, nothing capped a sandbox as a whole)."""
    needs(os.geteuid() == 0, "root (cgroups)")
    policy = SandboxPolicy(sandbox_memory_bytes=512 * 1024 * 1024)
    with KernelPool(1, policy) as pool, pool.kernel() as kernel:
        nb = new_notebook(
            cells=[
                new_code_cell(
                    "import subprocess\n"
                    "code = ('b = bytearray(300 * 2**20)\\n'\n"
                    "        'for i in range(0, len(b), 4096): b[i] = 1\\n'\n"
                    "        'import time; time.sleep(5)')\n"
                    "procs = [subprocess.Popen(['python3', '-c', code]) for _ in range(3)]\n"
                    "print(sorted(p.wait() for p in procs))"
                )
            ]
        )
        execute_notebook(nb, kernel, LIMITS)
        codes = printed(nb.cells[0])
        assert "-9" in codes, codes  # at least one was killed by the sandbox's cap

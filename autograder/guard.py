"""The guard of a grading kernel: test verdicts that learner code cannot forge or read ahead.

Why the tests run in the learner's kernel at all: nbgrader scores a test cell by running it in
the kernel that ran the learner's cells, on the learner's objects (their classes, models and
data), with the kernel's global state (random seeds, torch.no_grad, in-place changes a test
checks). Moving a test's logic into another process would change what many real tests mean, so
"exactly as nbgrader scores them" requires the test to run where the learner's code ran. What the
guard changes is who may *decide* and *report* that a test passed.

How a test runs:
1. The grader sends the test cell as a message of its own type (TEST_REQUEST), not as code that
   names a runner: nothing is looked up in the learner's namespace, and the hidden tests of a
   cell reach the kernel only in the message that runs them.
2. A thread of the guard's own, started before any learner code and reachable from no learner
   object (sys._current_frames and the gc module's object walks are refused by the guard's
   audit hook, which cannot be removed; its code is a private copy with private builtins),
   holds the report key and every reference it checks against. The kernel's main thread only
   passes it messages through that audit hook, and it checks each one against the main
   thread's actual stack: a message counts only when it comes from the genuine code at the
   genuine place (the guard's message handler called by ipykernel's dispatcher; IPython's own
   run_code running a statement of that very cell; the done-call at the end of its last
   statement).
3. Before the test, the guard puts back what learner code changed (builtins, the kernel's own
   packages, IPython's machinery, the libraries the test names, event callbacks, trace hooks)
   and notes it: such a neutralised trick costs no honest points, but the submission is flagged.
4. The cell's statements are compiled by the guard from IPython's parse of the cell before any
   of them runs; each statement IPython then runs must be the next one, byte for byte, and the
   last one ends with a call to the done-sentinel (its displayed value passes through it, so
   partial credit is what the test computed). A statement that raises stops the cell, so the
   sentinel running proves that every statement completed. What changed *during* the test
   (anything put back again, a function's code swapped, different code run) voids the test.
5. The report (nonce, hash of the source, completed or not, what was put back, what changed)
   is signed with a key generated in that thread and handed to the trusted fork server before
   any learner code ran; the fork server reads the report pipe with size caps and keeps only
   authentic reports. A test without one scores nothing and the submission is flagged.

What this guarantees: a learner who only has Python cannot make a failing test pass or forge a
report, whatever they do to the kernel's objects, namespaces, builtins, modules, event hooks,
trace hooks, threads or signal handlers, and cannot read a hidden test before it runs; tests
with hidden parts are also wiped from IPython's history and line cache once compiled, so later
cells cannot print them.

What it does not guarantee (residual in-process tricks; each is written down in SECURITY.md):
- raw memory: code that writes the process's memory directly (ctypes, numpy buffers over
  arbitrary addresses) can change the interpreter itself, the guard's thread included;
- values: learner objects a test compares (an __eq__ that always says yes) decide that
  comparison, exactly as with stock nbgrader;
- a name the test looks up in the notebook, rebound by learner code the same test calls and put
  back before the test ends, is not seen (the guard compares before the test and when its
  last statement completes);
- code the test itself calls can read that test's source while it runs (not before).

The grader's side is in autograder.execute and autograder.grade; the fork server (trusted, other
uid, no descriptor of it in the kernel) reads the reports with ReportReader.
"""

from __future__ import annotations

import builtins
import hmac
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

TEST_REQUEST = "autograder_test_request"
EVENT = "autograder.guard"
DONE_NAME = "__autograder_done__"

# Audit events refused to every thread but the guard's: the ways to list every object or
# every thread's frames (and so reach the guard's), to add a hook that would see its work, to
# trace or profile code (a tracer runs inside every call), and to read the process's memory
# through /proc.
VETOED_EVENTS = frozenset(
    {
        "sys.addaudithook",
        "sys._current_frames",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys.settrace",
        "sys.setprofile",
    }
)
FUNCTION_STATE = frozenset({"__code__", "__defaults__", "__kwdefaults__"})

_audit = sys.audit
_EXECUTE: list[Any] = []  # the kernel's own execute_request handler, taken at install
_PRIVATE: dict[str, Any] = {}  # the private core and its snapshot, until install takes them


def _load_private() -> Any:
    """A copy of autograder._guard_core of the guard's own: not in sys.modules, with builtins
    copied now, so no global or builtin name it uses can be rebound from a notebook."""
    path = Path(__file__).with_name("_guard_core.py")
    spec = importlib.util.spec_from_file_location("autograder._guard_core_private", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__builtins__"] = dict(vars(builtins))
    spec.loader.exec_module(module)
    return module


def prepare(static: set[str] | None = None) -> None:
    """In the fork server, before any fork: reference everything loaded so far (shared copy-on-
    write by every kernel, so each kernel's install only adds what it loaded itself).
    `static`: packages a kernel's start-up leaves alone (the course's libraries)."""
    core = _load_private()
    snapshot = core.Snapshot(sys.modules)
    snapshot.add_loaded_modules()
    snapshot.static = frozenset(static or ())
    snapshot.build_flat()  # built once here, shared by every forked kernel
    _PRIVATE.update(core=core, snapshot=snapshot)


# --- what runs in the kernel's main thread (reachable by learner code, trusted by nobody) ------


async def _test_request(stream: Any, ident: Any, parent: dict[str, Any]) -> None:
    """The handler of TEST_REQUEST: the kernel's own execute_request between two guard steps."""
    _audit(EVENT, "begin")
    try:
        await _EXECUTE[0](stream, ident, parent)
    finally:
        _audit(EVENT, "end")


def _done(*value: Any) -> Any:
    """The last call of a test's last statement; passes its displayed value through."""
    _audit(EVENT, "done", *value)
    return value[0] if value else None


class _Sentinel:
    """The AST transformer present while a test's cell is compiled (the guard ends the cell
    with the done-call, in its own thread)."""

    def visit(self, node: Any) -> Any:
        _audit(EVENT, "ast", node)
        return node


def _make_hook(
    requests_put: Any,
    graveyard: list[Any],
    active: bytearray,
    guard_thread: list[int],
    main_thread: int,
    swaps: list[int],
    attempts: list[str],
    swapped: list[Any],
    get_ident: Any,
    allocate_lock: Any,
    refused: type[BaseException],
) -> Any:
    """The audit hook: refuses the vetoed events, counts function state swaps, and hands the
    guard's events to the guard's thread. It uses no global or builtin name (a notebook may
    rebind those), only what it closes over; no learner object can reach this closure."""
    vetoed = VETOED_EVENTS
    function_state = FUNCTION_STATE
    proc = "/proc/"
    proc_bytes = b"/proc/"
    mem = "/mem"
    mem_bytes = b"/mem"

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in vetoed:
            if get_ident() != guard_thread[0]:
                if len(attempts) < 100:
                    attempts.append(event)
                raise refused(event + " is not allowed while grading")
            return
        if event == "object.__setattr__":
            if args[1] in function_state and get_ident() != guard_thread[0]:
                swaps[0] += 1
                if len(swapped) < 1000:
                    swapped.append(args[0])
            return
        if event == "open":
            path = args[0]
            kind = type(path)
            if (kind is str and path.startswith(proc) and path.endswith(mem)) or (
                kind is bytes and path.startswith(proc_bytes) and path.endswith(mem_bytes)
            ):
                if len(attempts) < 100:
                    attempts.append("open /proc/.../mem")
                raise refused("reading the process's memory is not allowed while grading")
            return
        if event == "autograder.guard" or (event == "exec" and active[0]):
            if get_ident() != main_thread:
                return
            lock = allocate_lock()
            lock.acquire()
            requests_put((event, args, lock))
            lock.acquire()
            while graveyard:  # what the guard put back is let go here, not in its thread
                graveyard.pop()

    return hook


_HOOK_CODE = _make_hook.__code__.co_consts
_HOOK_CODE = next(c for c in _HOOK_CODE if getattr(c, "co_name", "") == "hook")


def install(shell: Any, kernel: Any, report_fd: int) -> None:
    """In a freshly forked kernel, before any learner code: start the guard's thread, add the
    audit hook, register the test handler and the done-sentinel, and send the report key to
    the fork server (the first line on report_fd)."""
    import _queue
    import _thread

    core_module = _PRIVATE.pop("core", None) or _load_private()
    snapshot = _PRIVATE.pop("snapshot", None)
    if snapshot is None:
        snapshot = core_module.Snapshot(sys.modules)
    vars(builtins)[DONE_NAME] = _done
    kernel.shell_handlers[TEST_REQUEST] = _test_request
    _EXECUTE[:] = [kernel.execute_request]
    snapshot.refresh()
    snapshot.add_loaded_modules()
    snapshot.build_flat()  # now, before any learner code: never lazily after it
    machinery = core_module.Machinery(shell, kernel, vars(builtins))
    shell_type = type(shell)
    codes = core_module.Codes(
        handler=_test_request.__code__,
        done=_done.__code__,
        transformer=_Sentinel.visit.__code__,
        hook=_HOOK_CODE,
        dispatch=type(kernel).dispatch_shell.__code__,
        run_cell_async=shell_type.run_cell_async.__code__,
        transform_ast=shell_type.transform_ast.__code__,
        run_ast_nodes=shell_type.run_ast_nodes.__code__,
        run_code=shell_type.run_code.__code__,
    )
    swaps = [0]
    main_thread = _thread.get_ident()
    attempts: list[str] = []
    swapped: list[Any] = []
    core = core_module.Core(
        snapshot, machinery, codes, report_fd, main_thread, swaps, _Sentinel(), attempts, swapped
    )
    core.hello()
    requests: Any = _queue.SimpleQueue()
    active = core.active
    guard_thread, graveyard = core_module.start(core, requests)
    hook = _make_hook(
        requests.put,
        graveyard,
        active,
        [guard_thread],
        main_thread,
        swaps,
        attempts,
        swapped,
        _thread.get_ident,
        _thread.allocate_lock,
        RuntimeError,
    )
    sys.addaudithook(hook)


# --- the grader's side ----------------------------------------------------------------------


def test_content(code: str, nonce: str, hidden: bool) -> dict[str, Any]:
    """The content of a TEST_REQUEST: an execute_request's, with the test's nonce."""
    return {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": False,
        "nonce": nonce,
        "hidden": hidden,
    }


class ReportReader:
    """The fork server's reading of a kernel's report pipe: the first line is the guard's key
    (written before any learner code ran); every later line counts only with a valid MAC.
    Lines over MAX_LINE, or more than MAX_BYTES in all, are not kept (a flood is noted)."""

    MAX_LINE = 256 * 1024
    MAX_BYTES = 4 * 1024 * 1024

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.pending = b""
        self.total = 0
        self.reports: dict[str, dict[str, Any]] = {}
        self.forged = 0
        self.flooded = False

    def feed(self, chunk: bytes) -> None:
        if self.flooded:
            return
        self.total += len(chunk)
        if self.total > self.MAX_BYTES:
            self.flooded = True
            self.pending = b""
            return
        self.pending += chunk
        while b"\n" in self.pending:
            line, _, self.pending = self.pending.partition(b"\n")
            self._line(line)
        if len(self.pending) > self.MAX_LINE:
            self.flooded = True
            self.pending = b""

    def _line(self, line: bytes) -> None:
        if len(line) > self.MAX_LINE:
            self.forged += 1
            return
        try:
            message = json.loads(line)
        except ValueError:
            self.forged += 1
            return
        if self.key is None:
            key = message.get("hello") if isinstance(message, dict) else None
            if isinstance(key, str) and len(key) == 64:
                self.key = bytes.fromhex(key)
            else:
                self.forged += 1
            return
        try:
            payload = message["body"]
            expected = hmac.new(self.key, payload.encode(), "sha256").hexdigest()
            if not hmac.compare_digest(expected, message["mac"]):
                raise ValueError("bad mac")
            body = json.loads(payload)
            nonce = body["nonce"]
        except (ValueError, KeyError, TypeError, AttributeError):
            self.forged += 1
            return
        self.reports.setdefault(str(nonce), body)

    def result(self) -> dict[str, Any]:
        return {
            "reports": dict(self.reports),
            "forged": self.forged,
            "flooded": self.flooded,
        }

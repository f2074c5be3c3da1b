"""Run one sanitized notebook on a lent kernel, exactly as nbgrader's Execute does, but guarded.

Cells run through nbclient with nbgrader's own Execute settings (per-cell timeout that interrupts,
errors allowed, its timeout error, its handling of a reply error that printed nothing), so the
outputs are those stock nbgrader would record. On top of that:
- test cells are sent as the guard's own message type (autograder.guard), with a nonce: the
  kernel runs them through its own execute_request between the guard's checks, and the guard's
  signed report comes back through the fork server;
- a whole-notebook wall clock, an output cap, and a kernel that dies, hangs or floods ends the run
  with a reason; cells that could not run are listed so that they score nothing.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import zmq
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from autograder.pool import (
    Kernel,
    KernelPoolError,
    KernelStartError,
    SandboxedKernelClient,
    run_coroutine,
)

# nbgrader's Execute defaults (nbgrader/preprocessors/execute.py).
ERROR_ON_TIMEOUT = {
    "ename": "CellTimeoutError",
    "evalue": "",
    "traceback": ["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"],
}
UNRESPONSIVE_GRACE = 5.0
HIDDEN_MARKER = "BEGIN HIDDEN TESTS"


@dataclass(frozen=True)
class ExecutionLimits:
    cell_timeout: float = 30.0
    notebook_timeout: float = 300.0
    output_bytes: int = 8 * 1024 * 1024  # outputs kept per notebook; the rest is dropped


@dataclass
class TestRun:
    """What the grader knows about one test cell it sent."""

    grade_id: str
    nonce: str
    source: str
    hidden: bool = False


@dataclass
class ExecutionOutcome:
    flags: list[str] = field(default_factory=list)
    not_run: set[int] = field(default_factory=set)  # cell indexes that never ran
    tests: dict[int, TestRun] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    truncated: bool = False
    forged_reports: int = 0  # lines on the guard's pipe without a valid signature
    rogue_calls: int = 0  # guard events learner code raised from outside a test


class GuardedClient(NotebookClient):
    """nbclient with nbgrader's Execute behaviour and a cap on the outputs it keeps."""

    def __init__(self, nb: NotebookNode, kernel: Kernel, limits: ExecutionLimits) -> None:
        super().__init__(
            nb,
            km=kernel.manager(),  # type: ignore[arg-type]
            timeout=max(1, round(limits.cell_timeout)),
            interrupt_on_timeout=True,
            allow_errors=True,
            raise_on_iopub_timeout=True,
            error_on_timeout=ERROR_ON_TIMEOUT,
            on_cell_executed=self._on_cell_executed,
        )
        self.output_budget = limits.output_bytes
        self.truncated = False

    def output(
        self,
        outs: list[NotebookNode],
        msg: dict[str, Any],
        display_id: str | None,
        cell_index: int,
    ) -> NotebookNode | None:
        size = len(json.dumps(msg["content"], default=str))
        if size > self.output_budget:
            if not self.truncated:
                self.truncated = True
                note = (
                    "\n... output truncated: the notebook printed more than the grader keeps ...\n"
                )
                outs.append(NotebookNode(output_type="stream", name="stdout", text=note))
            self.output_budget = 0
            return None
        self.output_budget -= size
        return super().output(outs, msg, display_id, cell_index)

    @staticmethod
    def _on_cell_executed(cell: NotebookNode, execute_reply: dict[str, Any], **_: Any) -> None:
        """nbgrader's Execute.on_cell_executed: a reply error that left no error output."""
        content = execute_reply["content"]
        if content["status"] != "error":
            return
        if any(o.output_type == "error" and o.ename == content["ename"] for o in cell.outputs):
            return
        error = NotebookNode(output_type="error")
        error.ename, error.evalue = content["ename"], content["evalue"]
        error.traceback = content["traceback"] or [
            "ERROR: An error occurred while showtraceback was disabled"
        ]
        cell.outputs.append(error)


def is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"))


async def _run(
    nb: NotebookNode, kernel: Kernel, limits: ExecutionLimits, outcome: ExecutionOutcome
) -> None:
    client = GuardedClient(nb, kernel, limits)
    client.kc = await kernel.connect()
    client.kc.allow_stdin = False
    deadline = time.monotonic() + limits.notebook_timeout
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    try:
        for position, index in enumerate(code_cells):
            cell = nb.cells[index]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.flags.append("the notebook ran out of time")
                outcome.not_run.update(code_cells[position:])
                return
            if is_test_cell(cell) and cell.source.strip():
                nonce = secrets.token_hex(16)
                grade_id = cell.metadata["nbgrader"]["grade_id"]
                hidden = HIDDEN_MARKER in cell.source
                outcome.tests[index] = TestRun(grade_id, nonce, cell.source, hidden)
                client.kc.next_test = (nonce, hidden)  # the next execute is this test
            try:
                await asyncio.wait_for(
                    client.async_execute_cell(cell, index, store_history=True),
                    timeout=remaining,
                )
            except CellTimeoutError:  # a TimeoutError too: it must come first
                # No idle status after the reply: a kernel stuck in a cell that ignored its
                # interrupt, or a connection cut by a message over the size limit.
                if await _responsive(client):
                    reason = f"code cell {position + 1} flooded its output or cut the connection"
                else:
                    reason = f"code cell {position + 1} ignored the interrupt after its time limit"
                outcome.flags.append(reason)
                outcome.not_run.update(code_cells[position:])
                return
            except TimeoutError:
                outcome.flags.append("the notebook ran out of time")
                outcome.not_run.update(code_cells[position:])
                return
            except DeadKernelError:
                outcome.flags.append(f"the kernel died in code cell {position + 1}")
                outcome.not_run.update(code_cells[position:])
                return
            except zmq.ZMQError:
                # The kernel stopped reading its channel (its own code broke it): nothing more
                # can be sent to it.
                outcome.flags.append(f"the kernel stopped answering in code cell {position + 1}")
                outcome.not_run.update(code_cells[position:])
                return
            if _timed_out(cell) and not await _responsive(client):
                outcome.flags.append(
                    f"code cell {position + 1} ignored the interrupt after its time limit"
                )
                outcome.not_run.update(code_cells[position + 1 :])
                return
    finally:
        outcome.truncated = client.truncated
        if client.truncated:
            outcome.flags.append("output was truncated")
        client.kc.stop_channels()


def _timed_out(cell: NotebookNode) -> bool:
    return any(
        o.output_type == "error" and o.get("ename") == ERROR_ON_TIMEOUT["ename"]
        for o in cell.outputs
    )


async def _responsive(client: GuardedClient) -> bool:
    """After an interrupt: does the kernel answer again within a grace period?"""
    assert isinstance(client.kc, SandboxedKernelClient)
    try:
        msg_id = client.kc.kernel_info()
    except zmq.ZMQError:
        return False
    deadline = time.monotonic() + UNRESPONSIVE_GRACE
    while time.monotonic() < deadline:
        try:
            reply = await client.kc.get_shell_msg(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            break
        if reply["parent_header"].get("msg_id") == msg_id:
            return True
    return False


def execute_notebook(nb: NotebookNode, kernel: Kernel, limits: ExecutionLimits) -> ExecutionOutcome:
    """Execute every code cell of `nb` in place; read the guard's reports afterwards."""
    outcome = ExecutionOutcome()
    try:
        run_coroutine(_run(nb, kernel, limits, outcome))
    except KernelStartError:
        raise  # nothing ran: the caller tries another kernel
    except KernelPoolError as e:
        outcome.flags.append(f"the sandbox failed: {e}")
        outcome.not_run.update(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    reply = kernel.reports()
    outcome.reports = {str(k): v for k, v in dict(reply.get("reports") or {}).items()}
    outcome.forged_reports = int(reply.get("forged") or 0)
    outcome.rogue_calls = sum(int(r.get("rogue") or 0) for r in outcome.reports.values())
    if reply.get("flooded"):
        outcome.flags.append("the guard's report channel was flooded")
    if reply.get("lost"):
        outcome.flags.append("the guard's reports could not be read")
    return outcome

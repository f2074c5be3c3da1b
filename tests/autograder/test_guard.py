"""Learner code that tries to make a test not run, or not report its failure, gets nothing.

Each submission below answers wrongly (double returns 0) and then plays a trick that, without
the guard, would let the wrong answer pass or hide the failure. Every one must score zero on
the test and be flagged: the guard either put the machinery back before the test (the test then
ran as written, and failed) or refused the trick outright. Real kernels, real sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.grade import Grader
from tests.autograder.conftest import SOLUTION, score_of, submit

WRONG = "def double(x):\n    return 0\n"
# Right for numbers, wrong for arrays: only the numpy check can fail it.
ARRAYS_WRONG = "def double(x):\n    return x if hasattr(x, 'shape') else int(2 * x)\n"

TRICKS = {
    "input transformer": WRONG
    + "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n",
    "input transformer (post)": WRONG
    + "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n",
    "AST transformer": WRONG
    + """import ast
class Nothing(ast.NodeTransformer):
    def visit_Module(self, node):
        return ast.Module(body=[ast.Pass()], type_ignores=[])
get_ipython().ast_transformers.append(Nothing())
""",
    "run_cell replaced on the class": WRONG
    + """shell = type(get_ipython())
async def nothing(self, *args, **kwargs):
    return None
shell.run_cell_async = nothing
shell.run_cell = lambda self, *args, **kwargs: None
""",
    "showtraceback silenced": WRONG
    + """ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
""",
    "showtraceback code swapped": WRONG
    + """from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.showtraceback.__code__ = (lambda self, *a, **k: None).__code__
""",
    "custom exception handler swallows assertions": WRONG
    + "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)\n",
    "builtins replaced": """import builtins
class Anything(int):
    def __eq__(self, other):
        return True
def double(x):
    return Anything(0)
builtins.type = lambda obj, *rest: int
""",
    "numpy function replaced": ARRAYS_WRONG
    + "import numpy as np\nnp.allclose = lambda *a, **k: True\n",
    "fake module in sys.modules": ARRAYS_WRONG
    + """import sys, types, numpy
fake = types.ModuleType("numpy")
fake.allclose = lambda *a, **k: True
fake.arange = numpy.arange
sys.modules["numpy"] = fake
""",
    "trace function skips the asserts": WRONG
    + """import sys
def skip(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "<module>" and "assert" in "".join(
        __import__("linecache").getlines(frame.f_code.co_filename)
    ):
        frame.f_trace_lines = True
        def jump(frame, event, arg):
            if event == "line":
                try:
                    frame.f_lineno = frame.f_code.co_firstlineno + 99
                except ValueError:
                    pass
            return jump
        return jump
    return skip
sys.settrace(skip)
""",
    "pre_run_cell callback sets a trace": WRONG
    + """import sys
def hook(info):
    sys.settrace(lambda *a: None)
get_ipython().events.register("pre_run_cell", hook)
""",
    "messages with errors dropped": WRONG
    + """session = get_ipython().kernel.session
original = session.send
def send(stream, msg_or_type, content=None, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type.get("msg_type")
    if kind == "error":
        return None
    if kind == "execute_reply" and content and content.get("status") == "error":
        content = {"status": "ok", "execution_count": content.get("execution_count", 0),
                   "user_expressions": {}, "payload": []}
    return original(stream, msg_or_type, content, *args, **kwargs)
session.send = send
""",
    "the done-sentinel shadowed": WRONG + "__autograder_done__ = lambda *a, **k: None\n",
    "kernel exits": WRONG + "import os\nos._exit(0)\n",
    "kernel kills its sandbox's server": WRONG
    + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "interrupts ignored, then hangs": WRONG
    + "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
}


# What the flag must name, where the guard can tell exactly what happened.
REASONS = {
    "custom exception handler swallows assertions": "CustomTB was replaced",
    "fake module in sys.modules": "sys.modules['numpy'] was replaced",
    "kernel exits": "the kernel died",
    "messages with errors dropped": "Session.send was overridden",
    "numpy function replaced": "numpy.allclose was replaced",
    "pre_run_cell callback sets a trace": "pre_run_cell callback",
    "showtraceback code swapped": "showtraceback has changed code",
    "showtraceback silenced": "showtraceback was overridden",
    "trace function skips the asserts": "tried sys.settrace (refused)",
    "run_cell replaced on the class": "ZMQInteractiveShell.run_cell was replaced",
    "input transformer": "input/AST transformers were changed",
    "AST transformer": "input/AST transformers were changed",
    "builtins replaced": "builtins.type was replaced",
}
# Tricks that can no longer do anything: the test ran as written and simply failed.
HARMLESS = {
    # The kernel runs under a uid of its own: its fork server is out of its reach.
    "kernel kills its sandbox's server",
    # The sentinel is looked up like any name, so a learner can only shadow it to their cost:
    # the test never completes, and its failure is shown as usual.
    "the done-sentinel shadowed",
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_trick_scores_zero_and_is_flagged(grader: Grader, tmp_path: Path, trick: str) -> None:
    result = submit(grader, tmp_path, TRICKS[trick])
    assert score_of(result) == 0.0, result.to_json()
    if trick in HARMLESS:
        return
    assert result.flags, f"{trick}: not flagged: {result.to_json()}"
    if trick in REASONS:
        assert any(REASONS[trick] in flag for flag in result.flags), result.flags


# The tricks alone, played after a right answer.
NEUTRALISED = {
    trick: TRICKS[trick].replace(WRONG, "").replace(ARRAYS_WRONG, "")
    for trick in REASONS.keys() - {"kernel exits", "builtins replaced"}
}
NEUTRALISED["builtins replaced"] = "import builtins\nbuiltins.type = lambda obj, *rest: int\n"


@pytest.mark.parametrize("trick", sorted(NEUTRALISED))
def test_a_neutralised_trick_costs_no_honest_points(
    grader: Grader, tmp_path: Path, trick: str
) -> None:
    """The same trick played by a right answer: the guard puts the machinery back, the test
    runs as written and passes, the points stay, and the submission is flagged with why."""
    result = submit(grader, tmp_path, SOLUTION + NEUTRALISED[trick])
    assert score_of(result) == 2.0, result.to_json()
    assert any(REASONS[trick] in flag for flag in result.flags), result.flags


def test_numpy_tricks_would_pass_without_the_guard(grader: Grader, tmp_path: Path) -> None:
    """The tricks above are real: with the same wrong answer and no trick, the test fails, and
    the trick itself makes np.allclose say True (checked outside any test cell)."""
    result = submit(grader, tmp_path, ARRAYS_WRONG)
    assert score_of(result) == 0.0 and result.flags == ()
    executed: dict[str, object] = {}
    trick = TRICKS["numpy function replaced"] + "print(np.allclose([1], [2]))\n"
    submit(grader, tmp_path, trick, name="trick", executed=executed)
    answer_cell = executed["double-it"].cells[1]  # type: ignore[attr-defined]
    assert "True" in "".join(o.get("text", "") for o in answer_cell.outputs)


def test_right_answer_after_tricks_is_graded_normally(grader: Grader, tmp_path: Path) -> None:
    """Kernels never carry state: after every trick above, a right answer gets full marks."""
    result = submit(grader, tmp_path, SOLUTION)
    assert score_of(result) == 2.0
    assert result.flags == ()


def test_a_hanging_answer_is_interrupted_even_if_it_ignored_sigint(
    grader: Grader, tmp_path: Path
) -> None:
    """ipykernel puts its own SIGINT handler back after each cell, and the guard before each
    test: the hang inside the test is interrupted at the cell time limit, not waited out."""
    solution = (
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "def double(x):\n    while True:\n        pass\n"
    )
    result = submit(grader, tmp_path, solution)
    assert score_of(result) == 0.0
    assert result.seconds < 20, result.to_json()

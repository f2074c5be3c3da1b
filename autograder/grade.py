"""Grade submissions as stock nbgrader scores them, on the warm pool of sandboxed kernels.

The pipeline is nbgrader's own autograde, step by step, in this process:
1. sanitize with nbgrader's preprocessors (ClearOutput, DeduplicateIds, OverwriteKernelspec,
   OverwriteCells, CheckCellMetadata): tests and locked cells come back from the gradebook that
   `nbgrader generate_assignment` built from the source, whatever the learner did to them;
2. execute on a fresh kernel of the pool (autograder.execute), with the guard on test cells;
3. LimitOutput, then nbgrader's `determine_grade` per graded cell, as SaveAutoGrades does.
A test cell whose guard report is missing, forged, or names a tampering gets nothing, and the
submission is flagged. One nbgrader course directory is prepared per source assignment.

Over 400 lines on purpose: nbgrader's autograde pipeline, step by step, beside the scoring
that must match it exactly.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import hashlib
import json
import logging
import math
import re
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from autograder.execute import ExecutionLimits, ExecutionOutcome, execute_notebook
from autograder.gpu import GpuSlots
from autograder.nbgrader_cli import CourseDir, generate_in_process
from autograder.notebooks import NotebookError, load_raw
from autograder.pool import KernelPool, KernelPoolError, KernelStartError
from autograder.results import (
    CellResult,
    CellStatus,
    GradeResult,
    InfrastructureFailure,
    NotebookResult,
)
from autograder.sandbox import SandboxPolicy

log = logging.getLogger(__name__)

# nbgrader's CourseDirectory.ignore: never copied from a submission or the source.
IGNORED = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")
MAX_SUBMISSION_BYTES = 100 * 1024 * 1024
MAX_FILES = 500


class SubmissionError(ValueError):
    """A submission that cannot be graded; the message says why in one line."""


@dataclass(frozen=True)
class GradedCellInfo:
    grade_id: str
    max_score: float
    manual: bool  # a learner's answer graded by hand (nbgrader: grade + solution)
    task: bool = False  # a task cell: always graded by hand


class SourceCells:
    """What nbgrader's OverwriteCells and OverwriteKernelspec ask the gradebook, read once.

    They open the gradebook for every notebook of every submission (an engine, a schema check
    and a query per cell: a fifth of the grading time). These are the same rows, as plain data,
    answering the same four questions; nbgrader's own per-cell logic stays untouched.
    """

    def __init__(self) -> None:
        self.source: dict[tuple[str, str], types.SimpleNamespace] = {}
        self.graded: dict[tuple[str, str], types.SimpleNamespace] = {}
        self.kernelspecs: dict[str, str | None] = {}

    @classmethod
    def read(cls, gradebook: Any, assignment: str) -> SourceCells:
        cells = cls()
        for notebook in gradebook.find_assignment(assignment).notebooks:
            cells.kernelspecs[notebook.name] = notebook.kernelspec
            for cell in notebook.source_cells:
                cells.source[(cell.name, notebook.name)] = types.SimpleNamespace(
                    name=cell.name,
                    cell_type=cell.cell_type,
                    locked=cell.locked,
                    checksum=cell.checksum,
                    source=cell.source,
                )
            for cell in [*notebook.grade_cells, *notebook.task_cells]:
                cells.graded[(cell.name, notebook.name)] = types.SimpleNamespace(
                    name=cell.name, max_score=cell.max_score
                )
        return cells

    def find_source_cell(self, name: str, notebook: str, assignment: str) -> Any:
        return self._find(self.source, name, notebook)

    def find_graded_cell(self, name: str, notebook: str, assignment: str) -> Any:
        return self._find(self.graded, name, notebook)

    @staticmethod
    def _find(table: dict[tuple[str, str], Any], name: str, notebook: str) -> Any:
        from nbgrader.api import MissingEntry

        try:
            return table[(name, notebook)]
        except KeyError:
            raise MissingEntry() from None


@dataclass
class PreparedAssignment:
    """A source assignment made ready to grade against: its gradebook and its files."""

    source_dir: Path
    name: str
    course: CourseDir
    notebooks: dict[str, list[GradedCellInfo]]
    source_files: dict[str, bytes]
    imports: list[str]
    source_cells: SourceCells
    gpu: bool = False
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def db_url(self) -> str:
        return self.course.db_url

    @property
    def max_score(self) -> float:
        return sum(c.max_score for cells in self.notebooks.values() for c in cells)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def check_source(source_dir: Path) -> Path:
    source_dir = Path(source_dir).resolve()
    if not source_dir.is_dir() or not list(source_dir.glob("*.ipynb")):
        raise SubmissionError(f"{source_dir}: not an nbgrader source assignment (no notebooks)")
    return source_dir


def prepare(source_dir: Path, gpu: bool = False) -> PreparedAssignment:
    """Run `nbgrader generate_assignment` once: its gradebook is what submissions are checked
    against (the source's tests, locked cells and checksums)."""
    from nbgrader.api import Gradebook

    source_dir = check_source(source_dir)
    tmp = tempfile.TemporaryDirectory(prefix="assignment-")
    course = CourseDir(Path(tmp.name), source_dir)
    generate_in_process(course)
    notebooks: dict[str, list[GradedCellInfo]] = {}
    with Gradebook(course.db_url) as gradebook:
        assignment = gradebook.find_assignment(course.name)
        cache = SourceCells.read(gradebook, course.name)
        for notebook in assignment.notebooks:
            solutions = {cell.name for cell in notebook.solution_cells}
            notebooks[notebook.name] = [
                GradedCellInfo(cell.name, float(cell.max_score), cell.name in solutions)
                for cell in notebook.grade_cells
            ] + [
                GradedCellInfo(cell.name, float(cell.max_score), manual=True, task=True)
                for cell in notebook.task_cells
            ]
    files = {
        rel: (source_dir / rel).read_bytes()
        for rel in _files(source_dir)
        if not rel.endswith(".ipynb")
    }
    return PreparedAssignment(
        source_dir, course.name, course, notebooks, files, _imports(source_dir), cache, gpu, tmp
    )


def _files(folder: Path) -> Iterator[str]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in IGNORED):
            continue
        if path.is_file() and not path.is_symlink():
            yield rel.as_posix()


def _imports(source_dir: Path) -> list[str]:
    """Top-level modules the source notebooks import: the fork server preloads them."""
    names: list[str] = []
    for path in sorted(source_dir.glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            source = "".join(cell.get("source", []))
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.append(node.module)
    heavy = []
    for name in dict.fromkeys(names):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in heavy:
            continue
        heavy.append(top)
    if "matplotlib" in heavy:
        heavy.append("matplotlib.font_manager")  # builds the font list once, not per learner
    return heavy


def read_submission(folder: Path, assignment: PreparedAssignment) -> dict[str, bytes]:
    """The learner's files, checked: sizes capped, notebooks of the assignment must parse."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: no such submission folder")
    files: dict[str, bytes] = {}
    total = 0
    for rel in _files(folder):
        data = (folder / rel).read_bytes()
        total += len(data)
        if total > MAX_SUBMISSION_BYTES or len(files) >= MAX_FILES:
            raise SubmissionError(
                f"{folder}: submission too large (over {MAX_SUBMISSION_BYTES // 2**20} MB "
                f"or {MAX_FILES} files)"
            )
        files[rel] = data
    for name in assignment.notebooks:
        notebook = files.get(f"{name}.ipynb")
        if notebook is not None:
            parse_notebook(f"{name}.ipynb", notebook)
    return files


def parse_notebook(name: str, data: bytes) -> NotebookNode:
    try:
        load_raw(name, data)
    except NotebookError as e:
        raise SubmissionError(str(e)) from e
    try:
        notebook: NotebookNode = nbformat.reads(data.decode("utf-8"), as_version=4)
        return notebook
    except Exception as e:  # nbformat raises several types for malformed structure
        raise SubmissionError(f"{name}: not a valid notebook ({type(e).__name__})") from e


@functools.cache
def _validate_schemas_once() -> None:
    """nbgrader checks each cell's metadata with `jsonschema.validate`, which first checks the
    schema itself, for every cell of every notebook (a tenth of a second per submission). The
    schema is a constant of nbgrader: check the metadata exactly as before, the schema once."""
    import jsonschema
    from nbgrader.nbgraderformat import common

    validators: dict[int, Any] = {}

    def validate(instance: Any, schema: dict[str, Any]) -> None:
        validator = validators.get(id(schema))
        if validator is None:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = validators[id(schema)] = (cls(schema), schema)
        error = jsonschema.exceptions.best_match(validator[0].iter_errors(instance))
        if error is not None:
            raise error

    common.jsonschema = types.SimpleNamespace(validate=validate)


def sanitize(nb: NotebookNode, assignment: PreparedAssignment, notebook: str) -> NotebookNode:
    """nbgrader's sanitizing preprocessors, in nbgrader's order, as Autograde runs them."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        NbGraderPreprocessor,
        OverwriteCells,
    )

    _validate_schemas_once()
    resources: dict[str, Any] = {
        "nbgrader": {
            "notebook": notebook,
            "assignment": assignment.name,
            "db_url": assignment.db_url,
            "student": "learner",
        }
    }
    cells = assignment.source_cells
    nb, resources = ClearOutput().preprocess(nb, resources)
    nb, resources = DeduplicateIds().preprocess(nb, resources)
    # OverwriteKernelspec, with the source notebook's kernelspec read once.
    kernelspec = cells.kernelspecs.get(notebook)
    if kernelspec:
        nb.metadata["kernelspec"] = json.loads(kernelspec)
    # OverwriteCells: nbgrader's per-cell logic on the rows read once (see SourceCells).
    overwrite = OverwriteCells()
    overwrite.notebook_id, overwrite.assignment_id = notebook, assignment.name
    overwrite.gradebook = cells
    nb, resources = NbGraderPreprocessor.preprocess(overwrite, nb, resources)
    nb, resources = CheckCellMetadata().preprocess(nb, resources)
    return nb


def limit_output(nb: NotebookNode) -> NotebookNode:
    from nbgrader.preprocessors import LimitOutput

    nb, _ = LimitOutput().preprocess(nb, {})
    return nb


class Grader:
    """Grades submissions of one source assignment on its own warm kernel pool."""

    def __init__(
        self,
        assignment: PreparedAssignment,
        pool: KernelPool,
        limits: ExecutionLimits | None = None,
    ) -> None:
        self.assignment = assignment
        self.pool = pool
        self.limits = limits or ExecutionLimits()
        self.gpu_slots = pool.gpu_slots

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def grade(
        self, submission: Path, executed: dict[str, NotebookNode] | None = None
    ) -> GradeResult:
        """Grade a learner's folder; `executed` (if given) receives the graded notebooks."""
        started = time.perf_counter()
        try:
            files = read_submission(submission, self.assignment)
        except SubmissionError as e:
            return self._failed(str(e), started)
        return self.grade_files(files, started, executed)

    def grade_files(
        self,
        files: Mapping[str, bytes],
        started: float | None = None,
        executed: dict[str, NotebookNode] | None = None,
    ) -> GradeResult:
        started = time.perf_counter() if started is None else started
        errors: list[str] = []
        infrastructure: list[InfrastructureFailure] = []
        flags: list[str] = []
        devices: set[str] = set()
        notebooks: dict[str, NotebookResult] = {}
        # Like stock: the source's other files (data, helpers) replace the learner's copies.
        workspace = {**files, **self.assignment.source_files}
        for name, cells in self.assignment.notebooks.items():
            data = files.get(f"{name}.ipynb")
            if data is None:
                errors.append(f"{name}.ipynb: not submitted")
                notebooks[name] = _zero(cells, "failed")
                continue
            try:
                nb = sanitize(parse_notebook(f"{name}.ipynb", data), self.assignment, name)
            except Exception as e:  # noqa: BLE001 - nbgrader rejects tampered metadata this way
                errors.append(f"{name}.ipynb: {_one_line(e)}")
                notebooks[name] = _zero(cells, "failed")
                continue
            workspace[f"{name}.ipynb"] = json.dumps(nb, indent=1).encode()
            try:
                outcome = self._execute(nb, workspace, devices)
            except KernelStartError as e:  # before any learner code ran: the grader's failure
                errors.append(f"{name}.ipynb: {e}")
                infrastructure.append(InfrastructureFailure(name, str(e)))
                notebooks[name] = _zero(cells, "failed")
                continue
            except KernelPoolError as e:
                errors.append(f"{name}.ipynb: {e}")
                notebooks[name] = _zero(cells, "failed")
                continue
            nb = limit_output(nb)
            if executed is not None:
                executed[name] = nb
            result, notebook_flags = score(nb, cells, outcome)
            notebooks[name] = result
            flags += [f"{name}.ipynb: {flag}" for flag in notebook_flags]
        if self.assignment.gpu and not self.gpu_slots.available:
            errors.append("GPU assignment graded on the CPU: this host has no GPU slots")
        return GradeResult(
            score=sum(nb.score for nb in notebooks.values()),
            max_score=self.assignment.max_score,
            notebooks=notebooks,
            errors=tuple(errors),
            seconds=time.perf_counter() - started,
            flags=tuple(flags),
            device=",".join(sorted(devices)) or "none",
            infrastructure=tuple(infrastructure),
        )

    def _execute(
        self, nb: NotebookNode, workspace: dict[str, bytes], devices: set[str]
    ) -> ExecutionOutcome:
        """Run the notebook on a fresh kernel; a kernel lost before any learner code ran is
        replaced once (the grader's failure must not cost the learner points)."""
        for attempt in range(2):
            try:
                with self.pool.kernel() as kernel:
                    kernel.put_files(self.assignment.name, workspace)
                    devices.add(kernel.device)
                    return execute_notebook(nb, kernel, self.limits)
            except KernelStartError:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _failed(self, reason: str, started: float) -> GradeResult:
        notebooks = {
            name: _zero(cells, "failed") for name, cells in self.assignment.notebooks.items()
        }
        return GradeResult(
            score=0.0,
            max_score=self.assignment.max_score,
            notebooks=notebooks,
            errors=(reason,),
            seconds=time.perf_counter() - started,
        )


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _zero(cells: list[GradedCellInfo], status: CellStatus) -> NotebookResult:
    results = {
        c.grade_id: CellResult(
            0.0,
            c.max_score,
            "needs_grading" if c.task else "unanswered" if c.manual else status,
        )
        for c in cells
    }
    return NotebookResult(0.0, sum(c.max_score for c in cells), results)


def score(
    nb: NotebookNode, cells: list[GradedCellInfo], outcome: ExecutionOutcome
) -> tuple[NotebookResult, list[str]]:
    """SaveAutoGrades' scoring (nbgrader.utils.determine_grade), then the guard's verdict."""
    from nbgrader import utils

    flags = list(outcome.flags)
    by_id = {}
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and meta.get("grade_id"):
            by_id[meta["grade_id"]] = (index, cell)
    results: dict[str, CellResult] = {}
    for info in cells:
        if info.task:
            results[info.grade_id] = CellResult(0.0, info.max_score, "needs_grading")
            continue
        found = by_id.get(info.grade_id)
        if found is None:  # a deleted cell: stock gives it nothing
            status: CellStatus = "unanswered" if info.manual else "failed"
            results[info.grade_id] = CellResult(0.0, info.max_score, status)
            continue
        index, cell = found
        try:
            auto, _ = utils.determine_grade(cell)
        except ValueError as e:  # partial credit above the cell's points: stock fails here
            flags.append(f"{info.grade_id}: {e}")
            auto = 0.0
        if info.manual:
            if auto is None:
                results[info.grade_id] = CellResult(0.0, info.max_score, "needs_grading")
            else:
                results[info.grade_id] = CellResult(float(auto), info.max_score, "unanswered")
            continue
        points = float(auto or 0.0)
        keep, notes = _guard_verdict(index, cell, outcome, points, info.max_score)
        flags += [f"{info.grade_id}: {note}" for note in notes]
        if not keep:
            points = 0.0
        status = "passed" if points >= info.max_score else "partial" if points > 0 else "failed"
        test = outcome.tests.get(index)
        hidden = test is None or test.hidden
        message = "" if status == "passed" or hidden else failure_message(cell)
        results[info.grade_id] = CellResult(points, info.max_score, status, message)
    if outcome.forged_reports:
        flags.append(
            f"tampering: {outcome.forged_reports} forged report(s) were written to the guard's "
            "channel (ignored)"
        )
    if outcome.rogue_calls:
        flags.append("learner code called the guard from outside a test (ignored)")
    return (
        NotebookResult(
            sum(r.score for r in results.values()), sum(c.max_score for c in cells), results
        ),
        flags,
    )


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
MESSAGE_CHARS = 4000


def failure_message(cell: NotebookNode) -> str:
    """A failed test's error as the learner would see it in Jupyter: the traceback, plain
    text (no terminal colours), its tail kept when it is long."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            lines = output.get("traceback") or [f"{output.get('ename')}: {output.get('evalue')}"]
            text = ANSI_ESCAPE.sub("", "\n".join(str(line) for line in lines)).strip()
            return text if len(text) <= MESSAGE_CHARS else "…" + text[-MESSAGE_CHARS:]
    return ""


def _guard_verdict(
    index: int, cell: NotebookNode, outcome: ExecutionOutcome, points: float, max_points: float
) -> tuple[bool, list[str]]:
    """(may the test cell keep the points its outputs give, why it was flagged).

    The guard's authentic report decides: a test counts only when every statement of it ran
    to the end (the report says so); what learner code changed before the test was put back,
    so such a neutralised trick costs nothing but is flagged; a change during the test, a
    different code, a missing report or an error hidden from the outputs voids the test."""
    if index in outcome.not_run:
        return False, ["did not run"]
    if cell.cell_type != "code" or not cell.source.strip():
        return True, []
    test = outcome.tests.get(index)
    if test is None:
        return False, ["was not sent as a test"]
    report = outcome.reports.get(test.nonce)
    if report is None:
        return False, ["tampering: the test did not really run (no report from the guard)"]
    if report.get("source") != hashlib.sha256(test.source.encode()).hexdigest():
        return False, ["tampering: different code ran in place of the test"]
    notes = []
    before = [str(c) for c in report.get("before") or []]
    if before:
        notes.append(
            "put back before the test ran (the test ran as written): " + "; ".join(before[:5])
        )
    during = [str(c) for c in report.get("during") or []]
    if during:
        return False, [*notes, "tampering during the test: " + "; ".join(during[:5])]
    shown_error = any(
        o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")
        for o in cell.outputs
    )
    if not report.get("completed"):
        if not shown_error:
            notes.append("tampering: the test did not finish, yet its error was hidden")
        return False, notes
    displayed = _displayed_number(cell)
    if displayed is not None:
        # nbgrader's partial credit is the text the test's last expression displayed: it must
        # be that of the value the guard saw the expression produce.
        seen = report.get("value") if report.get("last_expr") else None
        number = displayed[1]
        if (number is None) != (seen is None) or (
            number is not None and seen is not None and not math.isclose(number, float(seen))
        ):
            return False, [*notes, "tampering: the displayed result was not the test's own"]
    return True, notes


def _displayed_number(cell: NotebookNode) -> tuple[str, float | None] | None:
    """The output nbgrader's determine_grade takes partial credit from (the first execute
    result, when no error or stderr comes before it): (its text, the number it parses to)."""
    for output in cell.outputs:
        if output.output_type == "error" or (
            output.output_type == "stream" and output.name == "stderr"
        ):
            return None
        if output.output_type == "execute_result":
            text = output.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            try:
                return text, float(text)
            except ValueError:
                return text, None
    return None


def grade_many(
    grader: Grader, submissions: Mapping[str, Path], workers: int = 2, progress: Any = None
) -> dict[str, GradeResult]:
    """Grade every learner's folder; `workers` submissions at a time share the pool."""
    results: dict[str, GradeResult] = {}
    lock = threading.Lock()

    def one(learner: str) -> None:
        result = grader.grade(submissions[learner])
        with lock:
            results[learner] = result
            if progress is not None:
                progress(learner, result)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
        list(executor.map(one, sorted(submissions)))
    return {learner: results[learner] for learner in sorted(submissions)}


@contextmanager
def grader_for(
    source_dir: Path,
    pool_size: int = 2,
    policy: SandboxPolicy | None = None,
    limits: ExecutionLimits | None = None,
    gpu: bool = False,
    gpu_slots: GpuSlots | None = None,
) -> Iterator[Grader]:
    """A grader for one source assignment. The sandboxes start first: they warm up while
    nbgrader builds the gradebook."""
    source_dir = check_source(source_dir)
    pool = KernelPool(
        pool_size,
        policy or SandboxPolicy(),
        preload=_imports(source_dir),
        gpu=gpu,
        gpu_slots=gpu_slots,
        folder=source_dir.name,
    )
    try:
        assignment = prepare(source_dir, gpu=gpu)
    except BaseException:
        pool.close()
        raise
    try:
        with Grader(assignment, pool, limits) as grader:
            yield grader
    finally:
        assignment.close()


def learner_folders(root: Path, assignment_name: str | None = None) -> dict[str, Path]:
    """SUBMITTED_ROOT/<learner>/ (or nbgrader's <learner>/<assignment>/ when that exists)."""
    folders = {}
    for entry in sorted(Path(root).iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        nested = entry / assignment_name if assignment_name else None
        folders[entry.name] = nested if nested is not None and nested.is_dir() else entry
    return folders


__all__ = [
    "ExecutionLimits",
    "Grader",
    "NotebookError",
    "PreparedAssignment",
    "SubmissionError",
    "grade_many",
    "grader_for",
    "learner_folders",
    "prepare",
]

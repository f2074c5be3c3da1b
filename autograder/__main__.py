"""python -m autograder grade | grade-many | release | feedback (contracts in docs/architecture.md).

Configuration comes from the same LMS_* variables as the LMS: LMS_SANDBOX, LMS_KERNEL_POOL_SIZE,
LMS_CELL_TIMEOUT, LMS_NOTEBOOK_TIMEOUT, LMS_GPU_SLOTS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from autograder.execute import ExecutionLimits
from autograder.gpu import GpuSlots
from autograder.nbgrader_cli import NbgraderError
from autograder.notebooks import NotebookError
from autograder.pool import KernelPoolError
from autograder.results import GradeResult
from autograder.sandbox import SandboxPolicy, SandboxUnavailable


def settings() -> tuple[SandboxPolicy, ExecutionLimits, GpuSlots, int]:
    slots = GpuSlots.parse(
        os.environ.get("LMS_GPU_SLOTS"), Path(os.environ.get("LMS_GPU_DEVICE_ROOT") or "/")
    )
    policy = SandboxPolicy(mode=os.environ.get("LMS_SANDBOX", "bwrap"))
    limits = ExecutionLimits(
        cell_timeout=float(os.environ.get("LMS_CELL_TIMEOUT", 30)),
        notebook_timeout=float(os.environ.get("LMS_NOTEBOOK_TIMEOUT", 300)),
    )
    return policy, limits, slots, int(os.environ.get("LMS_KERNEL_POOL_SIZE", 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    grade = verbs.add_parser("grade", help="grade one learner's folder")
    grade.add_argument("source", type=Path, help="nbgrader source assignment folder")
    grade.add_argument("submission", type=Path, help="the learner's files")
    many = verbs.add_parser("grade-many", help="grade every SUBMITTED_ROOT/<learner>/")
    many.add_argument("source", type=Path)
    many.add_argument("submitted_root", type=Path)
    many.add_argument("--workers", type=int, default=None, help="submissions graded at once")
    for verb in (grade, many):
        verb.add_argument("--json", action="store_true", help="print the result as JSON")
        verb.add_argument("--gpu", action="store_true", help="the assignment needs a GPU")
    release = verbs.add_parser("release", help="generate the learners' version (nbgrader)")
    release.add_argument("source", type=Path)
    release.add_argument("dest", type=Path)
    feedback = verbs.add_parser("feedback", help="grade, then write sanitized feedback HTML")
    feedback.add_argument("source", type=Path)
    feedback.add_argument("submission", type=Path)
    feedback.add_argument("output", type=Path, help="folder for <notebook>.html")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return _run(args)
    except (NotebookError, SandboxUnavailable, KernelPoolError, NbgraderError, ValueError) as e:
        first = str(e).strip().splitlines()
        print(f"error: {first[0] if first else type(e).__name__}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from autograder.grade import SubmissionError, grade_many, grader_for, learner_folders

    if args.verb == "release":
        from autograder.release import generate_release

        for path in generate_release(args.source, args.dest):
            print(path)
        return 0
    policy, limits, slots, pool_size = settings()
    started = time.perf_counter()
    if args.verb in ("grade", "feedback"):
        _check_submission(args.submission)
        with grader_for(args.source, pool_size, policy, limits, args.__dict__.get("gpu", False),
                        slots) as grader:  # fmt: skip
            executed: dict[str, Any] = {}
            result = grader.grade(args.submission, executed)
            if args.verb == "feedback":
                _write_feedback(grader, result, executed, args.output)
                return 0
        if result.errors and not result.notebooks:
            raise SubmissionError(result.errors[0])
        _print(result.to_json() | {"seconds": round(time.perf_counter() - started, 3)}, args)
        return 0
    folders = learner_folders(args.submitted_root, args.source.name)
    workers = args.workers or pool_size
    # One sandbox more than submissions at once: while a used one is wiped and its next kernel
    # forked, a warm one is ready, so no worker waits for a recycle (more than one folder).
    sandboxes = max(pool_size, workers + 1) if len(folders) > workers else max(pool_size, workers)
    with grader_for(args.source, sandboxes, policy, limits, args.gpu,
                    slots) as grader:  # fmt: skip
        results = grade_many(grader, folders, workers, _progress(len(folders)))
    payload = {
        "learners": {name: result.to_json() for name, result in results.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    _print(payload, args)
    return 0


def _check_submission(folder: Path) -> None:
    """A bad submission exits with one line before any sandbox starts."""
    from autograder.grade import SubmissionError, parse_notebook

    if not folder.is_dir():
        raise SubmissionError(f"{folder}: no such submission folder")
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise SubmissionError(f"{folder}: no notebook in the submission")
    for path in notebooks:
        parse_notebook(path.name, path.read_bytes())


def _progress(total: int) -> Any:
    done = 0

    def show(learner: str, result: GradeResult) -> None:
        nonlocal done
        done += 1
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r[{bar}] {done}/{total} {learner[:20]:<20}", end="", file=sys.stderr, flush=True)
        if done == total:
            print(file=sys.stderr)

    return show


def _print(payload: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(payload))
        return
    learners = payload.get("learners", {"": payload})
    for learner, result in learners.items():
        prefix = f"{learner}: " if learner else ""
        print(f"{prefix}{result['score']:g} / {result['max_score']:g}")
        for line in result["errors"] + result["flags"]:
            print(f"  ! {line}")


def _write_feedback(grader: Any, result: GradeResult, executed: dict[str, Any], out: Path) -> None:
    from autograder.feedback import released_sources, render

    out.mkdir(parents=True, exist_ok=True)
    release_dir = grader.assignment.course.release_dir
    for name, nb in executed.items():
        scores = {
            gid: (cell.score, cell.max_score) for gid, cell in result.notebooks[name].cells.items()
        }
        page = render(nb, released_sources(release_dir / f"{name}.ipynb"), scores, name)
        (out / f"{name}.html").write_text(page, encoding="utf-8")
        print(out / f"{name}.html")


if __name__ == "__main__":
    sys.exit(main())

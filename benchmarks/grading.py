"""Grade the same 40 submissions with stock `nbgrader autograde` and with grade-many.

    .venv/bin/python -m benchmarks.grading [--assignment courses/<course>/<assignment>] [-n 40]

The submissions are made from a curriculum assignment: right (the source's solutions), wrong
(the release as given), partly right (half the answers left as released) and crashing (a cell
that raises before the answers). Stock nbgrader grades them in one `nbgrader autograde` process,
as an instructor would; grade-many is the command line `python -m autograder grade-many`, whole:
start-up, gradebook, sandboxes and all. Prints both times, whether every score matched, and the
throughput ratio last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.release import generate_release
from autograder.stock import grade_stock
from autograder.variants import make_submissions

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "courses" / "python-numpy-for-ai" / "vital-signs-arrays"


def run_grade_many(source: Path, root: Path, workers: int) -> tuple[float, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "grade-many", str(source), str(root), "--json"]
        + ["--workers", str(workers)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"grade-many failed:\n{done.stderr[-3000:]}")
    learners = json.loads(done.stdout)["learners"]
    return seconds, {name: result["score"] for name, result in learners.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", type=Path, default=DEFAULT)
    parser.add_argument("-n", "--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    source = args.assignment.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        release = Path(tmp) / "release" / source.name
        generate_release(source, release)
        folders = make_submissions(source, release, Path(tmp) / "submitted", args.submissions)
        started = time.perf_counter()
        stock = grade_stock(source, folders, exact=True)
        stock_total = time.perf_counter() - started
        stock_seconds = sum(result.seconds for result in stock.values())
        ours_seconds, ours = run_grade_many(source, Path(tmp) / "submitted", args.workers)
    stock_scores = {name: result.score for name, result in stock.items()}
    mismatched = sorted(n for n in folders if stock_scores.get(n) != ours.get(n))
    print(f"assignment: {source.relative_to(ROOT) if source.is_relative_to(ROOT) else source}")
    print(f"submissions: {len(folders)}")
    print(f"stock_autograde_seconds: {stock_seconds:.2f}")
    print(f"stock_with_setup_seconds: {stock_total:.2f}")
    print(f"grade_many_seconds: {ours_seconds:.2f}")
    print(f"scores_match: {'yes' if not mismatched else 'NO ' + ', '.join(mismatched)}")
    print(f"ratio: {stock_seconds / ours_seconds:.2f}")


if __name__ == "__main__":
    main()

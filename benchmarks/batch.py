"""A batch of 200 submissions through the real queue and `flask lms worker`, next to grade-many.

    .venv/bin/python -m benchmarks.batch [-n 200] [--database-url URL] [--queue-url URL]

The LMS is set up as in production on a fresh instance folder (SQLite and the SQLite queue by
default): the curriculum's first assignment synced and released, a cohort of learners, and
their submissions (right, partly right, wrong, crashing) stored through the submissions
service. The batch is timed from "autograde all" to its last grade, worker start-up included;
grade-many (`python -m autograder grade-many`, start-up included) grades the same notebooks
from folders. Prints both rates, whether every score matched, and last the ratio of the queue's
time to grade-many's (the cost of the queue, leases and grade rows: 1.0 means none).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from autograder.variants import KINDS, learner_notebook
from benchmarks.grading import run_grade_many
from lms import create_app
from lms.extensions import db
from lms.models import (
    Assignment,
    BatchState,
    Cohort,
    CohortAssignment,
    GradingBatch,
    Release,
    utcnow,
)
from lms.queries import marking
from lms.services import catalog, grading, programs, releases, submissions, users

ROOT = Path(__file__).resolve().parents[1]
COURSE, ASSIGNMENT = "python-numpy-for-ai", "vital-signs-arrays"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--submissions", type=int, default=200)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--queue-url", help="default: the SQLite queue in the same folder")
    parser.add_argument("--workers", type=int, default=2, help="worker processes / grade-many")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        instance = Path(tmp)
        config = {
            "DATABASE_URL": args.database_url or f"sqlite:///{instance / 'lms.sqlite3'}",
            "QUEUE_URL": args.queue_url or f"sqlite:///{instance / 'queue.sqlite3'}",
            "DATA_DIR": str(instance / "data"),
            "SECRET_KEY": "benchmark",
        }
        app = create_app(config)
        with app.app_context():
            db.drop_all()
            db.create_all()
            app.extensions["queue"].huey.flush()
            source, names = _submit(args.submissions, instance / "folders")
            env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
            env.update({f"LMS_{key}": str(value) for key, value in config.items()})
            env.update(LMS_INSTANCE_PATH=str(instance), FLASK_APP="wsgi")
            assignment = db.session.scalar(
                sa.select(Assignment).where(Assignment.slug == ASSIGNMENT)
            )
            assert assignment is not None
            started = time.perf_counter()
            batch = grading.create_batch(assignment, None)
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "lms", "worker", "--workers", str(args.workers)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                _wait(batch.id, args.submissions)
                queue_seconds = time.perf_counter() - started
            finally:
                worker.terminate()
                worker.wait()
            queued_scores = {
                names[row.learner.email]: row.raw
                for row in marking.submission_scores(grading.latest_submissions(assignment))
            }
            db.session.remove()  # an open read would block dropping the tables
            db.drop_all()
        many_seconds, many_scores = run_grade_many(source, instance / "folders", args.workers)
    mismatched = sorted(n for n in many_scores if many_scores[n] != queued_scores.get(n))
    count = args.submissions
    print(f"assignment: {COURSE}/{ASSIGNMENT}")
    print(f"submissions: {count}")
    backends = (config["QUEUE_URL"].split(":")[0], config["DATABASE_URL"].split(":")[0])
    print(f"queue: {backends[0]}, database: {backends[1]}")
    print(f"queue_seconds: {queue_seconds:.2f}")
    print(f"grade_many_seconds: {many_seconds:.2f}")
    print(f"queue_submissions_per_minute: {60 * count / queue_seconds:.1f}")
    print(f"grade_many_submissions_per_minute: {60 * count / many_seconds:.1f}")
    print(f"scores_match: {'yes' if not mismatched else 'NO ' + ', '.join(mismatched)}")
    print(f"ratio: {queue_seconds / many_seconds:.2f}")


def set_up() -> tuple[Assignment, Release, Cohort]:
    """Sync and release the assignment; a cohort taking its course, the assignment open."""
    catalog.sync(ROOT / "courses")
    course = programs.get_course(COURSE)
    assignment = next(a for a in course.assignments if a.slug == ASSIGNMENT)
    release = releases.release(assignment)
    cohort = programs.create_cohort(
        programs.create_program("Benchmark", 50000, date.today() + timedelta(days=365)),
        "Batch",
        date.today() - timedelta(days=7),
        date.today() + timedelta(days=90),
        courses=[course],
    )
    scheduled = db.session.scalar(
        sa.select(CohortAssignment).where(
            CohortAssignment.assignment_id == assignment.id,
            CohortAssignment.cohort_id == cohort.id,
        )
    )
    assert scheduled is not None
    scheduled.opens_at = utcnow() - timedelta(days=1)
    db.session.commit()
    return assignment, release, cohort


def _submit(count: int, folders: Path) -> tuple[Path, dict[str, str]]:
    """Sync and release the assignment, enrol `count` learners and store their submissions;
    the same notebooks are written to folders/<learner>/ for grade-many."""
    assignment, release, cohort = set_up()
    source = ROOT / "courses" / COURSE / ASSIGNMENT
    given = Path(current_app.config["DATA_DIR"]) / release.path
    names = {}
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        learner = f"{kind}-{n:03d}"
        user = users.create_user(f"{learner}@bench.example.org", learner, None)
        programs.enrol(user, cohort)
        folder = folders / learner
        folder.mkdir(parents=True)
        uploads = []
        for notebook in sorted(source.glob("*.ipynb")):
            data = learner_notebook(kind, notebook, given / notebook.name, n)
            (folder / notebook.name).write_bytes(data)
            uploads.append(submissions.Upload(notebook.name, data))
        for path in source.iterdir():  # data files, as a learner's folder has them
            if path.is_file() and path.suffix != ".ipynb":
                (folder / path.name).write_bytes(path.read_bytes())
        submissions.submit(user, assignment, cohort, uploads, via="benchmark")
        names[user.email] = learner
    return source, names


def _wait(batch_id: int, total: int) -> None:
    width = 30
    while True:
        db.session.rollback()
        batch = db.session.get(GradingBatch, batch_id)
        assert batch is not None
        db.session.refresh(batch)
        state = grading.progress(batch)
        finished = state.done + state.failed
        bar = "#" * (width * finished // total) + "-" * (width - width * finished // total)
        print(f"\r[{bar}] {finished}/{total}", end="", file=sys.stderr, flush=True)
        if batch.state != BatchState.RUNNING:
            print(file=sys.stderr)
            if state.failed:
                raise SystemExit(f"{state.failed} grading jobs failed")
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()

"""Progress reports on the 50,000-learner program: the dashboard's queries, the CSV export and
the XLSX export, each next to the bare aggregate query they are built on, in the same run.

    .venv/bin/python -m benchmarks.reports [--database-url URL] [--learners 50000]

The database is seeded once with `seed-scale` (about 2 minutes on SQLite) and then reused:
the default is a SQLite file in /tmp/lms-bench-reports/. Prints `name: value` lines, the
ratio CSV export / bare query last. The issue's budgets: dashboard < 0.5 s, CSV < 3 s and
within 3x the bare query, XLSX < 15 s.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from lms import create_app
from lms.extensions import db
from lms.models import Program
from lms.queries import progress
from lms.reporting import exports, report, xlsx_export
from lms.services import scale

DEFAULT_DIR = Path("/tmp/lms-bench-reports")


def timed(action: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` runs, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help=f"default: SQLite in {DEFAULT_DIR}")
    parser.add_argument("--learners", type=int, default=50_000)
    parser.add_argument("--assignments", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{DEFAULT_DIR / 'lms.sqlite3'}"
    app = create_app(
        {
            "SECRET_KEY": "bench",
            "DATABASE_URL": url,
            "DATA_DIR": str(DEFAULT_DIR),
            "QUEUE_URL": f"sqlite:///{DEFAULT_DIR / 'queue.sqlite3'}",
        }
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        program = db.session.scalar(sa.select(Program).where(Program.slug == scale.PROGRAM_SLUG))
        if program is None:
            print(f"seeding {args.learners} learners ...", file=sys.stderr)
            scale.seed(args.learners, args.assignments)
            program = db.session.scalar(
                sa.select(Program).where(Program.slug == scale.PROGRAM_SLUG)
            )
        assert program is not None
        program_id = program.id

        def bare() -> int:
            return len(db.session.execute(sa.select(report.submission_aggregate(program_id))).all())

        def dashboard() -> progress.Dashboard:
            return progress.dashboard(program, "-")

        def csv_export() -> int:
            out = io.BytesIO()
            exports.write_csv(report.program_report(program), out)
            return out.tell()

        def export_xlsx() -> int:
            out = io.BytesIO()
            xlsx_export.write_xlsx(report.program_report(program), out)
            return out.tell()

        learners = report.program_learner_rows(program_id).count
        with app.test_request_context():  # labels in the default language, as the CLI
            bare_seconds = timed(bare, args.runs)
            dashboard_seconds = timed(dashboard, args.runs)
            csv_seconds = timed(csv_export, args.runs)
            xlsx_seconds = timed(export_xlsx, 1)
        db.engine.dispose()

    print(f"backend: {sa.make_url(url).get_backend_name()}")
    print(f"learner_rows: {learners}")
    print(f"bare_aggregate_seconds: {bare_seconds:.3f}")
    print(f"dashboard_queries_seconds: {dashboard_seconds:.3f}")
    print(f"csv_export_seconds: {csv_seconds:.3f}")
    print(f"xlsx_export_seconds: {xlsx_seconds:.3f}")
    print(f"xlsx_over_bare_ratio: {xlsx_seconds / bare_seconds:.2f}")
    print(f"csv_over_bare_ratio: {csv_seconds / bare_seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

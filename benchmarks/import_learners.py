"""Import 50,000 learners from CSV into a cohort, against a naive row-by-row ORM import.

    .venv/bin/python -m benchmarks.import_learners [--rows 50000] [--database-url URL]

Prints `name: value` lines; the last is the speed-up over the naive import measured in the
same run (per row). The issue's budget is 50,000 rows in under 60 s.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from lms import create_app
from lms.extensions import db
from lms.models import Base, Enrolment, Organisation, OrganisationKind, User
from lms.services import learner_import, programs


def learner_csv(first: int, count: int, organisations: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "organisation"])
    for n in range(first, first + count):
        writer.writerow(
            [
                f"learner{n:06d}@bench.example.org",
                f"Learner {n}",
                organisations[n % len(organisations)],
            ]
        )
    return out.getvalue().encode()


def naive_import(cohort_id: int, data: bytes) -> None:
    """What one writes first: look each learner up, add, flush, one row at a time."""
    reader = csv.DictReader(io.StringIO(data.decode()))
    orgs = {o.name: o.id for o in db.session.scalars(sa.select(Organisation))}
    for row in reader:
        user = db.session.scalar(sa.select(User).where(User.email == row["email"]))
        if user is None:
            user = User(
                email=row["email"], name=row["name"], organisation_id=orgs[row["organisation"]]
            )
            db.session.add(user)
            db.session.flush()
        exists = db.session.scalar(
            sa.select(Enrolment.id).where(
                Enrolment.user_id == user.id, Enrolment.cohort_id == cohort_id
            )
        )
        if exists is None:
            db.session.add(Enrolment(user_id=user.id, cohort_id=cohort_id))
            db.session.flush()
    db.session.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--baseline-rows", type=int, default=3_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        app = create_app(
            {
                "SECRET_KEY": "bench",
                "DATABASE_URL": url,
                "DATA_DIR": tmp,
                "QUEUE_URL": f"sqlite:///{Path(tmp) / 'q.sqlite3'}",
            }
        )
        with app.app_context():
            Base.metadata.drop_all(db.engine)
            Base.metadata.create_all(db.engine)
            names = [
                programs.create_organisation(f"Partner {n}", OrganisationKind.COMPANY).name
                for n in range(8)
            ]
            program = programs.create_program("Bench", 50_000, date(2030, 1, 1))
            cohort = programs.create_cohort(program, "Big", date(2026, 1, 1), date(2026, 12, 31))
            baseline_cohort = programs.create_cohort(
                program, "Baseline", date(2026, 1, 1), date(2026, 12, 31)
            )
            data = learner_csv(0, args.rows, names)
            baseline_data = learner_csv(10_000_000, args.baseline_rows, names)

            start = time.perf_counter()
            naive_import(baseline_cohort.id, baseline_data)
            naive_seconds = time.perf_counter() - start

            start = time.perf_counter()
            report = learner_import.import_learners(cohort, data)
            import_seconds = time.perf_counter() - start
            assert report.enrolled == args.rows, report

            start = time.perf_counter()
            again = learner_import.import_learners(cohort, data)
            reimport_seconds = time.perf_counter() - start
            assert again.enrolled == 0 and again.users_created == 0, again
            Base.metadata.drop_all(db.engine)
            db.engine.dispose()

    naive_rate = args.baseline_rows / naive_seconds
    rate = args.rows / import_seconds
    print(f"backend: {sa.make_url(url).get_backend_name()}")
    print(f"rows: {args.rows}")
    print(f"import_seconds: {import_seconds:.2f}")
    print(f"reimport_seconds: {reimport_seconds:.2f}")
    print(f"rows_per_second: {rate:.0f}")
    print(f"naive_rows_per_second: {naive_rate:.0f}")
    print(f"budget_used_ratio: {import_seconds / 60 * 50_000 / args.rows:.3f}")
    print(f"speedup_vs_naive_ratio: {rate / naive_rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

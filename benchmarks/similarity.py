"""The similarity section of the insight page on a cohort larger than the demo's (150 learners
by default; the demo's spring cohort has 140): its server work cold, cached, just after a new
submission (result stale, each unchanged file's answers still cached), the whole page through
the test client cold and cached, and the old algorithm (every pair of whole submissions,
reference answers included), interleaved in the same run.

    .venv/bin/python -m benchmarks.similarity [-n 150] [--runs 5]

Set up as in production on a fresh instance folder (SQLite): the curriculum's first assignment
synced and released, a cohort, and its learners' submissions stored through the submissions
service: 40% hand in the reference solution (as the demo's do), 10% each partly right, as
released and crashing (the demo's kinds), 30% answers of their own (the reference skeleton
with lines of their own in every answer), among whom every fourth copies the one before, renamed.
Every file differs (a learner's notebook metadata), as real learners' files do, so no work is
shared between identical files. Prints what each finds, the median times, and the ratios last:
old / cached, old / after a new submission, cold / old.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from autograder.variants import learner_notebook
from lms import create_app
from lms.extensions import db
from lms.models import Assignment, Cohort, CohortAssignment, Role, Submission, utcnow
from lms.queries import marking, similar_submissions, similarity
from lms.services import catalog, programs, releases, submissions, users
from lms.storage import blobs, storage

ROOT = Path(__file__).resolve().parents[1]
COURSE, ASSIGNMENT = "python-numpy-for-ai", "vital-signs-arrays"
PASSWORD = "benchmark-password"

# Lines a learner of their own might add to an answer ({k}: a number of their own).
OWN_LINES = [
    "checked_{k} = True",
    "limit = {k} * 2",
    "scale = 1.0 / ({k} + 1)",
    "steps = list(range({k}))",
    "label = 'step {k}'",
    "if {k} > 5:\n        print('large', {k})",
    "names = ['a{k}', 'b{k}']",
    "tmp = [i * {k} for i in range(3)]",
    "total = sum(range({k}))",
    "assert {k} >= 0, 'negative'",
    "cache = {{'k': {k}}}",
    "while {k} < 0:\n        break",
]


def own_answers(notebook: dict[str, Any], rng: random.Random) -> None:
    """Lines of the learner's own after the first line of every answer cell."""
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("solution"):
            continue
        lines = "".join(cell["source"]).splitlines(keepends=True)
        extra = [
            "    " + rng.choice(OWN_LINES).format(k=rng.randrange(40)) + "\n" for _ in range(6)
        ]
        cell["source"] = "".join(lines[:1] + extra + lines[1:])


def kind_of(n: int) -> str:
    """Learner n's kind of answers, by the mix the module's docstring describes."""
    share = n % 10
    if share < 4:
        return "right"
    return ("partly", "wrong", "crashing")[share - 4] if share < 7 else "own"


def learner_files(
    n: int, source: Path, release: bytes, rng: random.Random, copied: dict[str, Any] | None
) -> dict[str, Any]:
    """Learner n's notebook (parsed): of its kind, or a renamed copy of `copied`."""
    if copied is not None:
        renamed = json.dumps(copied).replace("tmp", "scratch").replace("names", "ns")
        return dict(json.loads(renamed))
    kind = kind_of(n)
    data = learner_notebook("right" if kind == "own" else kind, source, release, n)
    notebook: dict[str, Any] = json.loads(data)
    if kind == "own":
        own_answers(notebook, rng)
    return notebook


def setup(app: Flask, count: int) -> tuple[int, int]:
    """Sync, release, enrol `count` learners and store their submissions: (assignment, cohort)."""
    catalog.sync(ROOT / "courses")
    course = programs.get_course(COURSE)
    assignment = next(a for a in course.assignments if a.slug == ASSIGNMENT)
    release = releases.release(assignment)
    cohort = programs.create_cohort(
        programs.create_program("Benchmark", 50000, date.today() + timedelta(days=365)),
        "Similarity",
        date.today() - timedelta(days=7),
        date.today() + timedelta(days=90),
        courses=[course],
    )
    scheduled = db.session.scalar(sa.select(CohortAssignment))
    assert scheduled is not None
    scheduled.opens_at = utcnow() - timedelta(days=1)
    db.session.commit()
    source = ROOT / "courses" / COURSE / ASSIGNMENT
    rng = random.Random(2026)
    previous: dict[str, dict[str, Any]] = {}  # the last own learner's notebooks
    own = 0
    for n in range(count):
        user = users.create_user(f"learner{n:03d}@bench.example.org", f"Learner {n:03d}", None)
        programs.enrol(user, cohort)
        copies = kind_of(n) == "own" and own % 4 == 3
        own += kind_of(n) == "own"
        uploads = []
        for path in sorted(source.glob("*.ipynb")):
            given = storage().read(f"{release.path}/{path.name}")
            notebook = learner_files(
                n, path, given, rng, previous.get(path.name) if copies else None
            )
            if kind_of(n) == "own":
                previous[path.name] = notebook
            notebook["metadata"]["benchmark_learner"] = n  # every file differs, as in life
            uploads.append(submissions.Upload(path.name, json.dumps(notebook).encode()))
        submissions.submit(user, assignment, cohort, uploads, via="benchmark")
    return assignment.id, cohort.id


def page_client(app: Flask, assignment: Assignment) -> FlaskClient:
    """A client signed in as the course's instructor."""
    instructor = users.create_user("instructor@bench.example.org", "Instructor", PASSWORD)
    users.grant_role(instructor, Role.INSTRUCTOR, course=assignment.course)
    client = app.test_client()
    signed_in = client.post("/login", data={"email": instructor.email, "password": PASSWORD})
    assert signed_in.status_code == 302, signed_in.status_code
    return client


def old_flags(assignment: Assignment, cohort: Cohort) -> list[similarity.Match]:
    """The algorithm the page used before: every pair of whole latest submissions, reference
    answers and common ones included, the first 200 pairs kept."""
    subs = list(
        db.session.scalars(
            sa.select(Submission).where(
                Submission.id.in_(marking.latest_attempt_ids(assignment.id, cohort.id))
            )
        )
    )
    loaded = similar_submissions._Releases(assignment)  # the page's own loaders, as it called them
    prints = [
        similarity.fingerprint(s.id, similar_submissions._notebooks(s), loaded.of(s.version))
        for s in subs
    ]
    return similarity.flag(prints)[:200]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--learners", type=int, default=150)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        instance = Path(tmp)
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{instance / 'lms.sqlite3'}",
                "QUEUE_URL": f"sqlite:///{instance / 'queue.sqlite3'}",
                "DATA_DIR": str(instance / "data"),
                "SECRET_KEY": "benchmark",
                "WTF_CSRF_ENABLED": False,  # the client below signs in without reading a form
            }
        )
        with app.app_context():
            db.create_all()
            print(f"storing {args.learners} submissions ...", file=sys.stderr)
            assignment_id, cohort_id = setup(app, args.learners)
            found_assignment = db.session.get(Assignment, assignment_id)
            found_cohort = db.session.get(Cohort, cohort_id)
            assert found_assignment is not None and found_cohort is not None
            assignment, cohort = found_assignment, found_cohort

            def forget() -> None:
                app.extensions.pop("lms.similarity", None)
                db.session.expire_all()

            def page() -> similar_submissions.SimilarityPage:
                return similar_submissions.similarity_page(assignment, cohort)

            client = page_client(app, assignment)
            url = f"/teach/courses/{COURSE}/assignments/{ASSIGNMENT}/insight?cohort={cohort.slug}"

            def whole_page() -> None:
                response = client.get(url)
                assert response.status_code == 200, response.status_code

            def resubmit() -> None:
                """Learner 0 hands in again (a file of new bytes): the result is stale."""
                learner = users.find_by_email("learner000@bench.example.org")
                assert learner is not None
                latest = submissions.latest_attempt(learner.id, assignment.id, cohort.id)
                assert latest is not None
                name, digest = next(iter(latest.files.items()))
                notebook = json.loads(blobs.get(digest))
                notebook["metadata"]["benchmark_attempt"] = latest.attempt + 1
                upload = submissions.Upload(name, json.dumps(notebook).encode())
                submissions.submit(learner, assignment, cohort, [upload], via="benchmark")
                db.session.expire_all()

            old = old_flags(assignment, cohort)
            forget()
            work = page().work
            # Interleaved, so that a busy machine slows each alike.
            steps: list[tuple[str, Callable[[], None], Callable[[], object]]] = [
                ("old", forget, lambda: old_flags(assignment, cohort)),
                ("cold", forget, page),
                ("cached", db.session.expire_all, page),
                ("after_new_submission", resubmit, page),
                ("whole_page_cold", forget, whole_page),
                ("whole_page_cached", db.session.expire_all, whole_page),
            ]
            times: dict[str, list[float]] = {name: [] for name, _, _ in steps}
            for _ in range(args.runs):
                for name, before, action in steps:
                    before()
                    start = time.perf_counter()
                    action()
                    times[name].append(time.perf_counter() - start)
            db.engine.dispose()
    seconds = {name: statistics.median(values) for name, values in times.items()}

    print(f"learners: {args.learners}")
    print(f"old_pairs_listed: {len(old)}")
    print(f"old_pairs_at_100_percent: {sum(1 for m in old if m.score == 1.0)}")
    print(f"clusters: {len(work.clusters)}")
    print(f"learners_in_clusters: {sum(len(c.members) for c in work.clusters)}")
    print(f"answers_left_out_as_reference: {work.left_out_reference}")
    print(f"answers_left_out_as_shared: {work.left_out_shared} (minimum {work.shared_minimum})")
    for name, value in seconds.items():
        print(f"{name}_seconds: {value:.4f}")
    print(f"old_over_cached_ratio: {seconds['old'] / seconds['cached']:.1f}")
    after_new = seconds["after_new_submission"]
    print(f"old_over_after_new_submission_ratio: {seconds['old'] / after_new:.2f}")
    print(f"cold_over_old_ratio: {seconds['cold'] / seconds['old']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The coordinator's program dashboard and a cohort's gradebook (/coordinate/cohorts/<slug>) on
the demo data: server time of the first load in a fresh process, and of later loads, each
against the coordinator's plain "My programs" page timed the same way in the same run. Then,
in the same run, what the pages did before against what they do now: the dashboard's two
charts drawn with matplotlib as SVG (the old way, kept here only as the baseline) against
lms.reporting.svg_charts, and the gradebook's old queries (every learner's attempts and the
whole program's funnels) against one page's.

    .venv/bin/python -m benchmarks.dashboard [--runs 5]

It sets up its own instance in /tmp/lms-bench-dashboard once (`flask lms demo`, `lms release`,
`lms demo-history`: about a minute) and reuses it. Each first load is timed in a new Python
process that has created the app and signed in, as a fresh gunicorn worker would be. Prints
`name: value` lines, the ratios last. The issue's budget: each page under 0.3 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path("/tmp/lms-bench-dashboard")
PROGRAM = "gwangju-ai-school"
COHORT = "gwangju-ai-school-spring"  # the demo cohort with graded work
PAGES = {
    "home": "/coordinate/",
    "dashboard": f"/coordinate/programs/{PROGRAM}",
    "gradebook": f"/coordinate/cohorts/{COHORT}",
}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(FLASK_APP="wsgi", LMS_INSTANCE_PATH=str(INSTANCE), PYTHONPATH=str(ROOT))
    return env


def set_up() -> None:
    """The demo instance, made once (its presence is the marker)."""
    if (INSTANCE / "ready").exists():
        return
    INSTANCE.mkdir(parents=True, exist_ok=True)
    print("loading the demo data (once) ...", file=sys.stderr)
    for args in (("db", "upgrade"), ("lms", "demo"), ("lms", "release"), ("lms", "demo-history")):
        subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=ROOT,
            env=environment(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    (INSTANCE / "ready").touch()


def child(*args: str) -> dict[str, float]:
    """Run this script's measuring side in a new process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.dashboard", *args],
        cwd=ROOT,
        env=environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    answer: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure_page(path: str, warm_runs: int) -> dict[str, float]:
    """In this (fresh) process: sign in as the demo coordinator, then the page's first load
    and the median of later ones."""
    from lms import create_app
    from lms.services import demo

    app = create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    client = app.test_client()
    signed_in = client.post(
        "/login", data={"email": demo.DEMO_USERS["coordinator"], "password": demo.DEMO_PASSWORD}
    )
    assert signed_in.status_code == 302, signed_in.status_code

    def load() -> None:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    first = timed(load)
    later = statistics.median(timed(load) for _ in range(warm_runs))
    return {"first": first, "later": later}


def old_charts(board: object, labels: object) -> None:
    """The dashboard's charts as the page drew them before: matplotlib figures saved as SVG."""
    import matplotlib

    from lms.queries import progress
    from lms.reporting import charts

    assert isinstance(board, progress.Dashboard) and isinstance(labels, charts.CompletionsLabels)
    f = board.forecast
    t = board.totals
    figures = [
        charts.completions(
            board.weekly,
            start=board.start,
            today=board.today,
            target=f.target,
            target_date=f.target_date,
            forecast_date=f.forecast_date,
            labels=labels,
        ),
        charts.funnel(
            [
                ("Target", f.target),
                ("Enrolled", t.enrolled),
                ("Active", t.active),
                ("Completed", t.completed),
                ("Certified", t.certified),
            ],
            "Learners at each stage",
        ),
    ]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lms"}):
        for figure in figures:
            figure.savefig(io.StringIO(), format="svg", metadata={"Date": None})


def new_charts(board: object, labels: object) -> None:
    from lms.queries import progress
    from lms.reporting import svg_charts

    assert isinstance(board, progress.Dashboard)
    assert isinstance(labels, svg_charts.CompletionsLabels)
    f = board.forecast
    t = board.totals
    svg_charts.completions(
        board.weekly,
        start=board.start,
        today=board.today,
        target=f.target,
        target_date=f.target_date,
        forecast_date=f.forecast_date,
        labels=labels,
    )
    svg_charts.funnel(
        [
            ("Target", f.target),
            ("Enrolled", t.enrolled),
            ("Active", t.active),
            ("Completed", t.completed),
            ("Certified", t.certified),
        ],
        "Learners at each stage",
    )


def measure_charts(way: str) -> dict[str, float]:
    """In this (fresh) process: the two charts drawn `way` ("old" or "new"), first (imports
    included) and later."""
    from lms import create_app
    from lms.queries import directory, progress
    from lms.reporting.svg_charts import CompletionsLabels

    app = create_app()
    with app.test_request_context():
        program = directory.program_by_slug(PROGRAM)
        assert program is not None
        board = progress.dashboard(program, "No organisation")
        labels = CompletionsLabels(
            title="Completions against the target",
            completed="Completed (cumulative)",
            straight_line="Straight line to the target",
            forecast="Forecast",
            target=f"Target {board.forecast.target:,}",
            learners="Learners",
        )
        draw = old_charts if way == "old" else new_charts
        first = timed(lambda: draw(board, labels))
        later = statistics.median(timed(lambda: draw(board, labels)) for _ in range(5))
    return {"first": first, "later": later}


def measure_gradebook_queries(runs: int) -> dict[str, float]:
    """The gradebook page's queries the old way (every learner's attempts, the whole program's
    funnels for one cohort's row) and the new (one page's attempts, one cohort's funnel), in
    the same process, alternating."""
    from lms import create_app
    from lms.queries import directory, gradebook, progress

    app = create_app()
    with app.test_request_context():
        cohort = directory.cohort_by_slug(COHORT)
        assert cohort is not None

        def old() -> None:
            book = gradebook.gradebook(cohort)
            rows = book.sort("name")
            assert rows[:50]
            funnels, _organisations = progress.breakdowns(cohort.program_id, "No organisation")
            assert [f for f in funnels if f.slug == cohort.slug]

        def new() -> None:
            page = gradebook.gradebook_page(cohort, "name", False, 1, 50)
            assert page.rows
            progress.cohort_funnel(cohort)

        old()  # statements compiled and cached for both
        new()
        olds, news = [], []
        for _ in range(runs):
            olds.append(timed(old))
            news.append(timed(new))
    return {"old": statistics.median(olds), "new": statistics.median(news)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args()

    if args.measure:
        kind, _, what = args.measure.partition(":")
        if kind == "page":
            answer = measure_page(PAGES[what], args.runs)
        elif kind == "charts":
            answer = measure_charts(what)
        else:
            answer = measure_gradebook_queries(args.runs)
        print(json.dumps(answer))
        return 0

    set_up()
    first: dict[str, list[float]] = {name: [] for name in PAGES}
    later: dict[str, list[float]] = {name: [] for name in PAGES}
    charts: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.runs):
        for name in PAGES:  # interleaved, so that a busy moment of the machine hits all
            found = child("--measure", f"page:{name}", "--runs", "5")
            first[name].append(found["first"])
            later[name].append(found["later"])
        for way in charts:
            charts[way].append(child("--measure", f"charts:{way}")["first"])
    queries = child("--measure", "gradebook-queries", "--runs", str(max(args.runs, 10)))

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(f"runs: {args.runs}")
    for name in PAGES:
        print(f"{name}_first_load_seconds: {median(first[name]):.3f}")
    for name in PAGES:
        print(f"{name}_later_load_seconds: {median(later[name]):.4f}")
    print(f"old_matplotlib_charts_first_seconds: {median(charts['old']):.3f}")
    print(f"svg_charts_first_seconds: {median(charts['new']):.4f}")
    print(f"old_gradebook_queries_seconds: {queries['old']:.4f}")
    print(f"gradebook_page_queries_seconds: {queries['new']:.4f}")
    home_first, home_later = median(first["home"]), median(later["home"])
    for name in ("dashboard", "gradebook"):
        print(f"{name}_first_over_home_first_ratio: {median(first[name]) / home_first:.2f}")
        print(f"{name}_later_over_home_later_ratio: {median(later[name]) / home_later:.2f}")
    print(f"old_over_new_gradebook_queries_ratio: {queries['old'] / queries['new']:.2f}")
    print(f"old_over_new_charts_first_ratio: {median(charts['old']) / median(charts['new']):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

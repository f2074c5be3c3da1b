"""The deadline burst: the last hour before a shared due time, replayed against `make run`'s
stack, each learner's upload timed until the instant feedback shows on their page.

    .venv/bin/python -m benchmarks.deadline [--learners 1200] [--share 0.25]
        [--hour-seconds 120] [--workers 2] [--database-url URL] [--queue-url URL]
    .venv/bin/python -m benchmarks.deadline --learners 30 --hour-seconds 15   # under a minute

On a fresh instance (SQLite and the SQLite queue in a temporary folder by default) the
curriculum's first assignment is synced and released and a cohort made, by benchmarks/batch.py's
set-up; `--learners` are enrolled, and the assignment is due at the end of the replayed hour,
with instant feedback on (its course.toml says `instant_feedback = true`). gunicorn (wsgi:app,
2 workers) and `flask lms worker --workers N` run as `make run` starts them; the lab hub is
left out (nothing here goes through it).

Arrivals: `--share` of the cohort (default a quarter) submits in the last hour, once each; the
rest submitted earlier or not at all. Their moments are drawn (seeded) from a rate that grows
exponentially toward the due time with a time constant of a quarter of the hour: half of them
come in its last 10 minutes, and the rate at the due time is four times the hour's average.
The hour is compressed into `--hour-seconds` (default 120 s: 30 times faster), so the 2-core
stack meets the rates of a cohort 30 times larger, for a shorter time.

Each learner signs in over HTTP before the burst (the login form with its CSRF token; the login
throttle counts failed sign-ins only, so no setting needs relaxing) and has the assignment page
open. At their moment they POST the upload form with one of the notebook's variants (right,
partly right, wrong, crashing: autograder.variants), follow the redirect to the submission
page, poll its status.json every 2 s as submission.js does, and reload the page when grading
ends. Upload→feedback runs from sending the upload to that reload showing the test results. A
submission without feedback (refused, grading failed, none within `--timeout`) is an error,
counted and printed; so are failed polls (http_errors), which the page would retry.

First, on the idle stack: warm-up submissions (each worker process starts its grader), then
three lone ones one after another, timed the same way: lone_seconds is their median. Printed
after the burst: p50/p95/max seconds; from the grading jobs' rows, stored→graded p95 and what
the capacity model says it should have been (a first-come-first-served queue on the worker
processes at the measured seconds per submission, fed the moments the jobs were queued); the
worker's seconds per submission while submissions queued up (claim to stored result, plus the
pause before the next claim, over the jobs that waited) and submissions per minute per core
(cores: the worker processes, at most os.cpu_count()); the worker cores that model needs for
`--plan-learners` with the same arrival profile in a real hour, so that stored→graded p95
plus the 2-second poll stays within `--target-p95`; last, p50 over lone_seconds.

Over 400 lines on purpose: the instance, the stack, the learners' browsers and the capacity
model are one measurement, and the model is checked against the run that measured it.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from autograder.variants import KINDS, learner_notebook
from benchmarks.batch import ASSIGNMENT, COURSE, ROOT
from benchmarks.batch import set_up as set_up_course
from lms import create_app
from lms.extensions import db
from lms.lab.hub import free_port
from lms.models import Assignment, CohortAssignment, GradingJob, JobState, User, utcnow
from lms.services import deadlines, programs, users
from lms.storage import storage

HOUR = 3600.0
RISE = 0.25  # the time constant of the rising rate, as a share of the hour
POLL_SECONDS = 2.0  # submission.js
WEB_WORKERS = 2  # gunicorn, as `make run`
LONE = 3
PASSWORD = "deadline-benchmark-password"
DOMAIN = "deadline.example.org"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SUBMIT_KEY_RE = re.compile(r'name="submit_key" type="hidden" value="([^"]+)"')
STATE_RE = re.compile(r'data-state="([a-z]*)"')
SUBMISSION_RE = re.compile(r"/learn/submissions/(\d+)$")
FEEDBACK_SHOWN = "Tests total"  # the instant test results' last row (learners read English)
WAITING = ("queued", "running")


@dataclass
class Browser:
    """A signed-in learner with the assignment page open and their notebook ready."""

    http: requests.Session
    csrf: str
    key: str
    notebook: bytes


@dataclass
class Job:
    worker: str
    queued: float
    started: float
    finished: float


@dataclass
class Outcome:
    submission_id: int | None
    seconds: float | None
    error: str = ""


class Progress:
    """Counts shared by the learners' threads, shown on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.sent, self.shown, self.failed = total, 0, 0, 0
        self.late = 0.0  # the most an upload was sent after its moment
        self.lock = threading.Lock()

    def finished(self, ok: bool) -> None:
        with self.lock:
            self.shown += ok
            self.failed += not ok

    def sending(self, late: float) -> None:
        with self.lock:
            self.sent += 1
            self.late = max(self.late, late)

    def line(self, elapsed: float, hour: float) -> str:
        waiting = self.sent - self.shown - self.failed
        return (
            f"\rburst {elapsed:5.0f}/{hour:.0f} s: uploaded {self.sent}/{self.total}, "
            f"feedback {self.shown}, waiting {waiting}, errors {self.failed}   "
        )


def main() -> None:
    args = parse_args()
    # A plain `kill` stops the stack too (the finally blocks run), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    submitting = min(round(args.learners * args.share), args.learners - reserved(args))
    if submitting < 1:
        raise SystemExit(f"too few learners: {reserved(args)} of them submit before the hour")
    arrivals = arrival_times(submitting, args.hour_seconds, random.Random(18))
    with tempfile.TemporaryDirectory(prefix="bench-deadline-") as tmp:
        instance = Path(tmp)
        config = instance_config(args, instance)
        app = create_app(config)
        with app.app_context():
            db.drop_all()
            db.create_all()
            app.extensions["queue"].huey.flush()
            page, notebook_name, learners = set_up(args.learners)
        with stack(environment(config, instance), instance, args.workers) as running:
            browsers = sign_in_all(running, page, learners[: submitting + reserved(args)])
            send = Sender(running, page, notebook_name, args.timeout)
            lone, idle_errors = idle_runs(send, browsers[submitting:], args.workers)
            with app.app_context():
                set_deadline(args.hour_seconds)
            outcomes = burst(send, list(zip(arrivals, browsers[:submitting], strict=True)), args)
        with app.app_context():
            jobs = graded_jobs([o.submission_id for o in outcomes if o.submission_id])
            db.session.remove()  # an open read would block dropping the tables
            db.drop_all()
    errors = {"idle_stack_errors": idle_errors, "http_errors": send.http_errors}
    report(args, config, arrivals, lone, outcomes, jobs, errors)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=1200, help="the cohort")
    parser.add_argument("--share", type=float, default=0.25, help="who submit in the last hour")
    parser.add_argument("--hour-seconds", type=float, default=120.0, help="the replayed hour")
    default_workers = int(os.environ.get("LMS_WORKERS", "2"))
    parser.add_argument("--workers", type=int, default=default_workers, help="worker processes")
    parser.add_argument("--timeout", type=float, default=600.0, help="per submission, seconds")
    parser.add_argument("--plan-learners", type=int, default=50000, help="capacity model")
    parser.add_argument("--target-p95", type=float, default=60.0, help="capacity model, seconds")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--queue-url", help="default: the SQLite queue in the same folder")
    return parser.parse_args()


def reserved(args: argparse.Namespace) -> int:
    """Learners who submit before the last hour: the warm-up (two per worker) and the lone."""
    return 2 * int(args.workers) + LONE


def instance_config(args: argparse.Namespace, instance: Path) -> dict[str, Any]:
    return {
        "DATABASE_URL": args.database_url or f"sqlite:///{instance / 'lms.sqlite3'}",
        "QUEUE_URL": args.queue_url or f"sqlite:///{instance / 'queue.sqlite3'}",
        "DATA_DIR": str(instance / "data"),
        "SECRET_KEY": "benchmark",
        "WORKERS": args.workers,
    }


def environment(config: dict[str, Any], instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update({f"LMS_{key}": str(value) for key, value in config.items()})
    # nbgrader shells out to tools in the venv.
    path = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(LMS_INSTANCE_PATH=str(instance), FLASK_APP="wsgi", PATH=path)
    return env


# --- The instance ---------------------------------------------------------------------------


def set_up(count: int) -> tuple[str, str, list[tuple[str, bytes]]]:
    """The released assignment and a cohort of `count` learners: the assignment page's path,
    the notebook's file name, and each learner's (email, notebook as they would upload it)."""
    assignment, _release, cohort = set_up_course()
    source = ROOT / "courses" / COURSE / ASSIGNMENT
    assert assignment.current_release is not None
    notebook = next(source.glob("*.ipynb"))
    given = storage().read(f"{assignment.current_release.path}/{notebook.name}")
    answered = {kind: learner_notebook(kind, notebook, given) for kind in KINDS}
    learners = []
    for n in range(count):
        email = f"learner-{n:05d}@{DOMAIN}"
        programs.enrol(users.create_user(email, f"Learner {n}", None), cohort)
        learners.append((email, answered[KINDS[n % len(KINDS)]]))
        if n % 100 == 99 or n == count - 1:
            print(f"\rsetting up: {n + 1}/{count} learners", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    # One scrypt hash for all (1,200 would take minutes): the benchmark's own shortcut.
    db.session.execute(
        sa.update(User)
        .where(User.email.like(f"%@{DOMAIN}"))
        .values(password_hash=users.hash_password(PASSWORD))
    )
    db.session.commit()
    page = f"/learn/cohorts/{cohort.slug}/courses/{COURSE}/{ASSIGNMENT}/"
    return page, notebook.name, learners


def set_deadline(hour_seconds: float) -> None:
    """Due at the end of the replayed hour, no late penalty."""
    scheduled = db.session.scalar(
        sa.select(CohortAssignment).join(Assignment).where(Assignment.slug == ASSIGNMENT)
    )
    assert scheduled is not None
    due = utcnow() + timedelta(seconds=hour_seconds + 5)
    deadlines.set_policy(scheduled, due_at=due, penalty_per_day=0, penalty_cap=0, cutoff_at=None)
    db.session.remove()


def graded_jobs(submission_ids: list[int]) -> list[Job]:
    """The finished grading jobs of these submissions, moments in seconds from the first
    one queued."""
    rows = db.session.execute(
        sa.select(
            GradingJob.leased_by,
            GradingJob.queued_at,
            GradingJob.started_at,
            GradingJob.finished_at,
        ).where(GradingJob.submission_id.in_(submission_ids), GradingJob.state == JobState.DONE)
    ).all()
    if not rows:
        return []
    first = min(queued for _token, queued, _started, _finished in rows)
    return [
        Job(
            (token or "").rsplit(":", 1)[0],  # host:pid:job, by lms.worker.run_job
            (queued - first).total_seconds(),
            (started - first).total_seconds(),
            (finished - first).total_seconds(),
        )
        for token, queued, started, finished in rows
        if started and finished
    ]


def seconds_per_job(jobs: list[Job]) -> float:
    """A worker process's seconds per submission while submissions queue up: from its claim
    to the stored result, plus the pause before the next claim when the next was waiting;
    over the jobs that waited for a free worker (over a second: Huey looks at an idle queue
    once a second), or all of them where none did."""
    busy = [job for job in jobs if job.started - job.queued > 1.0] or jobs
    seconds = 0.0
    for worker in {job.worker for job in busy}:
        mine = sorted((job for job in busy if job.worker == worker), key=lambda job: job.started)
        seconds += sum(job.finished - job.started for job in mine)
        seconds += sum(b.started - a.finished for a, b in pairwise(mine) if b.queued < a.finished)
    return seconds / len(busy)


# --- make run's stack -----------------------------------------------------------------------


@dataclass
class Stack:
    base: str
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

    def ended(self) -> bool:
        return any(process.poll() is not None for process in self.processes.values())

    def check(self) -> None:
        """Stop the benchmark, saying so, if a process of the stack has ended."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = self.logs / f"{name}.log"
                tail = log.read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} stopped (exit {process.returncode}):\n{tail}")


@contextmanager
def stack(env: dict[str, str], logs: Path, workers: int) -> Iterator[Stack]:
    """gunicorn and the grading worker, as `make run` starts them; stopped whatever happens."""
    port = free_port()
    commands = {
        "gunicorn": ["gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS)]
        + ["wsgi:app"],
        "worker": ["flask", "lms", "worker", "--workers", str(workers)],
    }
    running = Stack(f"http://127.0.0.1:{port}", {}, logs)
    try:
        for name, command in commands.items():
            running.processes[name] = start(command, env, logs / f"{name}.log")
        wait_healthy(running)
        yield running
    finally:
        for process in running.processes.values():
            stop(process)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """The process and everything it started (its own process group)."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_healthy(running: Stack) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(running.base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        running.check()
        if time.monotonic() > deadline:
            raise SystemExit(f"the stack did not answer; see the logs in {running.logs}")
        time.sleep(0.3)


# --- Learners ---------------------------------------------------------------------------


def sign_in_all(running: Stack, page: str, learners: list[tuple[str, bytes]]) -> list[Browser]:
    """Every learner signed in with the assignment page open, a few browsers at a time."""
    done = Progress(len(learners))

    def one(learner: tuple[str, bytes]) -> Browser:
        browser = sign_in(running.base, page, *learner)
        done.finished(True)
        return browser

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(one, learner) for learner in learners]
        while wait(futures, timeout=1).not_done:
            print(f"\rsigning in: {done.shown}/{done.total}", end="", file=sys.stderr, flush=True)
            running.check()
    print(f"\rsigning in: {done.shown}/{done.total}", file=sys.stderr)
    return [future.result() for future in futures]


def sign_in(base: str, page: str, email: str, notebook: bytes) -> Browser:
    http = requests.Session()
    csrf = CSRF_RE.search(http.get(base + "/login", timeout=60).text)
    assert csrf is not None, "no CSRF token on the sign-in page"
    form = {"csrf_token": csrf.group(1), "email": email, "password": PASSWORD}
    answer = http.post(base + "/login", data=form, allow_redirects=False, timeout=60)
    if answer.status_code != 302:
        raise SystemExit(f"sign-in of {email} failed: {answer.status_code}")
    html = http.get(base + page, timeout=60).text
    upload_form = html[html.find("lms-upload") :]  # the page has lab forms with keys too
    csrf, key = CSRF_RE.search(upload_form), SUBMIT_KEY_RE.search(upload_form)
    assert csrf and key, "no upload form on the assignment page"
    return Browser(http, csrf.group(1), key.group(1), notebook)


class Sender:
    """Uploads a learner's notebook and waits, as their browser does, for the feedback."""

    def __init__(self, running: Stack, page: str, notebook_name: str, timeout: float) -> None:
        self.running, self.base = running, running.base
        self.page, self.name, self.timeout = page, notebook_name, timeout
        self.http_errors = 0  # failed polls (the page retries them); counted, not hidden
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # the benchmark is ending early: stop waiting

    def __call__(self, browser: Browser) -> Outcome:
        started = time.perf_counter()
        try:
            answer = browser.http.post(
                self.base + self.page,
                data={"csrf_token": browser.csrf, "submit_key": browser.key},
                files={"notebook": (self.name, browser.notebook, "application/x-ipynb+json")},
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            return Outcome(None, None, f"upload failed: {type(e).__name__}")
        found = SUBMISSION_RE.search(answer.url)
        if answer.status_code != 200 or found is None:
            return Outcome(None, None, f"upload refused: {answer.status_code}")
        submission = int(found.group(1))
        html = self.wait_graded(browser.http, submission, answer.text, started)
        seconds = time.perf_counter() - started
        if html is None or seconds > self.timeout:
            return Outcome(submission, None, f"no feedback within {self.timeout:g} s")
        if FEEDBACK_SHOWN not in html:
            state = STATE_RE.search(html)
            return Outcome(submission, None, f"no test results (grading {state and state[1]})")
        return Outcome(submission, seconds)

    def wait_graded(
        self, http: requests.Session, submission: int, html: str, started: float
    ) -> str | None:
        """The submission page once grading has ended (None: not within the timeout)."""
        state = STATE_RE.search(html)
        if state is None or state[1] not in WAITING:
            return html
        url = f"{self.base}/learn/submissions/{submission}"
        while time.perf_counter() - started < self.timeout and not self.running.ended():
            if self.stopping.wait(POLL_SECONDS):
                return None
            try:
                status = http.get(url + "/status.json", timeout=self.timeout)
                status.raise_for_status()
                if status.json()["state"] not in WAITING:
                    return http.get(url, timeout=self.timeout).text
            except requests.RequestException:
                with self.lock:
                    self.http_errors += 1
        return None


def idle_runs(send: Sender, browsers: list[Browser], workers: int) -> tuple[float, int]:
    """Warm up every worker process, then time the lone submissions one after another:
    their median seconds, and how many of all these failed."""
    warm_up, lone = browsers[: 2 * workers], browsers[2 * workers :]
    print("warming up the graders ...", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=len(warm_up)) as pool:
        outcomes = list(pool.map(send, warm_up))
    outcomes += [send(browser) for browser in lone]
    send.running.check()
    failed = [o for o in outcomes if o.seconds is None]
    for outcome in failed:
        print(f"idle stack: submission {outcome.submission_id}: {outcome.error}", file=sys.stderr)
    timed = [o.seconds for o in outcomes[len(warm_up) :] if o.seconds is not None]
    if not timed:
        raise SystemExit("no lone submission got its feedback")
    return statistics.median(timed), len(failed)


def burst(
    send: Sender, plan: list[tuple[float, Browser]], args: argparse.Namespace
) -> list[Outcome]:
    """Each learner uploads at their moment of the compressed hour; everyone's outcome."""
    progress = Progress(len(plan))
    start = time.perf_counter() + 1.0

    def learner(at: float, browser: Browser) -> Outcome:
        if send.stopping.wait(max(0.0, start + at - time.perf_counter())):
            return Outcome(None, None, "not sent: the benchmark stopped")
        progress.sending(time.perf_counter() - start - at)
        outcome = send(browser)
        progress.finished(outcome.seconds is not None)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, len(plan))) as pool:
        futures = [pool.submit(learner, at, browser) for at, browser in plan]
        try:
            while wait(futures, timeout=1).not_done:
                send.running.check()
                elapsed = time.perf_counter() - start
                line = progress.line(elapsed, args.hour_seconds)
                print(line, end="", file=sys.stderr, flush=True)
        except BaseException:  # a stopped process, Ctrl-C, kill: the learners stop waiting
            send.stopping.set()
            raise
    print(progress.line(time.perf_counter() - start, args.hour_seconds), file=sys.stderr)
    if progress.late > 1:
        print(f"warning: uploads were sent up to {progress.late:.1f} s late", file=sys.stderr)
    outcomes = [future.result() for future in futures]
    for outcome in outcomes:
        if outcome.error:
            print(f"submission {outcome.submission_id}: {outcome.error}", file=sys.stderr)
    return outcomes


# --- Arrivals and the capacity model ------------------------------------------------------


def arrival_times(count: int, hour: float, rng: random.Random) -> list[float]:
    """`count` moments in [0, hour), drawn from a rate growing as exp(t / tau) up to the due
    time at `hour` (tau = RISE * hour)."""
    tau = RISE * hour
    floor = math.exp(-hour / tau)
    return sorted(hour + tau * math.log(floor + rng.random() * (1 - floor)) for _ in range(count))


def peak_per_minute(count: int, hour: float) -> float:
    """The arrival rate at the due time, per minute."""
    tau = RISE * hour
    return 60 * count / (tau * (1 - math.exp(-hour / tau)))


def model_p95(arrivals: list[float], seconds: float, cores: int) -> float:
    """p95 from stored to graded of a first-come-first-served queue on `cores` cores, each
    taking `seconds` per submission."""
    free = [0.0] * cores
    waits = []
    for moment in sorted(arrivals):
        done = max(moment, heapq.heappop(free)) + seconds
        heapq.heappush(free, done)
        waits.append(done - moment)
    return p95(waits)


def cores_needed(learners: int, share: float, seconds: float, target: float) -> int:
    """Worker cores for `learners` sharing one due time, each core taking `seconds` per
    submission: the arrival profile above in a real hour; stored to graded, plus the page's
    2-second poll, within `target` seconds at the 95th percentile."""
    arrivals = arrival_times(round(learners * share), HOUR, random.Random(18))
    cores = 1
    while model_p95(arrivals, seconds, cores) + POLL_SECONDS > target:
        cores += 1
    return cores


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[94]


# --- The report ---------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    config: dict[str, Any],
    arrivals: list[float],
    lone: float,
    outcomes: list[Outcome],
    jobs: list[Job],
    errors: dict[str, int],
) -> None:
    seconds = [o.seconds for o in outcomes if o.seconds is not None]
    if not seconds or not jobs:
        raise SystemExit(f"no submission got its feedback ({len(outcomes)} sent)")
    cores = min(args.workers, os.cpu_count() or args.workers)
    per_job = seconds_per_job(jobs)
    per_core = per_job * cores / args.workers  # seconds of one core per submission
    count = len(arrivals)
    backends = (config["QUEUE_URL"].split(":")[0], config["DATABASE_URL"].split(":")[0])
    print(f"assignment: {COURSE}/{ASSIGNMENT} (instant feedback)")
    print(f"learners: {args.learners}")
    print(f"submitting_in_last_hour: {count} ({100 * count / args.learners:.0f}% of the cohort)")
    print(
        f"arrivals: rate rising exponentially to the due time (time constant {RISE * 60:.0f} "
        f"min), {peak_per_minute(count, HOUR):.1f}/min at the due time in a real hour"
    )
    print(f"hour_compressed_to_seconds: {args.hour_seconds:g} ({HOUR / args.hour_seconds:.0f}x)")
    print(f"queue: {backends[0]}, database: {backends[1]}")
    print(f"worker_processes: {args.workers}, gunicorn_workers: {WEB_WORKERS}")
    print(f"cores: {cores} (the worker processes, at most os.cpu_count() {os.cpu_count()})")
    print(f"lone_seconds: {lone:.2f}")
    print(f"feedback_errors: {len(outcomes) - len(seconds)}")
    for name, number in errors.items():
        print(f"{name}: {number}")
    print(f"p50_seconds: {statistics.median(seconds):.2f}")
    print(f"p95_seconds: {p95(seconds):.2f}")
    print(f"max_seconds: {max(seconds):.2f}")
    print(f"stored_to_graded_p95_seconds: {p95([j.finished - j.queued for j in jobs]):.2f}")
    modelled = model_p95([job.queued for job in jobs], per_job, args.workers)
    print(f"model_stored_to_graded_p95_seconds: {modelled:.2f}")
    print(f"worker_seconds_per_submission: {per_job:.3f}")
    print(f"submissions_per_minute_per_core: {60 / per_core:.1f}")
    plan = cores_needed(args.plan_learners, args.share, per_core, args.target_p95)
    print(
        f"capacity_model: {args.plan_learners} learners, {100 * args.share:.0f}% submit in the "
        f"last hour, the same rising rate, p95 <= {args.target_p95:g} s"
    )
    print(f"worker_cores_for_{args.plan_learners}_learners: {plan}")
    print(f"p50_over_lone_ratio: {statistics.median(seconds) / lone:.2f}")


if __name__ == "__main__":
    main()

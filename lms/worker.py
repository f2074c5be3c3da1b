"""The queue worker (`flask lms worker`): its life (serve: the consumer processes and the
reaper) and what it does with a grading job id: claim, grade, record.

Imported only by the worker, never by the web process: it pulls in the autograder (nbgrader,
jupyter). Each worker process keeps a warm grader (kernel pool) for the assignments it graded
last, so a batch pays for sandboxes and nbgrader's set-up once. The other tasks (mail,
invitations, exports) are declared with @queue.task where their work lives; load_tasks
imports those modules so this worker knows them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import faulthandler
import importlib
import json
import logging
import multiprocessing
import os
import pkgutil
import signal
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app

import lms.services
from autograder.execute import ExecutionLimits
from autograder.feedback import released_sources, render
from autograder.gpu import GpuSlots
from autograder.grade import Grader, grader_for
from autograder.results import GradeResult
from autograder.sandbox import SandboxPolicy
from lms import queue
from lms.extensions import db
from lms.models import Assignment, GradingJob, Release, Submission, utcnow
from lms.queries import rush
from lms.services import grading
from lms.services import workers as workers_service
from lms.storage import blobs, storage

log = logging.getLogger(__name__)

# Graders (each a warm kernel pool) kept per worker process, most recently used last.
MAX_GRADERS = 2
# How often each worker process looks for deadlines to warm graders for.
PREWARM_EVERY_SECONDS = 60.0


class _Graders:
    """The warm graders of this process, by (assignment folder, content version, GPU). A
    grader in use (grading, in the consumer's thread) is never closed to make room for one
    warmed ahead of a deadline (by the reaper's thread)."""

    def __init__(self) -> None:
        self._open: OrderedDict[tuple[str, str, bool], tuple[ExitStack, Grader]] = OrderedDict()
        self._busy: Counter[tuple[str, str, bool]] = Counter()
        self._lock = threading.Lock()
        atexit.register(self.close)

    @contextlib.contextmanager
    def use(
        self, source: Path, version: str, gpu: bool, config: dict[str, Any]
    ) -> Iterator[Grader]:
        key = (str(source), version, gpu)
        with self._lock:
            grader = self._get(key, config)
            self._busy[key] += 1
        try:
            yield grader
        finally:
            with self._lock:
                self._busy[key] -= 1

    def warm(self, source: Path, version: str, gpu: bool, config: dict[str, Any]) -> bool:
        """Make the grader now, if it is not warm yet; True when it was made."""
        key = (str(source), version, gpu)
        with self._lock:
            if key in self._open:
                return False
            self._get(key, config)
            return True

    def warm_keys(self) -> list[tuple[str, str, bool]]:
        with self._lock:
            return list(self._open)

    def _get(self, key: tuple[str, str, bool], config: dict[str, Any]) -> Grader:
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key][1]
        idle = [k for k in self._open if not self._busy[k]]
        while len(self._open) >= MAX_GRADERS and idle:
            stack, _grader = self._open.pop(idle.pop(0))
            stack.close()
        source, _version, gpu = key
        slots = GpuSlots.parse(str(config["GPU_SLOTS"]), Path(config["GPU_DEVICE_ROOT"]))
        policy = SandboxPolicy(mode=str(config["SANDBOX"]))
        limits = ExecutionLimits(
            cell_timeout=float(config["CELL_TIMEOUT"]),
            notebook_timeout=float(config["NOTEBOOK_TIMEOUT"]),
        )
        stack = ExitStack()
        grader = stack.enter_context(
            grader_for(Path(source), int(config["KERNEL_POOL_SIZE"]), policy, limits, gpu, slots)
        )
        self._open[key] = (stack, grader)
        return grader

    def close(self) -> None:
        with self._lock:
            while self._open:
                _, (stack, _grader) = self._open.popitem()
                stack.close()


GRADERS = _Graders()


@queue.task(grading.GRADE_TASK)
def run_job(job_id: int) -> None:
    """Grade one job if it can be claimed; the result is stored only while the lease holds."""
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    job = grading.claim(job_id, token)
    if job is None:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    heartbeat = threading.Thread(
        target=_keep_lease, args=(app, job_id, token, stop), daemon=True, name="lease"
    )
    heartbeat.start()
    try:
        result, feedback = grade_submission(job)
    except Exception as e:  # noqa: BLE001 - the grader failed, not the learner: retry or fail
        log.exception("grading job %s failed", job_id)
        db.session.rollback()
        grading.record_failure(job_id, token, f"{type(e).__name__}: {e}")
        return
    finally:
        stop.set()
        heartbeat.join()
    if result.infrastructure:  # the grader's failure, not the learner's: never a score
        lost = result.infrastructure[0]
        grading.record_failure(job_id, token, f"{lost.notebook}.ipynb: {lost.reason}")
        return
    if not grading.record_result(job_id, token, result.to_json(), feedback):
        log.warning("grading job %s: lease lost before the result was stored", job_id)


def _keep_lease(app: Flask, job_id: int, token: str, stop: threading.Event) -> None:
    interval = max(0.5, int(app.config["GRADING_LEASE_SECONDS"]) / 3)
    with app.app_context():
        try:
            while not stop.wait(interval):
                if not grading.renew(job_id, token):
                    return
        finally:
            db.session.remove()


def grade_submission(job: GradingJob) -> tuple[GradeResult, dict[str, str]]:
    """Autograde the submission's stored files; returns the result and the sanitized
    feedback HTML of each notebook, stored as blobs (name -> sha256)."""
    submission: Submission = job.submission
    assignment = submission.assignment
    config = current_app.config
    source = Path(config["COURSES_DIR"]) / assignment.course.slug / assignment.slug
    version, gpu = assignment.content_hash, assignment.gpu
    files = {name: blobs.get(digest) for name, digest in submission.files.items()}
    # The read ends here: grading takes minutes, and a transaction left open that long is
    # ended by PostgreSQL (DATABASE_IDLE_TRANSACTION_SECONDS).
    db.session.rollback()
    executed: dict[str, Any] = {}
    with GRADERS.use(source, version, gpu, config) as grader:
        result = grader.grade_files(files, executed=executed)
    release = (
        db.session.scalar(
            db.select(Release).where(
                Release.assignment_id == assignment.id, Release.version == submission.version
            )
        )
        or assignment.current_release
    )
    feedback = {}
    if release is not None:
        for name, nb in executed.items():
            # Test scores only: an answer graded by hand later would show a stale 0 here.
            scores = {
                gid: (cell.score, cell.max_score)
                for gid, cell in result.notebooks[name].cells.items()
                if cell.status in ("passed", "partial", "failed")
            }
            given = json.loads(storage().read(f"{release.path}/{name}.ipynb"))
            released = released_sources(given)
            page = render(nb, released, scores, name)
            feedback[name] = blobs.put(page.encode("utf-8"))
    return result, feedback


def prewarm(app: Flask, lane: str, now: datetime | None = None) -> list[str]:
    """Warm this process's graders for the assignments due within PREWARM_MINUTES on its
    lane that learners have yet to submit, soonest first (at most MAX_GRADERS): the first
    submissions of the rush find warm sandboxes. Returns those warmed now ("course/slug")."""
    minutes = float(app.config["PREWARM_MINUTES"])
    if minutes <= 0:
        return []
    now = now or utcnow()
    ahead = timedelta(minutes=minutes)
    plan = rush.upcoming(now, ahead, ahead, gpu_lane=workers_service.taking("gpu") > 0)
    due: list[int] = []
    for item in plan:
        if item.lane == lane and item.warm(now) and item.to_come and item.assignment_id not in due:
            due.append(item.assignment_id)
    warmed = []
    for assignment_id in due[:MAX_GRADERS]:
        assignment = db.session.get(Assignment, assignment_id)
        assert assignment is not None
        source = Path(app.config["COURSES_DIR"]) / assignment.course.slug / assignment.slug
        version, gpu = assignment.content_hash, assignment.gpu
        db.session.rollback()  # sandboxes take seconds to start: no transaction left open
        if GRADERS.warm(source, version, gpu, app.config):
            warmed.append(f"{source.parent.name}/{source.name}")
    return warmed


# --- The worker's life --------------------------------------------------------------------


def load_tasks() -> list[str]:
    """Import every service module, so that the tasks they declare are known here."""
    for module in pkgutil.iter_modules(lms.services.__path__, "lms.services."):
        importlib.import_module(module.name)
    return queue.registered()


def lanes_of(app: Flask, asked: str | None = None) -> tuple[str, ...]:
    """The lanes this worker takes: as asked (--lanes, LMS_WORKER_LANES), else the CPU lane
    and, on a host with GPU slots, the GPU lane."""
    text = asked or str(app.config.get("WORKER_LANES") or "")
    if not text:
        return ("cpu", "gpu") if str(app.config["GPU_SLOTS"]).strip() else ("cpu",)
    lanes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [lane for lane in lanes if lane not in queue.LANES]
    if unknown or not lanes:
        raise ValueError(
            f"unknown lane(s) {', '.join(unknown) or repr(text)}: use cpu, gpu or both"
        )
    return lanes


def serve(
    app: Flask,
    workers: int,
    lanes: tuple[str, ...] = ("cpu",),
    say: Callable[[str], None] = print,
) -> None:
    """Run a consumer per lane until stopped: the first lane here with `workers` processes,
    each further lane in a child process of its own (Huey consumes one queue per consumer)
    with a process per GPU slot. Each process has a reaper that queues again the grading
    jobs of dead workers and says that this worker is alive."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # `kill -USR1` on a worker process prints where each of its threads is.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    slots = len(GpuSlots.parse(str(app.config["GPU_SLOTS"])).devices)
    children = []
    for lane in lanes[1:]:
        # Forked before any thread starts here (see start_worker_process).
        child = multiprocessing.get_context("fork").Process(
            target=_consume,
            args=(app, lane, max(1, slots) if lane == "gpu" else workers, slots, say),
            name=f"lms-worker-{lane}",
        )
        child.start()
        children.append(child)
    try:
        _consume(app, lanes[0], max(1, slots) if lanes[0] == "gpu" else workers, slots, say)
    finally:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(30)


def _consume(
    app: Flask, lane: str, workers: int, gpu_slots: int, say: Callable[[str], None]
) -> None:
    if multiprocessing.parent_process() is not None:
        _die_with_parent()
    tasks = load_tasks()
    queue.bind_worker_app(app)
    huey = queue.queue().lane(lane)

    def reap() -> None:
        interval = max(1.0, min(30.0, int(app.config["GRADING_LEASE_SECONDS"]) / 2))
        next_prewarm = 0.0
        while True:
            with app.app_context():
                try:
                    workers_service.heartbeat(os.getpid(), (lane,), gpu_slots)
                    again = grading.requeue_stale()
                    if again:
                        say(f"Queued again (worker gone or message lost): {again}")
                    if time.monotonic() >= next_prewarm:
                        next_prewarm = time.monotonic() + PREWARM_EVERY_SECONDS
                        warmed = prewarm(app, lane)
                        if warmed:
                            say(f"Warmed ahead of their deadline: {', '.join(warmed)}")
                except Exception as e:  # noqa: BLE001 - keep reaping after a database hiccup
                    say(f"reaper: {e}")
                finally:
                    db.session.remove()
            time.sleep(interval)

    @huey.on_startup()  # type: ignore[untyped-decorator]
    def start_worker_process() -> None:
        # Runs in each forked worker process. The parent stays single-threaded until it has
        # forked: a thread holding a lock (the import lock, logging's) at fork time would
        # leave it locked forever in the child.
        with app.app_context():
            db.engine.dispose(close=False)  # never share the parent's database sockets
        threading.Thread(target=reap, name="reaper", daemon=True).start()

    @huey.on_shutdown()  # type: ignore[untyped-decorator]
    def stop_worker_process() -> None:
        with app.app_context():
            try:
                workers_service.gone(os.getpid())
            except Exception:  # noqa: BLE001 - the row goes stale on its own
                log.exception("could not say this worker stopped")
            finally:
                db.session.remove()

    consumer = huey.create_consumer(
        workers=workers, worker_type="process", periodic=False, initial_delay=0.05, max_delay=1.0
    )
    say(
        f"Worker: {workers} process(es) on the {lane} lane of {app.config['QUEUE_URL']}; "
        f"tasks: {', '.join(tasks)}"
    )
    consumer.run()


def _die_with_parent() -> None:
    """A lane's child process ends when the worker that forked it dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        log.warning("cannot ask to end with the parent worker; stop it yourself")

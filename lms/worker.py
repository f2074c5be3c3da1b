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
import faulthandler
import importlib
import json
import logging
import os
import pkgutil
import signal
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
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
from lms.models import GradingJob, Release, Submission
from lms.services import grading
from lms.storage import blobs, storage

log = logging.getLogger(__name__)

# Graders (each a warm kernel pool) kept per worker process, most recently used last.
MAX_GRADERS = 2


class _Graders:
    def __init__(self) -> None:
        self._open: OrderedDict[tuple[str, str, bool], tuple[ExitStack, Grader]] = OrderedDict()
        self._lock = threading.Lock()
        atexit.register(self.close)

    def get(self, source: Path, version: str, gpu: bool, config: dict[str, Any]) -> Grader:
        key = (str(source), version, gpu)
        with self._lock:
            if key in self._open:
                self._open.move_to_end(key)
                return self._open[key][1]
            while len(self._open) >= MAX_GRADERS:
                _, (stack, _grader) = self._open.popitem(last=False)
                stack.close()
            slots = GpuSlots.parse(str(config["GPU_SLOTS"]), Path(config["GPU_DEVICE_ROOT"]))
            policy = SandboxPolicy(mode=str(config["SANDBOX"]))
            limits = ExecutionLimits(
                cell_timeout=float(config["CELL_TIMEOUT"]),
                notebook_timeout=float(config["NOTEBOOK_TIMEOUT"]),
            )
            stack = ExitStack()
            grader = stack.enter_context(
                grader_for(source, int(config["KERNEL_POOL_SIZE"]), policy, limits, gpu, slots)
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
    grader = GRADERS.get(source, assignment.content_hash, assignment.gpu, config)
    files = {name: blobs.get(digest) for name, digest in submission.files.items()}
    executed: dict[str, Any] = {}
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


# --- The worker's life --------------------------------------------------------------------


def load_tasks() -> list[str]:
    """Import every service module, so that the tasks they declare are known here."""
    for module in pkgutil.iter_modules(lms.services.__path__, "lms.services."):
        importlib.import_module(module.name)
    return queue.registered()


def serve(app: Flask, workers: int, say: Callable[[str], None] = print) -> None:
    """Run the consumer (`workers` processes) until stopped, with a reaper in each process
    that queues again the grading jobs of dead workers."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # `kill -USR1` on a worker process prints where each of its threads is.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    tasks = load_tasks()
    queue.bind_worker_app(app)
    huey = queue.queue().huey

    def reap() -> None:
        interval = max(1.0, min(30.0, int(app.config["GRADING_LEASE_SECONDS"]) / 2))
        while True:
            with app.app_context():
                try:
                    again = grading.requeue_stale()
                    if again:
                        say(f"Queued again (worker gone or message lost): {again}")
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

    consumer = huey.create_consumer(
        workers=workers, worker_type="process", periodic=False, initial_delay=0.05, max_delay=1.0
    )
    say(f"Worker: {workers} process(es) on {app.config['QUEUE_URL']}; tasks: {', '.join(tasks)}")
    consumer.run()

"""The job queue (Huey): SQLite file in instance/ by default, Redis when LMS_QUEUE_URL says so.

The queue only carries job ids; the database rows say what is to be done. Losing a grading
message loses nothing: the reaper (in `flask lms worker`) queues again every grading job whose
lease has expired or that waited too long. Export jobs (lms.services.export_jobs) have no
lease: one that waits or runs too long can be started again from its page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app
from huey import Huey, PriorityRedisHuey, SqliteHuey

QUEUE_NAME = "lms"
# Grading lanes: a job waits on its lane's queue, taken only by workers that serve the lane.
# GPU assignments wait on "gpu" (workers with GPU slots); everything else on "cpu".
LANES = ("cpu", "gpu")
_QUEUE_NAMES = {"cpu": QUEUE_NAME, "gpu": f"{QUEUE_NAME}-gpu"}
F = TypeVar("F", bound=Callable[..., None])
# Learners waiting for instant feedback go ahead of instructors' batches.
PRIORITY_INSTANT = 100
PRIORITY_BATCH = 0
# Someone waits for an export on its page: ahead of batches, after instant feedback.
PRIORITY_EXPORT = 50
# Someone waits for a sign-in mail (an invitation, a reset): ahead of everything.
PRIORITY_MAIL = 200

_worker_app: Flask | None = None
# name -> function: filled by @task where each task lives (see lms.worker.load_tasks).
_tasks: dict[str, Callable[..., None]] = {}


def task(name: str) -> Callable[[F], F]:
    """Make the decorated function the task `name`, run by the worker in its app context.
    Declared in the module that owns the work; queued with queue().enqueue(name, ...). The
    function itself is unchanged (callers may still run it here and now)."""

    def register(function: F) -> F:
        found = _tasks.get(name)
        if found is not None and found is not function:
            raise ValueError(f"two tasks are named {name!r}: {found} and {function}")
        _tasks[name] = function
        return function

    return register


def registered() -> list[str]:
    return sorted(_tasks)


class Queue:
    """Huey, one per lane, made on first use (an app with a bad LMS_QUEUE_URL still starts,
    and /healthz names the queue as the failing part). One Huey task carries every LMS task
    by name, so the queue knows none of them and the web process never imports what a task
    runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lanes: dict[str, tuple[Huey, Any]] = {}
        self._lock = threading.Lock()

    def lane(self, name: str) -> Huey:
        """The Huey of a lane ("cpu", "gpu")."""
        if name not in LANES:
            raise ValueError(f"unknown queue lane {name!r} (lanes: {', '.join(LANES)})")
        with self._lock:
            if name not in self._lanes:
                huey = make_huey(self.url, _QUEUE_NAMES[name])
                self._lanes[name] = (huey, huey.task(name="lms.task")(_run_task))
            return self._lanes[name][0]

    @property
    def huey(self) -> Huey:
        """The CPU lane: mail, exports, invitations and every grading job but GPU ones."""
        return self.lane("cpu")

    def enqueue(self, name: str, *args: Any, priority: int, lane: str = "cpu") -> None:
        """Queue a run of the task `name` with these (JSON-able, small) arguments."""
        self.lane(lane)
        self._lanes[lane][1](name, *args, priority=priority)


def _run_task(name: str, *args: Any) -> None:
    if _worker_app is None:
        raise RuntimeError("LMS tasks run only in `flask lms worker`")
    function = _tasks.get(name)
    if function is None:
        raise LookupError(f"no task named {name!r} in this worker (tasks: {registered()})")
    with _worker_app.app_context():
        function(*args)


def make_huey(url: str, name: str = QUEUE_NAME) -> Huey:
    if url.startswith(("redis://", "rediss://", "unix://")):
        huey: Huey = PriorityRedisHuey(name, url=url, results=False)
    elif url.startswith("sqlite:///"):
        huey = SqliteHuey(name, filename=urlsplit(url).path, results=False, timeout=30)
    else:
        raise ValueError(f"unsupported LMS_QUEUE_URL {url!r}: use sqlite:///path or redis://")
    return huey


def init_app(app: Flask) -> None:
    app.extensions["queue"] = Queue(str(app.config["QUEUE_URL"]))


def queue() -> Queue:
    found: Queue = current_app.extensions["queue"]
    return found


def bind_worker_app(app: Flask) -> None:
    """The app that tasks run in: set by `flask lms worker` before its consumer starts."""
    global _worker_app
    _worker_app = app

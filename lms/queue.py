"""The job queue (Huey): SQLite file in instance/ by default, Redis when LMS_QUEUE_URL says so.

The queue only carries job ids; the database rows say what is to be done. Losing a grading
message loses nothing: the reaper (in `flask lms worker`) queues again every grading job whose
lease has expired or that waited too long. Export jobs (lms.services.export_jobs) have no
lease: one that waits or runs too long can be started again from its page.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from huey import Huey, PriorityRedisHuey, SqliteHuey

QUEUE_NAME = "lms"
# Learners waiting for instant feedback go ahead of instructors' batches.
PRIORITY_INSTANT = 100
PRIORITY_BATCH = 0
# Someone waits for an export on its page: ahead of batches, after instant feedback.
PRIORITY_EXPORT = 50
# Someone waits for a sign-in mail (an invitation, a reset): ahead of everything.
PRIORITY_MAIL = 200

_worker_app: Flask | None = None


class Queue:
    """A Huey instance with the LMS's tasks registered on it, made on first use: an app with
    a bad LMS_QUEUE_URL still starts, and /healthz names the queue as the failing part."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._huey: Huey | None = None
        self._grade_task: Any = None
        self._export_task: Any = None
        self._account_mail_task: Any = None
        self._invitations_task: Any = None
        self._lock = threading.Lock()

    @property
    def huey(self) -> Huey:
        with self._lock:
            if self._huey is None:
                huey = make_huey(self.url)
                self._grade_task = huey.task(name="grade_job")(_grade_job)
                self._export_task = huey.task(name="export_job")(_export_job)
                self._account_mail_task = huey.task(name="account_mail")(_account_mail)
                self._invitations_task = huey.task(name="invitations")(_invitations)
                self._huey = huey
            return self._huey

    def enqueue_grading(self, job_id: int, priority: int) -> None:
        self.huey  # noqa: B018 - makes the task on first use
        self._grade_task(job_id, priority=priority)

    def enqueue_export(self, job_id: int) -> None:
        self.huey  # noqa: B018 - makes the task on first use
        self._export_task(job_id, priority=PRIORITY_EXPORT)

    def enqueue_account_mail(
        self, kind: str, subject: int | str, by_id: int | None, new_email: str | None = None
    ) -> None:
        self.huey  # noqa: B018 - makes the task on first use
        self._account_mail_task(kind, subject, by_id, new_email, priority=PRIORITY_MAIL)

    def enqueue_invitations(self, batch_id: int) -> None:
        self.huey  # noqa: B018 - makes the task on first use
        self._invitations_task(batch_id, priority=PRIORITY_EXPORT)


def make_huey(url: str) -> Huey:
    if url.startswith(("redis://", "rediss://", "unix://")):
        huey: Huey = PriorityRedisHuey(QUEUE_NAME, url=url, results=False)
    elif url.startswith("sqlite:///"):
        huey = SqliteHuey(QUEUE_NAME, filename=urlsplit(url).path, results=False, timeout=30)
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


def _grade_job(job_id: int) -> None:
    if _worker_app is None:
        raise RuntimeError("grading tasks run only in `flask lms worker`")
    from lms import worker

    with _worker_app.app_context():
        worker.run_job(job_id)


def _export_job(job_id: int) -> None:
    if _worker_app is None:
        raise RuntimeError("export tasks run only in `flask lms worker`")
    from lms.services import export_jobs

    with _worker_app.app_context():
        export_jobs.run(job_id)


def _account_mail(kind: str, subject: int | str, by_id: int | None, new_email: str | None) -> None:
    if _worker_app is None:
        raise RuntimeError("mail tasks run only in `flask lms worker`")
    from lms.services import accounts

    with _worker_app.app_context():
        accounts.deliver(kind, subject, by_id, new_email)


def _invitations(batch_id: int) -> None:
    if _worker_app is None:
        raise RuntimeError("invitation tasks run only in `flask lms worker`")
    from lms.services import accounts

    with _worker_app.app_context():
        accounts.run_batch(batch_id)

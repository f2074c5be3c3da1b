"""Progress exports: who may export what, and the background jobs that write the large ones.

A job is a row (lms.models.ExportJob); the queue carries its id. `run` claims the row (queued
to running, atomically), builds the report, stores the file whole as exports/<id>.<ext>
(lms.storage), and ends the row done or failed with a one-line reason. Progress (rows written
of the total) is stored every few thousand rows in short transactions of their own, on a
connection of their own, so the read of the learner rows is never disturbed; the page polls
it.

A job has no lease: if its worker dies, the row stays queued or running. After STALE_AFTER
the job page says so and offers to start the export again; `start` then marks the old row
failed and queues a new one (a late finish of the old one is not recorded).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, cast

import sqlalchemy as sa
from flask_babel import force_locale

from lms import formatting, queue
from lms.config import LANGUAGES
from lms.extensions import db
from lms.models import (
    Cohort,
    Course,
    Enrolment,
    ExportJob,
    ExportState,
    Program,
    User,
    cohort_courses,
    utcnow,
)
from lms.reporting import exports, report
from lms.scopes import coordinated_program_ids, taught_course_ids
from lms.services import ServiceError
from lms.storage import storage

log = logging.getLogger(__name__)

SCOPES = ("program", "cohort", "course")
# A job queued or running for longer than this is taken for lost (its worker died).
STALE_AFTER = timedelta(minutes=10)
# Progress is written at most this often (seconds), whatever the rows per second.
PROGRESS_INTERVAL = 0.5
UNFINISHED = (ExportState.QUEUED, ExportState.RUNNING)

Subject = Program | Cohort | Course


class ExportError(ServiceError):
    pass


@dataclass(frozen=True)
class Target:
    """What is exported: a program, a cohort or a course, and for a course the cohorts the
    requester may see (None: all of them)."""

    scope: str
    subject: Subject
    cohort_ids: set[int] | None = None

    @property
    def id(self) -> int:
        return self.subject.id


_MODELS: dict[str, type[Subject]] = {"program": Program, "cohort": Cohort, "course": Course}


def find(user: User | None, scope: str, slug: str) -> Target | None:
    """The program, cohort or course with this slug if the user may export it (None when it
    does not exist or is not theirs: the two are not told apart). user None: the command
    line, which may export everything."""
    model = _MODELS.get(scope)
    if model is None:
        return None
    subject = cast(Subject | None, db.session.scalar(sa.select(model).where(model.slug == slug)))
    return None if subject is None else allowed(user, scope, subject)


def allowed(user: User | None, scope: str, subject: Subject) -> Target | None:
    """Admins export everything; coordinators their programs and those programs' cohorts, and
    a course limited to their programs' cohorts taking it; instructors their courses (all
    cohorts)."""
    if user is None or user.is_admin:
        return Target(scope, subject)
    programs = coordinated_program_ids(user) or set()
    if isinstance(subject, Program):
        return Target(scope, subject) if subject.id in programs else None
    if isinstance(subject, Cohort):
        return Target(scope, subject) if subject.program_id in programs else None
    if subject.id in (taught_course_ids(user) or set()):
        return Target(scope, subject)
    if not programs:
        return None
    cohort_ids = set(
        db.session.scalars(
            sa.select(Cohort.id)
            .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
            .where(cohort_courses.c.course_id == subject.id, Cohort.program_id.in_(programs))
        )
    )
    return Target(scope, subject, cohort_ids) if cohort_ids else None


def build(target: Target, now: datetime | None = None) -> report.Report:
    """The report of the target, from lms.reporting.report's builders."""
    subject = target.subject
    if isinstance(subject, Program):
        return report.program_report(subject, now=now)
    if isinstance(subject, Cohort):
        return report.cohort_report(subject, now=now)
    return report.course_report(subject, target.cohort_ids, now=now)


def learner_rows(built: report.Report) -> int:
    return built.learners.count if built.learners is not None else 0


def learner_count(target: Target) -> int:
    """The learner rows the target's report will have (every enrolment of its cohorts,
    withdrawn ones too), counted with one query: whether to write the report while the
    browser waits is decided without building it (a course report of 50,000 learners takes
    a while to build)."""
    query = sa.select(sa.func.count(Enrolment.id)).join(Cohort, Cohort.id == Enrolment.cohort_id)
    subject = target.subject
    if isinstance(subject, Program):
        query = query.where(Cohort.program_id == subject.id)
    elif isinstance(subject, Cohort):
        query = query.where(Cohort.id == subject.id)
    else:
        query = query.join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id).where(
            cohort_courses.c.course_id == subject.id
        )
        if target.cohort_ids is not None:
            query = query.where(Cohort.id.in_(target.cohort_ids))
    return int(db.session.scalar(query) or 0)


# --- Jobs -------------------------------------------------------------------------------


def start(user: User, scope: str, scope_id: int, fmt: str, total: int = 0) -> ExportJob:
    """Queue an export for the worker; the same export already waiting or running for the
    same user is returned instead of a second one, unless it is stale (then it is marked
    failed and a new one queued). total: the learner rows expected, shown while it waits."""
    if scope not in SCOPES:
        raise ExportError(f"Unknown export scope {scope!r}.")
    if fmt not in exports.FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}.")
    now = utcnow()
    waiting = db.session.scalars(
        sa.select(ExportJob).where(
            ExportJob.requested_by_id == user.id,
            ExportJob.scope == scope,
            ExportJob.scope_id == scope_id,
            ExportJob.format == fmt,
            ExportJob.state.in_(UNFINISHED),
        )
    ).all()
    for job in waiting:
        if not is_stale(job, now):
            return job
        job.state = ExportState.FAILED
        job.finished_at = now
        job.error = "The worker writing it stopped; it was started again."
    job = ExportJob(
        requested_by_id=user.id,
        scope=scope,
        scope_id=scope_id,
        format=fmt,
        total=total,
        time_zone=formatting.time_zone_name(),
    )
    db.session.add(job)
    db.session.commit()
    try:
        queue.queue().enqueue("export_job", job.id, priority=queue.PRIORITY_EXPORT)
    except Exception:  # noqa: BLE001 - the broker is down: the row says so once it goes stale
        log.exception("could not queue export job %s", job.id)
    return job


def is_stale(job: ExportJob, now: datetime | None = None) -> bool:
    """Queued or running for longer than STALE_AFTER: its worker is taken for dead."""
    if job.state not in UNFINISHED:
        return False
    since = job.started_at or job.created_at
    return (now or utcnow()) - since > STALE_AFTER


def progress(job: ExportJob) -> dict[str, Any]:
    """The job's state for the page and its JSON polling."""
    return {
        "id": job.id,
        "state": str(job.state),
        "done": job.done,
        "total": job.total,
        "format": job.format,
        "file_name": job.file_name,
        "error": job.error,
        "stale": is_stale(job),
    }


def open_file(job: ExportJob) -> BinaryIO | None:
    """The finished file, open for reading, if it is still there."""
    if job.state != ExportState.DONE or not job.path:
        return None
    try:
        return storage().open(job.path)
    except FileNotFoundError:
        return None


def subject_of(job: ExportJob) -> Subject | None:
    model = _MODELS.get(job.scope)
    return None if model is None else cast(Subject | None, db.session.get(model, job.scope_id))


@queue.task("export_job")
def run(job_id: int) -> None:
    """The worker's side: claim a queued job, write its file, record the end. A job that is
    not queued (taken, finished, marked stale) is left alone."""
    claimed = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.state == ExportState.QUEUED)
            .values(state=ExportState.RUNNING, started_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    db.session.commit()
    if not claimed:
        return
    job = db.session.get(ExportJob, job_id)
    assert job is not None
    extension = exports.FORMATS[job.format][1]
    key = f"exports/{job.id}.{extension}"
    try:
        with _locale_of(job.requested_by), formatting.reading_in(job.time_zone):
            subject = subject_of(job)
            target = None if subject is None else allowed(job.requested_by, job.scope, subject)
            if target is None:
                raise ExportError("what was to be exported is gone or no longer yours to export")
            built = build(target)
            total = learner_rows(built)
            _store_progress(job.id, 0, total)
            reporter = _Progress(job.id, total)
            # Written to a temporary file first: the stored file appears whole or not at all.
            with tempfile.TemporaryFile() as out:
                exports.write(built, job.format, out, on_progress=reporter)
                out.seek(0)
                storage().write(key, out)
    except Exception as e:  # noqa: BLE001 - any failure ends the job with its reason
        log.exception("export job %s failed", job_id)
        db.session.rollback()
        _finish(job_id, ExportState.FAILED, error=_one_line(e))
        return
    db.session.rollback()  # end the read transaction of the report
    if not _finish(
        job_id,
        ExportState.DONE,
        done=total,
        total=total,
        file_name=built.file_name(extension),
        path=key,
    ):
        storage().delete(key)  # marked stale and started again meanwhile
        return
    _remove_older(job_id)


def _finish(job_id: int, state: ExportState, **values: Any) -> bool:
    ended = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.state == ExportState.RUNNING)
            .values(state=state, finished_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    db.session.commit()
    return bool(ended)


def _remove_older(job_id: int) -> None:
    """A newer file of the same export replaces the requester's older ones."""
    job = db.session.get(ExportJob, job_id)
    if job is None:
        return
    older = db.session.scalars(
        sa.select(ExportJob).where(
            ExportJob.requested_by_id == job.requested_by_id,
            ExportJob.scope == job.scope,
            ExportJob.scope_id == job.scope_id,
            ExportJob.format == job.format,
            ExportJob.state == ExportState.DONE,
            ExportJob.id < job.id,
            ExportJob.path != "",
        )
    ).all()
    for old in older:
        storage().delete(old.path)
        old.path = ""
    db.session.commit()


class _Progress:
    """on_progress for the writers: stores rows written, at most every PROGRESS_INTERVAL."""

    def __init__(self, job_id: int, total: int) -> None:
        self.job_id = job_id
        self.total = total
        self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL or done >= self.total:
            return
        self.last = now
        _store_progress(self.job_id, done, self.total)


def _store_progress(job_id: int, done: int, total: int) -> None:
    """In a short transaction on a connection of its own, beside the session that is reading
    the learner rows. Progress is only shown: on SQLite, where the reader may hold the lock
    the write needs, a write that cannot happen at once is skipped."""
    try:
        with db.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql("PRAGMA busy_timeout = 100")
            try:
                conn.execute(
                    sa.update(ExportJob)
                    .where(ExportJob.id == job_id, ExportJob.state == ExportState.RUNNING)
                    .values(done=done, total=total)
                )
                conn.commit()
            finally:
                if sqlite:
                    conn.rollback()
                    conn.exec_driver_sql("PRAGMA busy_timeout = 5000")
    except sa.exc.OperationalError as e:
        log.info("export job %s: progress not stored (%s)", job_id, _one_line(e))


@contextlib.contextmanager
def _locale_of(user: User) -> Iterator[None]:
    """Labels in the requester's language (the worker has no request to take it from)."""
    if user.locale in LANGUAGES:
        with force_locale(user.locale):
            yield
    else:
        yield


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, ServiceError):
        text = f"{type(error).__name__}: {text}"
    return text[:500]

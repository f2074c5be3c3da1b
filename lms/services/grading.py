"""Grading: jobs and batches through the queue, grades and their audit trail, feedback release.

A job is a row; the queue carries its id. A worker claims a job with a lease (an atomic
UPDATE), keeps renewing it while grading, and records the result only if it still holds the
lease. A worker killed mid-job leaves an expired lease: the reaper queues the job again. The
result turns into one Grade row per graded cell (unique per submission and cell), changed only
with a GradeEvent, so grading a submission twice never duplicates a grade.

Over 400 lines on purpose: queueing, leases, batches and grades share one rule (a result is
stored only with the lease held, in the transaction that ends the job); apart, each part
would need the others' private checks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from lms import queue
from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentNotebook,
    BatchState,
    Cohort,
    CohortAssignment,
    Course,
    Grade,
    GradedCell,
    GradeEvent,
    GradeSource,
    GradingBatch,
    GradingJob,
    JobKind,
    JobState,
    Submission,
    User,
    utcnow,
)
from lms.queries import marking
from lms.services import ServiceError, completion, workers

log = logging.getLogger(__name__)

# A job whose worker died this many times is failed rather than tried again.
MAX_ATTEMPTS = 3
UNFINISHED = (JobState.QUEUED, JobState.RUNNING)


class GradingError(ServiceError):
    pass


def _update(statement: sa.Update) -> int:
    """Run an UPDATE; how many rows it changed (the atomic claim and lease checks)."""
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(sa.CursorResult[Any], result).rowcount)


# --- Queueing ---------------------------------------------------------------------------

# Run by lms.worker (which has the grader); queued from here by name, so the web process
# never imports it.
GRADE_TASK = "grade_job"


def lane_for(assignment: Assignment) -> str:
    """The queue lane its grading waits on: "gpu" for a GPU assignment (taken only by workers
    with GPU slots), unless its course lets it run on the CPU and no GPU worker is alive."""
    if not assignment.gpu:
        return "cpu"
    if assignment.course.gpu_on_cpu and not workers.taking("gpu"):
        return "cpu"
    return "gpu"


def waiting_for_gpu(assignment: Assignment) -> bool:
    """GPU jobs of the assignment wait and no worker with GPU slots is alive to take them:
    the instructor is told (they are not run on the CPU behind anyone's back)."""
    of_assignment = GradingJob.submission_id.in_(
        sa.select(Submission.id).where(Submission.assignment_id == assignment.id)
    )
    return _gpu_jobs_wait(of_assignment)


def _gpu_jobs_wait(among: sa.ColumnElement[bool]) -> bool:
    """Some of these jobs wait on the GPU lane, and no worker takes it."""
    waiting = db.session.scalar(
        sa.select(GradingJob.id)
        .where(among, GradingJob.lane == "gpu", GradingJob.state == JobState.QUEUED)
        .limit(1)
    )
    return waiting is not None and not workers.taking("gpu")


def _enqueue(jobs: Iterable[GradingJob]) -> None:
    """Put committed jobs on their lane's queue. If the queue is down the rows stay queued and
    the reaper sends them again once it is back."""
    q = queue.queue()
    for job in jobs:
        try:
            q.enqueue(GRADE_TASK, job.id, priority=job.priority, lane=job.lane)
        except Exception:  # noqa: BLE001 - any broker error: the row is the truth, retry later
            log.exception("could not queue grading job %s; the reaper will retry", job.id)


def instant_feedback_left(user: User) -> int:
    """Instant-feedback gradings the learner may still ask for in the current hour."""
    since = utcnow() - timedelta(hours=1)
    used = db.session.scalar(
        sa.select(sa.func.count(GradingJob.id))
        .join(Submission, Submission.id == GradingJob.submission_id)
        .where(
            Submission.user_id == user.id,
            GradingJob.kind == JobKind.INSTANT,
            GradingJob.queued_at >= since,
        )
    )
    return max(0, int(current_app.config["INSTANT_FEEDBACK_PER_HOUR"]) - int(used or 0))


def request_instant_feedback(submission: Submission) -> GradingJob | None:
    """Autograde a new submission ahead of batches, if the assignment allows it and the
    learner has not used up the hour's allowance (None otherwise)."""
    if not submission.assignment.instant_feedback or instant_feedback_left(submission.user) < 1:
        return None
    job = GradingJob(
        submission_id=submission.id,
        kind=JobKind.INSTANT,
        priority=queue.PRIORITY_INSTANT,
        lane=lane_for(submission.assignment),
    )
    db.session.add(job)
    db.session.commit()
    _enqueue([job])
    return job


def latest_submissions(assignment: Assignment, cohort: Cohort | None = None) -> list[Submission]:
    """Each learner's latest attempt (per cohort) at the assignment, in submission order."""
    latest = marking.latest_attempt_ids(assignment.id, cohort.id if cohort else None)
    return list(
        db.session.scalars(
            sa.select(Submission).where(Submission.id.in_(latest)).order_by(Submission.id)
        )
    )


def create_batch(
    assignment: Assignment,
    created_by: User | None,
    *,
    cohort: Cohort | None = None,
    submission_ids: Sequence[int] | None = None,
) -> GradingBatch:
    """Autograde every latest submission (of the cohort, if given), or the chosen ones."""
    if submission_ids is None:
        chosen = latest_submissions(assignment, cohort)
        scope = "all"
    else:
        query = sa.select(Submission).where(
            Submission.id.in_(submission_ids), Submission.assignment_id == assignment.id
        )
        if cohort is not None:
            query = query.where(Submission.cohort_id == cohort.id)
        chosen = list(db.session.scalars(query.order_by(Submission.id)))
        if len(chosen) != len(set(submission_ids)):
            raise GradingError(_("Some of the chosen submissions are not of this assignment."))
        scope = "selected"
    if not chosen:
        raise GradingError(_("There are no submissions to grade."))
    batch = GradingBatch(
        assignment_id=assignment.id,
        cohort_id=cohort.id if cohort else None,
        created_by_id=created_by.id if created_by else None,
        scope=scope,
        total=len(chosen),
    )
    db.session.add(batch)
    db.session.flush()
    lane = lane_for(assignment)
    jobs = [
        GradingJob(
            submission_id=s.id,
            batch_id=batch.id,
            kind=JobKind.BATCH,
            priority=queue.PRIORITY_BATCH,
            lane=lane,
        )
        for s in chosen
    ]
    db.session.add_all(jobs)
    db.session.commit()
    _enqueue(jobs)
    return batch


def cancel_batch(batch: GradingBatch) -> int:
    """Stop a batch: its queued jobs are cancelled; the ones being graded finish. Returns how
    many were cancelled."""
    if batch.state != BatchState.RUNNING:
        raise GradingError(_("This batch has already ended."))
    cancelled = _update(
        sa.update(GradingJob)
        .where(GradingJob.batch_id == batch.id, GradingJob.state == JobState.QUEUED)
        .values(state=JobState.CANCELLED, finished_at=utcnow())
    )
    batch.state = BatchState.CANCELLED
    batch.finished_at = utcnow()
    db.session.commit()
    return int(cancelled or 0)


@dataclass(frozen=True)
class BatchProgress:
    total: int
    done: int
    failed: int
    cancelled: int
    running: int
    queued: int
    state: str
    rate_per_minute: float
    seconds_left: float | None
    # Some of its jobs need a GPU and no worker with GPU slots is alive to take them.
    waiting_for_gpu: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "running": self.running,
            "queued": self.queued,
            "state": self.state,
            "rate_per_minute": round(self.rate_per_minute, 1),
            "seconds_left": None if self.seconds_left is None else round(self.seconds_left),
            "waiting_for_gpu": self.waiting_for_gpu,
        }


def progress(batch: GradingBatch) -> BatchProgress:
    counts = dict(
        db.session.execute(
            sa.select(GradingJob.state, sa.func.count(GradingJob.id))
            .where(GradingJob.batch_id == batch.id)
            .group_by(GradingJob.state)
        )
        .tuples()
        .all()
    )
    done = counts.get(JobState.DONE, 0)
    failed = counts.get(JobState.FAILED, 0)
    finished = done + failed
    end = batch.finished_at or utcnow()
    elapsed = max((end - batch.created_at).total_seconds(), 1e-6)
    rate = 60.0 * finished / elapsed
    left = counts.get(JobState.QUEUED, 0) + counts.get(JobState.RUNNING, 0)
    seconds_left = (left * 60.0 / rate) if rate > 0 and left else (0.0 if not left else None)
    return BatchProgress(
        total=batch.total,
        done=done,
        failed=failed,
        cancelled=counts.get(JobState.CANCELLED, 0),
        running=counts.get(JobState.RUNNING, 0),
        queued=counts.get(JobState.QUEUED, 0),
        state=str(batch.state),
        rate_per_minute=rate,
        seconds_left=seconds_left,
        waiting_for_gpu=bool(counts.get(JobState.QUEUED))
        and _gpu_jobs_wait(GradingJob.batch_id == batch.id),
    )


# --- The worker's side ------------------------------------------------------------------


def lease_seconds() -> int:
    return int(current_app.config["GRADING_LEASE_SECONDS"])


def claim(job_id: int, token: str) -> GradingJob | None:
    """Take the job if it is queued, or running on an expired lease; None if someone else
    has it, it has ended, or it was cancelled."""
    now = utcnow()
    taken = _update(
        sa.update(GradingJob)
        .where(
            GradingJob.id == job_id,
            GradingJob.attempts < MAX_ATTEMPTS,
            sa.or_(
                GradingJob.state == JobState.QUEUED,
                sa.and_(GradingJob.state == JobState.RUNNING, GradingJob.lease_until < now),
            ),
        )
        .values(
            state=JobState.RUNNING,
            attempts=GradingJob.attempts + 1,
            lease_until=now + timedelta(seconds=lease_seconds()),
            leased_by=token,
            started_at=now,
        )
    )
    db.session.commit()
    return db.session.get(GradingJob, job_id) if taken else None


def renew(job_id: int, token: str) -> bool:
    """Extend the lease while grading; False when the job is no longer ours."""
    renewed = _update(
        sa.update(GradingJob)
        .where(
            GradingJob.id == job_id,
            GradingJob.state == JobState.RUNNING,
            GradingJob.leased_by == token,
        )
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds()))
    )
    db.session.commit()
    return bool(renewed)


def _finish(job_id: int, token: str, state: JobState, **values: Any) -> bool:
    """End a job we hold the lease of (inside the caller's transaction)."""
    ended = _update(
        sa.update(GradingJob)
        .where(
            GradingJob.id == job_id,
            GradingJob.state == JobState.RUNNING,
            GradingJob.leased_by == token,
        )
        .values(state=state, finished_at=utcnow(), lease_until=None, **values)
    )
    return bool(ended)


def record_result(
    job_id: int, token: str, result: dict[str, Any], feedback: dict[str, str]
) -> bool:
    """Store the autograder's result as grades, in one transaction with the job's end.
    False (and nothing stored) when the lease was lost meanwhile."""
    for tries in range(3):
        try:
            if not _finish(
                job_id,
                token,
                JobState.DONE,
                score=result["score"],
                max_score=result["max_score"],
                result=result,
                feedback=feedback,
            ):
                db.session.rollback()
                return False
            job = db.session.get(GradingJob, job_id)
            assert job is not None
            cohort_id, user_id = job.submission.cohort_id, job.submission.user_id
            _apply_autograde(job, result)
            _close_batch_if_finished(job.batch_id)
            db.session.commit()
        except IntegrityError:
            # Another job of the same submission inserted the same grade first: apply again.
            db.session.rollback()
            if tries == 2:
                raise
            continue
        completion.refresh(cohort_id, [user_id])
        return True
    return False


def record_failure(job_id: int, token: str, error: str) -> None:
    """The grader itself failed (not the learner's code): try again later, or give up."""
    job = db.session.get(GradingJob, job_id)
    if job is None:
        return
    if job.attempts < MAX_ATTEMPTS:
        requeued = _update(
            sa.update(GradingJob)
            .where(GradingJob.id == job_id, GradingJob.leased_by == token)
            .values(state=JobState.QUEUED, lease_until=None, error=error[:2000])
        )
        db.session.commit()
        if requeued:
            _enqueue([job])
        return
    if _finish(job_id, token, JobState.FAILED, error=error[:2000]):
        _close_batch_if_finished(job.batch_id)
    db.session.commit()


def requeue_stale() -> list[int]:
    """The reaper: jobs whose worker died (expired lease) go back on the queue, or fail after
    MAX_ATTEMPTS; queued rows whose message was lost (the queue is empty, yet they wait) are
    sent again. Returns the ids queued again."""
    now = utcnow()
    expired = list(
        db.session.scalars(
            sa.select(GradingJob).where(
                GradingJob.state == JobState.RUNNING, GradingJob.lease_until < now
            )
        )
    )
    again = []
    for job in expired:
        if job.attempts >= MAX_ATTEMPTS:
            job.state = JobState.FAILED
            job.finished_at = now
            job.error = f"the worker grading it stopped {job.attempts} times"
            db.session.flush()
            _close_batch_if_finished(job.batch_id)
        else:
            job.state = JobState.QUEUED
            job.lease_until = None
            again.append(job)
    waited = now - timedelta(seconds=2 * lease_seconds())
    for lane in queue.LANES:
        if queue.queue().lane(lane).pending_count() == 0:
            again += list(
                db.session.scalars(
                    sa.select(GradingJob).where(
                        GradingJob.state == JobState.QUEUED,
                        GradingJob.lane == lane,
                        GradingJob.queued_at < waited,
                    )
                )
            )
    again += _to_the_cpu(waited)
    for job in again:
        job.queued_at = now
    _close_finished_batches()
    db.session.commit()
    _enqueue(again)
    return [job.id for job in again]


def _to_the_cpu(waited: datetime) -> list[GradingJob]:
    """GPU jobs waiting with no GPU worker alive, of courses that let them run on the CPU,
    move to the CPU lane (their GPU worker died after they were queued)."""
    if workers.taking("gpu"):
        return []
    moved = list(
        db.session.scalars(
            sa.select(GradingJob)
            .join(Submission, Submission.id == GradingJob.submission_id)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .join(Course, Course.id == Assignment.course_id)
            .where(
                GradingJob.state == JobState.QUEUED,
                GradingJob.lane == "gpu",
                GradingJob.queued_at < waited,
                Course.gpu_on_cpu.is_(True),
            )
        )
    )
    for job in moved:
        job.lane = "cpu"
    return moved


def _close_batch_if_finished(batch_id: int | None) -> None:
    """Mark the batch done if none of its jobs is left (inside the caller's transaction).

    The batch row is locked first: two workers ending a batch's last two jobs at once would
    otherwise each count the other's job as still running (PostgreSQL's read committed) and
    neither would close it. The second now waits for the first's commit, then counts."""
    if batch_id is None:
        return
    db.session.execute(
        sa.select(GradingBatch.id).where(GradingBatch.id == batch_id).with_for_update()
    )
    open_jobs = db.session.scalar(
        sa.select(sa.func.count(GradingJob.id)).where(
            GradingJob.batch_id == batch_id, GradingJob.state.in_(UNFINISHED)
        )
    )
    if not open_jobs:
        _update(
            sa.update(GradingBatch)
            .where(GradingBatch.id == batch_id, GradingBatch.state == BatchState.RUNNING)
            .values(state=BatchState.DONE, finished_at=utcnow())
        )


def _close_finished_batches() -> int:
    """The reaper's sweep: a running batch none of whose jobs is left is done (one that a
    database hiccup kept from closing when its last job ended)."""
    left = (
        sa.select(GradingJob.id)
        .where(GradingJob.batch_id == GradingBatch.id, GradingJob.state.in_(UNFINISHED))
        .exists()
    )
    return _update(
        sa.update(GradingBatch)
        .where(GradingBatch.state == BatchState.RUNNING, ~left)
        .values(state=BatchState.DONE, finished_at=utcnow())
    )


def graded_cells(assignment_id: int) -> dict[tuple[str, str], GradedCell]:
    """(notebook name, grade_id) -> graded cell, for the assignment's current version."""
    rows = db.session.execute(
        sa.select(AssignmentNotebook.name, GradedCell)
        .join(GradedCell, GradedCell.notebook_id == AssignmentNotebook.id)
        .where(AssignmentNotebook.assignment_id == assignment_id)
    ).tuples()
    return {(name, cell.grade_id): cell for name, cell in rows}


def _apply_autograde(job: GradingJob, result: dict[str, Any]) -> None:
    submission = job.submission
    cells = graded_cells(submission.assignment_id)
    current = {
        g.cell_id: g
        for g in db.session.scalars(sa.select(Grade).where(Grade.submission_id == submission.id))
    }
    now = utcnow()
    for notebook, nb in result.get("notebooks", {}).items():
        for grade_id, cell_result in nb.get("cells", {}).items():
            cell = cells.get((notebook, grade_id))
            if cell is None:
                continue
            status = str(cell_result["status"])
            # An answer for a person to grade has no automatic score.
            auto = None if status == "needs_grading" else float(cell_result["score"])
            grade = current.get(cell.id)
            if grade is None:
                grade = Grade(
                    submission_id=submission.id,
                    cell_id=cell.id,
                    max_score=cell.points,
                    auto_score=auto,
                    status=status,
                    updated_at=now,
                )
                db.session.add(grade)
                db.session.flush()
                old = None
            elif (grade.auto_score, grade.status) == (auto, status):
                continue  # graded again, same result: nothing changes, nothing is recorded
            else:
                old = grade.auto_score
                grade.auto_score, grade.status, grade.updated_at = auto, status, now
            db.session.add(
                GradeEvent(
                    grade_id=grade.id,
                    source=GradeSource.AUTOGRADE,
                    job_id=job.id,
                    created_at=now,
                    old_score=old,
                    new_score=auto,
                    reason=f"autograde ({status})",
                )
            )


# --- People grading ---------------------------------------------------------------------


def grade_by_hand(
    submission: Submission,
    cell: GradedCell,
    actor: User,
    score: float | None,
    comment: str,
    reason: str = "",
) -> Grade:
    """A person scores (or comments on) one cell. Scoring an autograded cell overrides the
    autograder; score None keeps the score and changes only the comment (or clears an
    override). Every change is an event."""
    if score is not None and not 0 <= score <= cell.points:
        raise GradingError(
            _("A score must be between 0 and %(points)s.", points=f"{cell.points:g}")
        )
    if cell.notebook.assignment_id != submission.assignment_id:
        raise GradingError(_("This cell is not part of this submission's assignment."))
    grade = db.session.scalar(
        sa.select(Grade).where(Grade.submission_id == submission.id, Grade.cell_id == cell.id)
    )
    now = utcnow()
    if grade is None:
        grade = Grade(
            submission_id=submission.id,
            cell_id=cell.id,
            max_score=cell.points,
            status="needs_grading",
            updated_at=now,
        )
        db.session.add(grade)
        db.session.flush()
    comment = comment.strip()
    if grade.manual_score == score and grade.comment == comment:
        return grade
    autograded = cell.kind == "autograded"
    db.session.add(
        GradeEvent(
            grade_id=grade.id,
            source=GradeSource.OVERRIDE if autograded else GradeSource.MANUAL,
            actor_id=actor.id,
            created_at=now,
            old_score=grade.score,
            new_score=score if score is not None else grade.auto_score,
            comment=comment,
            reason=reason.strip()[:500],
        )
    )
    grade.manual_score = score
    grade.comment = comment
    grade.updated_at = now
    db.session.commit()
    completion.refresh(submission.cohort_id, [submission.user_id])
    return grade


# --- Feedback ---------------------------------------------------------------------------


def release_feedback(scheduled: CohortAssignment, released: bool = True) -> None:
    scheduled.feedback_released_at = utcnow() if released else None
    db.session.commit()


def feedback_released(submission: Submission) -> bool:
    released_at = db.session.scalar(
        sa.select(CohortAssignment.feedback_released_at).where(
            CohortAssignment.cohort_id == submission.cohort_id,
            CohortAssignment.assignment_id == submission.assignment_id,
        )
    )
    return released_at is not None


def latest_result(submission: Submission) -> GradingJob | None:
    """The submission's most recent finished autograding."""
    return db.session.scalar(
        sa.select(GradingJob)
        .where(GradingJob.submission_id == submission.id, GradingJob.state == JobState.DONE)
        .order_by(GradingJob.finished_at.desc(), GradingJob.id.desc())
        .limit(1)
    )

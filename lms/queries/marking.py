"""Submissions and their grades: the latest attempt (one definition), scores with the late
penalty applied, grading batches and the grade history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from lms.extensions import db
from lms.models import (
    AssignmentNotebook,
    Grade,
    GradedCell,
    GradeEvent,
    GradingBatch,
    GradingJob,
    JobState,
    Submission,
    User,
)
from lms.queries import schedules


@dataclass(frozen=True)
class SubmissionScore:
    """A submission with its score as shown to anyone: the sum of its current grades, less
    the late penalty that applies to the learner (extensions included)."""

    submission: Submission
    learner: User
    raw: float | None  # None until anything is graded
    max_score: float
    needs_grading: int  # answers waiting for a person
    job_state: str  # the latest grading job's state, or "" if never queued
    lateness: schedules.Lateness = schedules.ON_TIME

    @property
    def penalty_percent(self) -> float:
        return self.lateness.penalty_percent

    @property
    def late_seconds(self) -> int:
        """Late by the due date that applies now (an extension granted since counts)."""
        return self.lateness.late_seconds

    @property
    def final(self) -> float | None:
        if self.raw is None:
            return None
        return schedules.with_penalty(self.raw, self.penalty_percent)

    def to_json(self) -> dict[str, Any]:
        return {
            "submission": self.submission.id,
            "learner": self.learner.email,
            "attempt": self.submission.attempt,
            "submitted_at": self.submission.submitted_at.isoformat(),
            "score": self.final,
            "raw_score": self.raw,
            "max_score": self.max_score,
            "late_penalty_percent": self.penalty_percent,
            "needs_grading": self.needs_grading,
            "state": self.job_state or "submitted",
        }


def latest_attempt_numbers(
    assignment_ids: Sequence[int], cohort_id: int | None = None, users: set[int] | None = None
) -> sa.Subquery:
    """The one definition of a learner's *latest attempt*: per learner, assignment and cohort,
    the highest attempt number (user_id, assignment_id, cohort_id, attempt). Join Submission
    on all four to get the rows."""
    latest = sa.select(
        Submission.user_id,
        Submission.assignment_id,
        Submission.cohort_id,
        sa.func.max(Submission.attempt).label("attempt"),
    ).where(Submission.assignment_id.in_(assignment_ids))
    if cohort_id is not None:
        latest = latest.where(Submission.cohort_id == cohort_id)
    if users is not None:
        latest = latest.where(Submission.user_id.in_(users))
    return latest.group_by(
        Submission.user_id, Submission.assignment_id, Submission.cohort_id
    ).subquery()


def is_latest(latest: sa.Subquery) -> sa.ColumnElement[bool]:
    """The join condition of Submission with latest_attempt_numbers()."""
    return sa.and_(
        Submission.user_id == latest.c.user_id,
        Submission.assignment_id == latest.c.assignment_id,
        Submission.cohort_id == latest.c.cohort_id,
        Submission.attempt == latest.c.attempt,
    )


def latest_attempt_ids(assignment_id: int, cohort_id: int | None = None) -> sa.Select[tuple[int]]:
    """The ids of each learner's latest attempt (per cohort) at the assignment, as a select
    to embed in other queries."""
    latest = latest_attempt_numbers([assignment_id], cohort_id)
    return sa.select(Submission.id).join(latest, is_latest(latest))


def submission_scores(submissions: Sequence[Submission]) -> list[SubmissionScore]:
    """Scores of the given submissions (any assignments), in the order given; four queries."""
    if not submissions:
        return []
    ids = [s.id for s in submissions]
    graded = {
        sid: (raw, waiting)
        for sid, raw, waiting in db.session.execute(
            sa.select(
                Grade.submission_id,
                sa.func.sum(sa.func.coalesce(Grade.manual_score, Grade.auto_score)),
                sa.func.count(Grade.id).filter(
                    Grade.manual_score.is_(None), Grade.auto_score.is_(None)
                ),
            )
            .where(Grade.submission_id.in_(ids))
            .group_by(Grade.submission_id)
        ).tuples()
    }
    latest_job = (
        sa.select(GradingJob.submission_id, sa.func.max(GradingJob.id).label("job_id"))
        .where(GradingJob.submission_id.in_(ids))
        .group_by(GradingJob.submission_id)
        .subquery()
    )
    states = dict(
        db.session.execute(
            sa.select(latest_job.c.submission_id, GradingJob.state).join(
                GradingJob, GradingJob.id == latest_job.c.job_id
            )
        )
        .tuples()
        .all()
    )
    late = schedules.lateness(
        [(s.cohort_id, s.assignment_id, s.user_id, s.submitted_at) for s in submissions]
    )
    rows = []
    for s, lateness in zip(submissions, late, strict=True):
        raw, waiting = graded.get(s.id, (None, 0))
        rows.append(
            SubmissionScore(
                submission=s,
                learner=s.user,
                raw=None if raw is None else float(raw),
                max_score=s.assignment.points,
                lateness=lateness,
                needs_grading=int(waiting or 0),
                job_state=str(states.get(s.id, "")),
            )
        )
    return rows


def learner_submissions(user_id: int, assignment_id: int, cohort_id: int) -> list[Submission]:
    """The learner's attempts at the assignment in the cohort, newest first."""
    return list(
        db.session.scalars(
            sa.select(Submission)
            .where(
                Submission.user_id == user_id,
                Submission.assignment_id == assignment_id,
                Submission.cohort_id == cohort_id,
            )
            .order_by(Submission.attempt.desc())
        )
    )


def submission_grades(submission: Submission) -> list[tuple[GradedCell, Grade | None]]:
    """Every graded cell of the submission's assignment, in notebook order, with its grade."""
    cells = db.session.scalars(
        sa.select(GradedCell)
        .join(AssignmentNotebook, AssignmentNotebook.id == GradedCell.notebook_id)
        .where(AssignmentNotebook.assignment_id == submission.assignment_id)
        .order_by(AssignmentNotebook.name, GradedCell.position)
    ).all()
    grades = {
        g.cell_id: g
        for g in db.session.scalars(sa.select(Grade).where(Grade.submission_id == submission.id))
    }
    return [(cell, grades.get(cell.id)) for cell in cells]


def cell_grades(cell_id: int, submission_ids: Sequence[int]) -> dict[int, Grade]:
    """Submission id -> its grade of one graded cell (submissions without one are left out)."""
    if not submission_ids:
        return {}
    return {
        g.submission_id: g
        for g in db.session.scalars(
            sa.select(Grade).where(
                Grade.cell_id == cell_id, Grade.submission_id.in_(submission_ids)
            )
        )
    }


def ungraded_counts(cell_ids: Sequence[int], submission_ids: Sequence[int]) -> dict[int, int]:
    """Graded cell id -> how many of the submissions have no score for it yet (not graded by
    the autograder, or an answer waiting for a person)."""
    if not cell_ids:
        return {}
    scored: dict[int, int] = {}
    if submission_ids:
        scored = dict(
            db.session.execute(
                sa.select(Grade.cell_id, sa.func.count(Grade.id))
                .where(
                    Grade.cell_id.in_(cell_ids),
                    Grade.submission_id.in_(submission_ids),
                    sa.func.coalesce(Grade.manual_score, Grade.auto_score).is_not(None),
                )
                .group_by(Grade.cell_id)
            )
            .tuples()
            .all()
        )
    return {cell_id: len(submission_ids) - scored.get(cell_id, 0) for cell_id in cell_ids}


def assignment_batches(assignment_id: int, limit: int = 10) -> list[GradingBatch]:
    """The assignment's most recent grading batches, newest first."""
    from sqlalchemy.orm import selectinload

    return list(
        db.session.scalars(
            sa.select(GradingBatch)
            .where(GradingBatch.assignment_id == assignment_id)
            .options(selectinload(GradingBatch.cohort), selectinload(GradingBatch.created_by))
            .order_by(GradingBatch.id.desc())
            .limit(limit)
        )
    )


def batch_failures(batch_id: int, limit: int = 100) -> list[GradingJob]:
    """The batch's failed jobs with their submissions and learners, oldest first."""
    from sqlalchemy.orm import selectinload

    return list(
        db.session.scalars(
            sa.select(GradingJob)
            .where(GradingJob.batch_id == batch_id, GradingJob.state == JobState.FAILED)
            .options(selectinload(GradingJob.submission).selectinload(Submission.user))
            .order_by(GradingJob.id)
            .limit(limit)
        )
    )


def grade_history(submission_id: int) -> list[GradeEvent]:
    """Every change to the submission's grades, oldest first, with cell and actor loaded."""
    from sqlalchemy.orm import selectinload

    return list(
        db.session.scalars(
            sa.select(GradeEvent)
            .join(Grade, Grade.id == GradeEvent.grade_id)
            .where(Grade.submission_id == submission_id)
            .options(
                selectinload(GradeEvent.grade)
                .selectinload(Grade.cell)
                .selectinload(GradedCell.notebook),
                selectinload(GradeEvent.actor),
            )
            .order_by(GradeEvent.created_at, GradeEvent.id)
        )
    )


def submission_learners(submissions: Sequence[Submission]) -> dict[int, User]:
    """User id -> learner of the given submissions, in one query. The learners stay in the
    session, so `submission.user` then needs no query of its own per row."""
    ids = {s.user_id for s in submissions}
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}


def assignment_submissions(assignment_id: int, cohort_id: int | None = None) -> list[Submission]:
    """Every attempt at the assignment (of one cohort, when given), oldest first, with its
    learner and cohort loaded."""
    query = (
        sa.select(Submission)
        .where(Submission.assignment_id == assignment_id)
        .options(selectinload(Submission.user), selectinload(Submission.cohort))
        .order_by(Submission.id)
    )
    if cohort_id is not None:
        query = query.where(Submission.cohort_id == cohort_id)
    return list(db.session.scalars(query))

"""Read-only queries for pages, exports and the API. Nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentNotebook,
    Cohort,
    CohortAssignment,
    Course,
    Enrolment,
    EnrolmentStatus,
    Grade,
    GradedCell,
    GradeEvent,
    GradingBatch,
    GradingJob,
    JobState,
    Program,
    Release,
    Submission,
    User,
    cohort_courses,
)
from lms.services import deadlines

# Enrolment states that count toward a target, and those past each milestone.
COUNTED = (EnrolmentStatus.ENROLLED, EnrolmentStatus.COMPLETED, EnrolmentStatus.CERTIFIED)
COMPLETED = (EnrolmentStatus.COMPLETED, EnrolmentStatus.CERTIFIED)


@dataclass(frozen=True)
class Progress:
    """Learner counts of one program or cohort against a target."""

    target: int
    enrolled: int
    completed: int
    certified: int

    @property
    def completed_percent(self) -> float:
        return 100.0 * self.completed / self.target if self.target else 0.0

    @property
    def enrolled_percent(self) -> float:
        return 100.0 * self.enrolled / self.target if self.target else 0.0


def _counts() -> tuple[sa.ColumnElement[int], ...]:
    return (
        sa.func.count(Enrolment.id).filter(Enrolment.status.in_(COUNTED)),
        sa.func.count(Enrolment.id).filter(Enrolment.status.in_(COMPLETED)),
        sa.func.count(Enrolment.id).filter(Enrolment.status == EnrolmentStatus.CERTIFIED),
    )


def program_progress(program_ids: set[int] | None) -> list[tuple[Program, Progress]]:
    """Each program (all when program_ids is None) with its counts, by name."""
    query = (
        sa.select(Program, *_counts())
        .outerjoin(Cohort, Cohort.program_id == Program.id)
        .outerjoin(Enrolment, Enrolment.cohort_id == Cohort.id)
        .group_by(Program.id)
        .order_by(Program.name)
    )
    if program_ids is not None:
        query = query.where(Program.id.in_(program_ids))
    return [
        (program, Progress(program.target_learners, enrolled, completed, certified))
        for program, enrolled, completed, certified in db.session.execute(query).tuples()
    ]


def course_learner_counts(course_ids: Sequence[int]) -> dict[int, int]:
    """Learners (not withdrawn) in cohorts that take each course."""
    query = (
        sa.select(cohort_courses.c.course_id, sa.func.count(Enrolment.id))
        .join(Enrolment, Enrolment.cohort_id == cohort_courses.c.cohort_id)
        .where(cohort_courses.c.course_id.in_(course_ids), Enrolment.status.in_(COUNTED))
        .group_by(cohort_courses.c.course_id)
    )
    return dict(db.session.execute(query).tuples().all())


def courses(course_ids: set[int] | None) -> list[Course]:
    query = sa.select(Course).order_by(Course.title)
    if course_ids is not None:
        query = query.where(Course.id.in_(course_ids))
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class ScheduledAssignment:
    """An assignment as one cohort meets it: its dates and whether a release exists."""

    assignment: Assignment
    opens_at: datetime | None
    due_at: datetime | None
    release: Release | None

    def is_open(self, now: datetime) -> bool:
        return self.opens_at is not None and self.opens_at <= now


def learner_enrolment(user_id: int, cohort_slug: str) -> Enrolment | None:
    """The user's live enrolment in the cohort (None if not enrolled or withdrawn)."""
    return db.session.scalar(
        sa.select(Enrolment)
        .join(Cohort, Cohort.id == Enrolment.cohort_id)
        .where(
            Enrolment.user_id == user_id,
            Cohort.slug == cohort_slug,
            Enrolment.status != EnrolmentStatus.WITHDRAWN,
        )
    )


def cohort_course_assignments(cohort: Cohort, course: Course) -> list[ScheduledAssignment]:
    """The course's active assignments in order, with this cohort's dates and the release."""
    query = (
        sa.select(Assignment, CohortAssignment.opens_at, CohortAssignment.due_at, Release)
        .outerjoin(
            CohortAssignment,
            sa.and_(
                CohortAssignment.assignment_id == Assignment.id,
                CohortAssignment.cohort_id == cohort.id,
            ),
        )
        .outerjoin(
            Release,
            sa.and_(Release.assignment_id == Assignment.id, Release.version == Assignment.version),
        )
        .where(Assignment.course_id == course.id, Assignment.active.is_(True))
        .order_by(Assignment.position)
    )
    return [
        ScheduledAssignment(assignment, opens_at, due_at, release)
        for assignment, opens_at, due_at, release in db.session.execute(query).tuples()
    ]


# --- Grading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionScore:
    """A submission with its score as shown to anyone: the sum of its current grades, less
    the late penalty that applies to the learner (extensions included)."""

    submission: Submission
    learner: User
    raw: float | None  # None until anything is graded
    max_score: float
    penalty_percent: float
    needs_grading: int  # answers waiting for a person
    job_state: str  # the latest grading job's state, or "" if never queued

    @property
    def final(self) -> float | None:
        if self.raw is None:
            return None
        return deadlines.with_penalty(self.raw, self.penalty_percent)

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
    penalties = deadlines.late_penalties(
        [(s.cohort_id, s.assignment_id, s.user_id, s.submitted_at) for s in submissions]
    )
    rows = []
    for s, penalty in zip(submissions, penalties, strict=True):
        raw, waiting = graded.get(s.id, (None, 0))
        rows.append(
            SubmissionScore(
                submission=s,
                learner=s.user,
                raw=None if raw is None else float(raw),
                max_score=s.assignment.points,
                penalty_percent=penalty,
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


# --- Instructor grading pages ------------------------------------------------------------


def course_cohorts(course_id: int) -> list[Cohort]:
    """The cohorts taking the course, newest first."""
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
            .where(cohort_courses.c.course_id == course_id)
            .order_by(Cohort.starts_on.desc(), Cohort.name)
        )
    )


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


def assignment_schedules(assignment_id: int) -> list[tuple[Cohort, CohortAssignment]]:
    """Each cohort that has the assignment, with its dates and late policy, newest first."""
    return list(
        db.session.execute(
            sa.select(Cohort, CohortAssignment)
            .join(CohortAssignment, CohortAssignment.cohort_id == Cohort.id)
            .where(CohortAssignment.assignment_id == assignment_id)
            .order_by(Cohort.starts_on.desc(), Cohort.name)
        ).tuples()
    )

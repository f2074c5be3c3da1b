"""Where a learner stands in a course: per assignment its state (not open, not started, in
the lab, submitted, graded, passed), the due date that applies to them, the score they may see
and what to do next. One home for *My learning* and the learner's course page."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lms.extensions import db
from lms.models import Cohort, CohortAssignment, Course, LabKernel, Submission
from lms.queries import marking, schedules


class Standing(enum.StrEnum):
    NOT_RELEASED = "not-released"
    NOT_OPEN = "not-open"
    NOT_STARTED = "not-started"
    IN_LAB = "in-lab"
    SUBMITTED = "submitted"
    GRADED = "graded"
    PASSED = "passed"


@dataclass(frozen=True)
class AssignmentStanding:
    scheduled: schedules.ScheduledAssignment
    standing: Standing
    due_at: datetime | None  # the learner's own: an extension replaces the cohort's date
    extended: bool
    latest: Submission | None
    # Only once the instructor released feedback: before that a learner sees no score.
    score: marking.SubmissionScore | None

    @property
    def assignment_id(self) -> int:
        return self.scheduled.assignment.id

    @property
    def to_do(self) -> bool:
        """Open and nothing submitted yet: the work in front of the learner."""
        return self.standing in (Standing.NOT_STARTED, Standing.IN_LAB)


def course_standings(
    user_id: int, cohort: Cohort, course: Course, now: datetime
) -> list[AssignmentStanding]:
    """Each active assignment of the course as the learner meets it in the cohort, in course
    order. A fixed handful of queries, however many assignments."""
    rows = schedules.cohort_course_assignments(cohort, course)
    if not rows:
        return []
    ids = [row.assignment.id for row in rows]
    extended = schedules.extended_due_dates(user_id, cohort.id)
    released = {
        assignment_id
        for assignment_id, at in db.session.execute(
            sa.select(CohortAssignment.assignment_id, CohortAssignment.feedback_released_at).where(
                CohortAssignment.cohort_id == cohort.id, CohortAssignment.assignment_id.in_(ids)
            )
        ).tuples()
        if at is not None
    }
    latest = _latest_attempts(user_id, cohort.id, ids)
    shown = [s for s in latest.values() if s.assignment_id in released]
    scores = {score.submission.id: score for score in marking.submission_scores(shown)}
    in_lab = set(
        db.session.scalars(
            sa.select(LabKernel.assignment_id)
            .where(LabKernel.user_id == user_id, LabKernel.assignment_id.in_(ids))
            .distinct()
        )
    )
    found = []
    for row in rows:
        a = row.assignment
        submission = latest.get(a.id)
        score = scores.get(submission.id) if submission is not None else None
        own_due = extended.get((cohort.id, a.id))
        found.append(
            AssignmentStanding(
                scheduled=row,
                standing=_standing(row, now, submission, score, a.id in in_lab),
                due_at=own_due or row.due_at,
                extended=own_due is not None,
                latest=submission,
                score=score,
            )
        )
    return found


def _standing(
    row: schedules.ScheduledAssignment,
    now: datetime,
    submission: Submission | None,
    score: marking.SubmissionScore | None,
    worked_in_lab: bool,
) -> Standing:
    if submission is not None:
        if score is None or score.final is None:
            return Standing.SUBMITTED
        return Standing.PASSED if row.assignment.passed_by(score.final) else Standing.GRADED
    if row.release is None:
        return Standing.NOT_RELEASED
    if not row.is_open(now):
        return Standing.NOT_OPEN
    return Standing.IN_LAB if worked_in_lab else Standing.NOT_STARTED


def _latest_attempts(
    user_id: int, cohort_id: int, assignment_ids: Sequence[int]
) -> dict[int, Submission]:
    latest = marking.latest_attempt_numbers(assignment_ids, cohort_id, users={user_id})
    return {
        s.assignment_id: s
        for s in db.session.scalars(sa.select(Submission).join(latest, marking.is_latest(latest)))
    }


def next_due(standings: Sequence[AssignmentStanding]) -> AssignmentStanding | None:
    """The open assignment with nothing submitted whose due date comes first."""
    waiting = [s for s in standings if s.to_do and s.due_at is not None]
    return min(waiting, key=lambda s: s.due_at or datetime.max, default=None)

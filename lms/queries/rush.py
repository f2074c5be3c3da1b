"""The rush before a deadline, planned: which assignments fall due soon, for how many learners,
how many of them have yet to submit, the peak of submissions per minute to expect, the grading
processes that peak needs on its lane, and when their grading pools are warmed (the worker
does, PREWARM_MINUTES ahead: lms.worker.prewarm). Admins see it on /admin/rush.

The arrival profile is the one benchmarks/deadline.py replays and the README's capacity model
uses: a rate rising exponentially to the due time with a time constant of a quarter of the
hour, so the due time sees 4.07 times the hour's average. Of the learners yet to submit an
hour before, half are assumed to submit in that hour. "Processes needed" keeps up with the
peak minute itself: a safe side, since the README's model shows a backlog at the peak drains
within a minute's p95 on fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from lms.extensions import db
from lms.models import Assignment, CohortAssignment, Course, Enrolment, Submission
from lms.queries.enrolments import COUNTED

# Share of the learners yet to submit who do so in the last hour before the due time.
LAST_HOUR_SHARE = 0.5
# Arrivals rise exponentially to the due time, time constant a quarter of the hour: the rate
# at the due time over the hour's average is 4 / (1 - e^-4).
PEAK_OVER_AVERAGE = 4 / (1 - math.exp(-4))


@dataclass(frozen=True)
class Rush:
    """One assignment falling due for one cohort."""

    scheduled_id: int
    assignment_id: int
    course_title: str
    assignment_title: str
    cohort_name: str
    due_at: datetime
    learners: int
    submitted: int
    lane: str  # "cpu" or "gpu": the workers that grade it
    instant_feedback: bool
    warm_from: datetime

    @property
    def to_come(self) -> int:
        return max(0, self.learners - self.submitted)

    @property
    def peak_per_minute(self) -> float:
        """Submissions per minute in the last minute before the due time, as modelled."""
        return self.to_come * LAST_HOUR_SHARE / 60 * PEAK_OVER_AVERAGE

    def processes_needed(self, per_process_per_minute: float) -> int:
        """Grading processes that keep up with the peak (at least one)."""
        if per_process_per_minute <= 0:
            return 1
        return max(1, math.ceil(self.peak_per_minute / per_process_per_minute))

    def warm(self, now: datetime) -> bool:
        """Inside its warm window: from warm_from until an hour past the due time."""
        return self.warm_from <= now <= self.due_at + timedelta(hours=1)


def upcoming(
    now: datetime, within: timedelta, prewarm: timedelta, gpu_lane: bool = True
) -> list[Rush]:
    """The assignments due between an hour ago and `within` from now, soonest first; lane
    "gpu" for GPU assignments of courses that do not grade them on the CPU (gpu_lane False:
    as if no GPU worker were alive, so that courses allowing the CPU use it)."""
    learners = (
        sa.select(sa.func.count(Enrolment.id))
        .where(Enrolment.cohort_id == CohortAssignment.cohort_id, Enrolment.status.in_(COUNTED))
        .scalar_subquery()
    )
    submitted = (
        sa.select(sa.func.count(sa.distinct(Submission.user_id)))
        .where(
            Submission.assignment_id == CohortAssignment.assignment_id,
            Submission.cohort_id == CohortAssignment.cohort_id,
        )
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(CohortAssignment, learners, submitted)
        .join(Assignment, Assignment.id == CohortAssignment.assignment_id)
        .where(
            CohortAssignment.due_at >= now - timedelta(hours=1),
            CohortAssignment.due_at <= now + within,
            Assignment.active.is_(True),
        )
        .order_by(CohortAssignment.due_at, CohortAssignment.id)
    ).tuples()
    plan = []
    for scheduled, learner_count, submitted_count in rows:
        assignment: Assignment = scheduled.assignment
        course: Course = assignment.course
        on_gpu = assignment.gpu and (gpu_lane or not course.gpu_on_cpu)
        plan.append(
            Rush(
                scheduled_id=scheduled.id,
                assignment_id=assignment.id,
                course_title=course.title,
                assignment_title=assignment.title,
                cohort_name=scheduled.cohort.name,
                due_at=scheduled.due_at,
                learners=int(learner_count or 0),
                submitted=int(submitted_count or 0),
                lane="gpu" if on_gpu else "cpu",
                instant_feedback=assignment.instant_feedback,
                warm_from=scheduled.due_at - prewarm,
            )
        )
    return plan

"""Read-only figures of a program's progress toward its target: active learners, the forecast
of the date the target is reached, completions per week. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from lms.extensions import db
from lms.models import Cohort, Enrolment, EnrolmentStatus, Program, Submission, utcnow

# Learners who count as active when they submit, and those who count as completions.
ACTIVE = (EnrolmentStatus.ENROLLED, EnrolmentStatus.COMPLETED)
COMPLETED = (EnrolmentStatus.COMPLETED, EnrolmentStatus.CERTIFIED)
# The trailing window over which the completion rate is measured.
RATE_WEEKS = 8


def _completed_at() -> sa.ColumnElement[datetime | None]:
    # A certified learner without a completion date (set by hand) completed when certified.
    return sa.func.coalesce(Enrolment.completed_at, Enrolment.certified_at)


def active_learners(program_id: int, days: int | None = None, now: datetime | None = None) -> int:
    """Enrolled or completed learners of the program who submitted anything in its cohorts in
    the last `days` days (default: the ACTIVE_DAYS setting)."""
    if days is None:
        days = int(current_app.config["ACTIVE_DAYS"])
    since = (now or utcnow()) - timedelta(days=days)
    submitted = sa.exists().where(
        Submission.user_id == Enrolment.user_id,
        Submission.cohort_id == Enrolment.cohort_id,
        Submission.submitted_at >= since,
    )
    return (
        db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Enrolment.user_id)))
            .join(Cohort, Cohort.id == Enrolment.cohort_id)
            .where(Cohort.program_id == program_id, Enrolment.status.in_(ACTIVE), submitted)
        )
        or 0
    )


@dataclass(frozen=True)
class Forecast:
    """Completions against the program's target, and when the target is reached at the rate
    of the last RATE_WEEKS weeks."""

    target: int
    target_date: date
    completed: int  # completed and certified
    rate_per_week: float  # completions per week over the last RATE_WEEKS weeks
    forecast_date: date | None  # None when reached or when the rate is 0
    weekly_needed: float | None  # None when the target date has passed and it is not reached

    @property
    def remaining(self) -> int:
        return max(0, self.target - self.completed)

    @property
    def reached(self) -> bool:
        return self.remaining == 0

    @property
    def on_track(self) -> bool:
        if self.reached:
            return True
        return self.forecast_date is not None and self.forecast_date <= self.target_date


def forecast(program: Program, now: datetime | None = None) -> Forecast:
    """Two queries: completions so far and those of the trailing window."""
    now = now or utcnow()
    completed_at = _completed_at()
    completed, recent = db.session.execute(
        sa.select(
            sa.func.count(Enrolment.id),
            sa.func.count(Enrolment.id).filter(
                completed_at > now - timedelta(weeks=RATE_WEEKS), completed_at <= now
            ),
        )
        .join(Cohort, Cohort.id == Enrolment.cohort_id)
        .where(Cohort.program_id == program.id, Enrolment.status.in_(COMPLETED))
    ).one()
    rate = recent / RATE_WEEKS
    remaining = max(0, program.target_learners - completed)
    forecast_date = None
    if remaining and rate:
        forecast_date = (now + timedelta(weeks=remaining / rate)).date()
    weeks_left = (program.target_date - now.date()).days / 7
    weekly_needed: float | None
    if not remaining:
        weekly_needed = 0.0
    elif weeks_left > 0:
        weekly_needed = remaining / weeks_left
    else:
        weekly_needed = None
    return Forecast(
        target=program.target_learners,
        target_date=program.target_date,
        completed=completed,
        rate_per_week=rate,
        forecast_date=forecast_date,
        weekly_needed=weekly_needed,
    )


def completions_by_week(program_id: int) -> list[tuple[date, int]]:
    """Cumulative completions (completed and certified) at the end of each ISO week, named by
    its Monday, from the first week with a completion to the last, without gaps."""
    moments = db.session.scalars(
        sa.select(_completed_at())
        .join(Cohort, Cohort.id == Enrolment.cohort_id)
        .where(
            Cohort.program_id == program_id,
            Enrolment.status.in_(COMPLETED),
            _completed_at().is_not(None),
        )
    ).all()
    per_week: dict[date, int] = {}
    for moment in moments:
        if moment is None:
            continue
        day = moment.date()
        monday = day - timedelta(days=day.weekday())
        per_week[monday] = per_week.get(monday, 0) + 1
    if not per_week:
        return []
    weeks = []
    total = 0
    week, last = min(per_week), max(per_week)
    while week <= last:
        total += per_week.get(week, 0)
        weeks.append((week, total))
        week += timedelta(weeks=1)
    return weeks

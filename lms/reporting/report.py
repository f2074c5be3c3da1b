"""A progress report as data: what the CSV, XLSX and PDF exports of a program, a cohort or a
course write, built once from the same queries as the dashboard, so the numbers shown and the
numbers exported are the same numbers.

A report has a summary (label, value), the funnel and completions-over-time data its charts
are drawn from, a few small tables (per cohort, per organisation) and one large table with a
row per learner that is produced lazily, so 50,000 rows are streamed, never held in a list of
objects.

Over 400 lines on purpose: the Report type and its three builders (program, cohort, course)
share the column, funnel and learner-row helpers; apart, each would import the others'
private parts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from flask_babel import gettext as _

from lms.extensions import db
from lms.labels import label
from lms.models import (
    Assignment,
    Cohort,
    Course,
    Enrolment,
    EnrolmentStatus,
    Organisation,
    Program,
    Submission,
    User,
    cohort_courses,
    utcnow,
)
from lms.queries import gradebook, progress
from lms.queries.progress import Forecast

ColumnKind = Literal["text", "int", "float", "percent", "date", "datetime"]
Scope = Literal["program", "cohort", "course"]


@dataclass(frozen=True)
class Column:
    label: str
    kind: ColumnKind = "text"
    width: int = 14  # characters, a hint for XLSX and PDF


@dataclass(frozen=True)
class Table:
    """Rows of plain values (str, int, float, date, datetime or None) under columns.
    `rows` is called to produce the rows; it can be called more than once."""

    title: str
    columns: Sequence[Column]
    rows: Callable[[], Iterable[Sequence[Any]]]
    count: int


@dataclass(frozen=True)
class Report:
    scope: Scope
    slug: str  # of the program, cohort or course: names the file
    title: str
    generated_at: datetime
    summary: Sequence[tuple[str, Any]]
    # (stage label, learners): target, enrolled, active, completed, certified.
    funnel: Sequence[tuple[str, int]]
    forecast: Forecast | None  # programs only
    # Cumulative completions at the end of each week (named by its Monday).
    weekly: Sequence[tuple[date, int]]
    start: date | None  # where the straight line to the target starts
    tables: Sequence[Table] = field(default_factory=list)  # small: per cohort, per organisation
    learners: Table | None = None  # the large one

    def file_name(self, extension: str) -> str:
        return f"{self.scope}-{self.slug}-progress-{self.generated_at:%Y-%m-%d}.{extension}"


# --- Builders ----------------------------------------------------------------------------


def _funnel_columns() -> list[Column]:
    return [
        Column(_("Enrolled"), "int", 10),
        Column(_("Active"), "int", 10),
        Column(_("Completed"), "int", 10),
        Column(_("Certified"), "int", 10),
        Column(_("Withdrawn"), "int", 10),
        Column(_("Stalled"), "int", 10),
        Column(_("Completed of enrolled"), "percent", 12),
    ]


def _funnel_values(f: progress.Funnel) -> list[Any]:
    return [
        f.enrolled,
        f.active,
        f.completed,
        f.certified,
        f.withdrawn,
        f.stalled,
        round(f.completed_percent / 100, 4),
    ]


def _stages(f: progress.Funnel, target: int | None) -> list[tuple[str, int]]:
    stages = [] if target is None else [(_("Target"), target)]
    return [
        *stages,
        (_("Enrolled"), f.enrolled),
        (_("Active"), f.active),
        (_("Completed"), f.completed),
        (_("Certified"), f.certified),
    ]


def _funnel_summary(f: progress.Funnel, active_days: int) -> list[tuple[str, Any]]:
    return [
        (_("Enrolled"), f.enrolled),
        (_("Active (submitted in the last %(days)s days)", days=active_days), f.active),
        (_("Completed"), f.completed),
        (_("Certified"), f.certified),
        (_("Withdrawn"), f.withdrawn),
        (_("Stalled (enrolled, nothing submitted lately)"), f.stalled),
    ]


def forecast_summary(f: Forecast) -> list[tuple[str, Any]]:
    return [
        (_("Target"), f.target),
        (_("Target date"), f.target_date),
        (
            _("Completions per week (last %(weeks)s weeks)", weeks=progress.RATE_WEEKS),
            f.rate_per_week,
        ),
        (_("Forecast date of the target"), f.forecast_date or _("not at the current rate")),
        (
            _("Completions needed per week"),
            "" if f.weekly_needed is None else round(f.weekly_needed, 1),
        ),
        (_("On track"), _("yes") if f.on_track else _("no")),
    ]


def program_report(program: Program, now: datetime | None = None) -> Report:
    now = now or utcnow()
    board = progress.dashboard(program, _("No organisation"), now)
    learners = program_learner_rows(program.id)
    return Report(
        scope="program",
        slug=program.slug,
        title=program.name,
        generated_at=now,
        summary=[
            *forecast_summary(board.forecast),
            *_funnel_summary(board.totals, board.active_days),
        ],
        funnel=_stages(board.totals, program.target_learners),
        forecast=board.forecast,
        weekly=board.weekly,
        start=board.start,
        tables=[
            Table(
                _("Cohorts"),
                [
                    Column(_("Cohort"), "text", 28),
                    Column(_("Organisation"), "text", 24),
                    Column(_("Starts"), "date", 11),
                    Column(_("Ends"), "date", 11),
                    *_funnel_columns(),
                ],
                lambda: [
                    [f.name, f.organisation, f.starts_on, f.ends_on, *_funnel_values(f)]
                    for f in board.cohorts
                ],
                len(board.cohorts),
            ),
            Table(
                _("Organisations"),
                [Column(_("Organisation"), "text", 32), *_funnel_columns()],
                lambda: [[f.name, *_funnel_values(f)] for f in board.organisations],
                len(board.organisations),
            ),
        ],
        learners=learners,
    )


def _learner_columns() -> list[Column]:
    return [
        Column(_("Cohort"), "text", 24),
        Column(_("Organisation"), "text", 24),
        Column(_("Learner"), "text", 24),
        Column(_("Email"), "text", 30),
        Column(_("Status"), "text", 11),
        Column(_("Enrolled on"), "date", 11),
        Column(_("Assignments submitted"), "int", 11),
        Column(_("Assignments required"), "int", 11),
        Column(_("Last submission"), "date", 11),
        Column(_("Completed on"), "date", 11),
        Column(_("Certified on"), "date", 11),
    ]


def program_learner_rows(program_id: int) -> Table:
    """A row per enrolment in the program: one aggregate query over the submissions, streamed."""
    required = required_counts(program_id)
    count = (
        db.session.scalar(
            sa.select(sa.func.count(Enrolment.id))
            .join(Cohort, Cohort.id == Enrolment.cohort_id)
            .where(Cohort.program_id == program_id)
        )
        or 0
    )
    statuses = {status.value: label(status) for status in EnrolmentStatus}

    def rows() -> Iterator[list[Any]]:
        for row in db.session.execute(
            learner_query(program_id).execution_options(yield_per=5000)
        ).tuples():
            cohort_id, cohort, organisation, name, email, status, enrolled_at = row[:7]
            submitted, last, completed_at, certified_at = row[7:]
            yield [
                cohort,
                organisation or "",
                name,
                email,
                statuses.get(status, status),
                _day(enrolled_at),
                submitted or 0,
                required.get(cohort_id, 0),
                _day(last),
                _day(completed_at),
                _day(certified_at),
            ]

    return Table(_("Learners"), _learner_columns(), rows, count)


def submission_aggregate(program_id: int) -> sa.Subquery:
    """Per learner and cohort of the program: assignments submitted and the last submission.
    The bare aggregate query that benchmarks/reports.py measures exports against."""
    return (
        sa.select(
            Submission.user_id,
            Submission.cohort_id,
            # Attempts are numbered from 1 per assignment: one first attempt per assignment
            # submitted (a DISTINCT count is several times slower on PostgreSQL).
            sa.func.count().filter(Submission.attempt == 1).label("submitted"),
            sa.func.max(Submission.submitted_at).label("last"),
        )
        .where(
            Submission.cohort_id.in_(
                sa.select(Cohort.id).where(Cohort.program_id == program_id).scalar_subquery()
            )
        )
        .group_by(Submission.user_id, Submission.cohort_id)
        .subquery()
    )


def learner_query(program_id: int) -> sa.Select[Any]:
    agg = submission_aggregate(program_id)
    return (
        sa.select(
            Enrolment.cohort_id,
            Cohort.name,
            Organisation.name,
            User.name,
            User.email,
            Enrolment.status,
            sa.func.date(Enrolment.enrolled_at),
            agg.c.submitted,
            sa.func.date(agg.c.last),
            sa.func.date(Enrolment.completed_at),
            sa.func.date(Enrolment.certified_at),
        )
        .select_from(Enrolment)
        .join(Cohort, Cohort.id == Enrolment.cohort_id)
        .join(User, User.id == Enrolment.user_id)
        .outerjoin(Organisation, Organisation.id == User.organisation_id)
        .outerjoin(agg, sa.and_(agg.c.user_id == Enrolment.user_id, agg.c.cohort_id == Cohort.id))
        .where(Cohort.program_id == program_id)
        .order_by(Cohort.starts_on, Cohort.name, User.name, User.id)
    )


def required_counts(program_id: int) -> dict[int, int]:
    """Cohort id -> how many active assignments its courses have."""
    return dict(
        db.session.execute(
            sa.select(cohort_courses.c.cohort_id, sa.func.count(Assignment.id))
            .join(Assignment, Assignment.course_id == cohort_courses.c.course_id)
            .join(Cohort, Cohort.id == cohort_courses.c.cohort_id)
            .where(Cohort.program_id == program_id, Assignment.active.is_(True))
            .group_by(cohort_courses.c.cohort_id)
        )
        .tuples()
        .all()
    )


def _day(moment: datetime | date | str | None) -> date | None:
    """A date from a datetime, or from SQL's date(): text on SQLite, a date on PostgreSQL."""
    if moment is None:
        return None
    if isinstance(moment, str):
        return date.fromisoformat(moment[:10])
    return moment.date() if isinstance(moment, datetime) else moment


def _score(attempt: gradebook.Attempt | None) -> float | None:
    final = attempt.final if attempt is not None else None
    return None if final is None else round(final, 2)


def _assignment_columns(assignments: Sequence[Assignment]) -> list[Column]:
    return [Column(f"{a.title} ({a.points:g})", "float", 10) for a in assignments]


def cohort_report(cohort: Cohort, now: datetime | None = None) -> Report:
    now = now or utcnow()
    cohorts, _organisations = progress.breakdowns(cohort.program_id, _("No organisation"), now)
    [funnel] = [f for f in cohorts if f.slug == cohort.slug]
    book = gradebook.gradebook(cohort)
    statuses = {status: label(status) for status in EnrolmentStatus}

    def rows() -> Iterator[list[Any]]:
        for row in book.sort("name"):
            yield [
                row.learner.name,
                row.learner.email,
                row.learner.organisation.name if row.learner.organisation else "",
                statuses[row.enrolment.status],
                *[_score(row.attempts.get(a.id)) for a in book.assignments],
                row.passed(book.assignments),
                len(book.assignments),
                _day(row.enrolment.completed_at),
                _day(row.enrolment.certified_at),
            ]

    return Report(
        scope="cohort",
        slug=cohort.slug,
        title=f"{cohort.program.name}: {cohort.name}",
        generated_at=now,
        summary=[
            (_("Program"), cohort.program.name),
            (_("Cohort"), cohort.name),
            (_("Dates"), f"{cohort.starts_on} – {cohort.ends_on}"),
            *_funnel_summary(funnel, progress.active_days()),
        ],
        funnel=_stages(funnel, None),
        forecast=None,
        weekly=progress.completions_by_week(cohort.program_id, cohort_id=cohort.id),
        start=cohort.starts_on,
        learners=Table(
            _("Learners"),
            [
                Column(_("Learner"), "text", 24),
                Column(_("Email"), "text", 30),
                Column(_("Organisation"), "text", 24),
                Column(_("Status"), "text", 11),
                *_assignment_columns(book.assignments),
                Column(_("Assignments passed"), "int", 10),
                Column(_("Assignments required"), "int", 10),
                Column(_("Completed on"), "date", 11),
                Column(_("Certified on"), "date", 11),
            ],
            rows,
            len(book.rows),
        ),
    )


def course_report(
    course: Course, cohort_ids: set[int] | None = None, now: datetime | None = None
) -> Report:
    """The course's assignments across the cohorts that take it (those of cohort_ids only,
    when given): per learner, per cohort and per assignment."""
    now = now or utcnow()
    query = (
        sa.select(Cohort)
        .join(cohort_courses, cohort_courses.c.cohort_id == Cohort.id)
        .where(cohort_courses.c.course_id == course.id)
        .order_by(Cohort.starts_on, Cohort.name)
    )
    if cohort_ids is not None:
        query = query.where(Cohort.id.in_(cohort_ids))
    cohorts = list(db.session.scalars(query))
    assignments = list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.course_id == course.id, Assignment.active.is_(True))
            .order_by(Assignment.position)
        )
    )
    ids = [a.id for a in assignments]
    statuses = {status: label(status) for status in EnrolmentStatus}
    learners = dict(
        db.session.execute(
            sa.select(Enrolment.cohort_id, sa.func.count(Enrolment.id))
            .where(Enrolment.cohort_id.in_([c.id for c in cohorts]))
            .group_by(Enrolment.cohort_id)
        )
        .tuples()
        .all()
    )

    # Per cohort and per assignment figures need every score; learner rows are made again
    # cohort by cohort when written, so only one cohort's scores are held at a time.
    by_id = {a.id: a for a in assignments}
    per_cohort: list[list[Any]] = []
    submitted = dict.fromkeys(ids, 0)
    passed = dict.fromkeys(ids, 0)
    score_sum = dict.fromkeys(ids, 0.0)
    for cohort in cohorts:
        attempts = gradebook.latest_attempts(cohort.id, ids)
        passing: Counter[int] = Counter()
        for (user_id, assignment_id), attempt in attempts.items():
            submitted[assignment_id] += 1
            final = attempt.final
            if final is not None:
                score_sum[assignment_id] += final
            if by_id[assignment_id].passed_by(final):
                passed[assignment_id] += 1
                passing[user_id] += 1
        passed_all = sum(1 for n in passing.values() if n == len(ids))
        enrolled = learners.get(cohort.id, 0)
        per_cohort.append(
            [
                cohort.name,
                cohort.program.name,
                enrolled,
                passed_all,
                round(passed_all / enrolled, 4) if enrolled else 0.0,
            ]
        )

    def rows() -> Iterator[list[Any]]:
        for cohort in cohorts:
            book = gradebook.gradebook(cohort)
            for row in book.sort("name"):
                scores = [_score(row.attempts.get(a.id)) for a in assignments]
                yield [
                    cohort.name,
                    row.learner.name,
                    row.learner.email,
                    statuses[row.enrolment.status],
                    *scores,
                    row.passed(assignments),
                    len(assignments),
                ]

    enrolled_total = sum(learners.values())
    passed_total = sum(r[3] for r in per_cohort)
    return Report(
        scope="course",
        slug=course.slug,
        title=course.title,
        generated_at=now,
        summary=[
            (_("Course"), course.title),
            (_("Cohorts"), len(cohorts)),
            (_("Learners"), enrolled_total),
            (_("Passed every assignment"), passed_total),
        ],
        funnel=[
            (_("Learners"), enrolled_total),
            (_("Submitted the first assignment"), submitted[ids[0]] if ids else 0),
            (_("Passed every assignment"), passed_total),
        ],
        forecast=None,
        weekly=[],
        start=None,
        tables=[
            Table(
                _("Cohorts"),
                [
                    Column(_("Cohort"), "text", 28),
                    Column(_("Program"), "text", 28),
                    Column(_("Learners"), "int", 10),
                    Column(_("Passed every assignment"), "int", 12),
                    Column(_("Passed of learners"), "percent", 12),
                ],
                lambda: per_cohort,
                len(per_cohort),
            ),
            Table(
                _("Assignments"),
                [
                    Column(_("Assignment"), "text", 32),
                    Column(_("Points"), "float", 8),
                    Column(_("Pass mark"), "float", 8),
                    Column(_("Submitted"), "int", 10),
                    Column(_("Passed"), "int", 10),
                    Column(_("Mean score"), "float", 10),
                ],
                lambda: [
                    [
                        a.title,
                        a.points,
                        a.pass_mark,
                        submitted[a.id],
                        passed[a.id],
                        round(score_sum[a.id] / submitted[a.id], 2) if submitted[a.id] else None,
                    ]
                    for a in assignments
                ],
                len(assignments),
            ),
        ],
        learners=Table(
            _("Learners"),
            [
                Column(_("Cohort"), "text", 24),
                Column(_("Learner"), "text", 24),
                Column(_("Email"), "text", 30),
                Column(_("Status"), "text", 11),
                *_assignment_columns(assignments),
                Column(_("Assignments passed"), "int", 10),
                Column(_("Assignments required"), "int", 10),
            ],
            rows,
            enrolled_total,
        ),
    )

"""The coordinator's pages: my programs, a program's dashboard (funnel, completions against
the target, forecast, cohorts and partner organisations laggards first), a cohort's
gradebook and one learner's progress."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user

from lms import formatting
from lms.access import guard_blueprint
from lms.models import Cohort, Program, Role
from lms.paging import Page
from lms.queries import directory, enrolments, gradebook, progress
from lms.reporting import svg_charts
from lms.scopes import coordinated_program_ids, may_see
from lms.services import certificates, labs

bp = Blueprint("coordinator", __name__, url_prefix="/coordinate")
guard_blueprint(bp, lambda user: user.is_admin or user.has_role(Role.COORDINATOR))

GRADEBOOK_PAGE_SIZE = 50


@bp.get("/")
def home() -> ResponseReturnValue:
    rows = enrolments.program_progress(coordinated_program_ids(current_user))
    return render_template("coordinator/home.html", rows=rows)


def program_or_404(slug: str) -> Program:
    found = directory.program_by_slug(slug)
    if found is None or not may_see(coordinated_program_ids(current_user), found.id):
        abort(404)
    return found


def cohort_or_404(slug: str) -> Cohort:
    found = directory.cohort_by_slug(slug)
    if found is None or not may_see(coordinated_program_ids(current_user), found.program_id):
        abort(404)
    return found


@bp.get("/programs/<slug>")
def program(slug: str) -> ResponseReturnValue:
    found = program_or_404(slug)
    board = progress.dashboard(found, _("No organisation"))
    return render_template(
        "coordinator/program.html",
        program=found,
        board=board,
        funnel_chart=svg_charts.funnel(
            _funnel_stages(board), _("Learners at each stage"), format_decimal
        ),
        completions_chart=_completions_chart(board),
        rate_weeks=progress.RATE_WEEKS,
    )


@bp.get("/programs/<slug>/labs")
def program_labs(slug: str) -> ResponseReturnValue:
    """Labs open now and kernel minutes, per cohort of the program."""
    found = program_or_404(slug)
    cohorts = sorted(found.cohorts, key=lambda c: c.starts_on, reverse=True)
    return render_template(
        "labs/overview.html",
        name=found.name,
        back=url_for(".program", slug=found.slug),
        **labs.overview(cohorts),
    )


def _funnel_stages(board: progress.Dashboard) -> tuple[tuple[str, int], ...]:
    t = board.totals
    return (
        (_("Target"), board.forecast.target),
        (_("Enrolled"), t.enrolled),
        (_("Active"), t.active),
        (_("Completed"), t.completed),
        (_("Certified"), t.certified),
    )


def _completions_chart(board: progress.Dashboard) -> svg_charts.Chart:
    f = board.forecast
    # Dates as the page beside the chart shows them.
    forecast_day = formatting.day(f.forecast_date) if f.forecast_date else "—"
    return svg_charts.completions(
        board.weekly,
        start=board.start,
        today=board.today,
        target=f.target,
        target_date=f.target_date,
        forecast_date=f.forecast_date,
        labels=svg_charts.CompletionsLabels(
            title=_("Completions against the target"),
            completed=_("Completed (cumulative)"),
            straight_line=_("Straight line to the target"),
            forecast=_(
                "Forecast at %(rate)s a week", rate=format_decimal(round(f.rate_per_week, 1))
            ),
            target=_("Target %(target)s", target=format_decimal(f.target)),
            learners=_("Learners"),
            target_on=_("Target date: %(date)s", date=formatting.day(f.target_date)),
            forecast_on=_("Forecast: %(date)s", date=forecast_day),
            beyond=_(
                "The forecast date, %(date)s, is past the end of this chart: the dates shown "
                "stop at twice the time from the first cohort's start to the target date.",
                date=forecast_day,
            ),
        ),
        number=format_decimal,
        month=formatting.month,
    )


@bp.get("/cohorts/<slug>")
def cohort(slug: str) -> ResponseReturnValue:
    found = cohort_or_404(slug)
    sort = request.args.get("sort", "name")
    descending = request.args.get("dir") == "desc"
    shown = gradebook.gradebook_page(
        found,
        sort,
        descending,
        request.args.get("page", 1, type=int) or 1,
        GRADEBOOK_PAGE_SIZE,
    )
    return render_template(
        "coordinator/cohort.html",
        cohort=found,
        book=shown.book,
        funnel=progress.cohort_funnel(found),
        rows=shown.rows,
        total_rows=shown.total,
        page=Page(shown.page, shown.pages),
        sort=sort,
        descending=descending,
        active_days=progress.active_days(),
        completed_without_certificate=certificates.uncertified_completed_count(found.id),
    )


@bp.get("/cohorts/<slug>/learners/<int:user_id>")
def learner(slug: str, user_id: int) -> ResponseReturnValue:
    found = cohort_or_404(slug)
    standing = gradebook.learner_progress(found, user_id)
    if standing is None:
        abort(404)
    return render_template("coordinator/learner.html", cohort=found, standing=standing)

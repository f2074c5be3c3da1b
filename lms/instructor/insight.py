"""The instructor's deadline and insight pages: late policy, extensions and feedback release of
an assignment in a cohort; test pass rates; similar submissions side by side."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from lms.extensions import db
from lms.instructor.insight_forms import ExtensionForm, FeedbackForm, PolicyForm
from lms.instructor.lookups import my_assignment
from lms.instructor.routes import bp
from lms.models import (
    Assignment,
    Cohort,
    CohortAssignment,
    Course,
    Submission,
    User,
)
from lms.queries import enrolments, insight, schedules, similarity
from lms.services import deadlines, grading

COHORT_PATH = "/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>"


def _course_cohort(course: Course, cohort_slug: str) -> Cohort:
    """A cohort taking the course (404 for any other)."""
    found = enrolments.course_cohort(course.id, cohort_slug)
    if found is None:
        abort(404)
    return found


def _scheduled(
    slug: str, assignment_slug: str, cohort_slug: str
) -> tuple[Course, Assignment, Cohort, CohortAssignment]:
    course, assignment = my_assignment(slug, assignment_slug)
    cohort = _course_cohort(course, cohort_slug)
    scheduled = schedules.schedule(cohort.id, assignment.id)
    if scheduled is None:
        abort(404)
    return course, assignment, cohort, scheduled


def _extension_form(cohort: Cohort) -> ExtensionForm:
    form = ExtensionForm(prefix="extension")
    form.learner.choices = [
        SelectChoice(u.id, f"{u.name} <{u.email}>") for u in insight.cohort_learners(cohort)
    ]
    return form


def _render_deadlines(
    course: Course,
    assignment: Assignment,
    cohort: Cohort,
    scheduled: CohortAssignment,
    policy_form: PolicyForm | None = None,
    extension_form: ExtensionForm | None = None,
) -> str:
    return render_template(
        "instructor/deadlines.html",
        course=course,
        assignment=assignment,
        cohort=cohort,
        scheduled=scheduled,
        policy_form=policy_form or PolicyForm(prefix="policy", obj=scheduled),
        extension_form=extension_form or _extension_form(cohort),
        feedback_form=FeedbackForm(prefix="feedback"),
        extensions=insight.extensions(scheduled),
    )


@bp.route(f"{COHORT_PATH}/deadlines", methods=["GET", "POST"], endpoint="deadlines")
def deadlines_page(slug: str, assignment_slug: str, cohort_slug: str) -> ResponseReturnValue:
    course, assignment, cohort, scheduled = _scheduled(slug, assignment_slug, cohort_slug)
    form = PolicyForm(prefix="policy", obj=scheduled)
    if form.validate_on_submit():
        try:
            deadlines.set_policy(
                scheduled,
                due_at=form.due_at.data.astimezone(UTC),
                penalty_per_day=form.late_penalty_per_day.data,
                penalty_cap=form.late_penalty_cap.data,
                cutoff_at=form.cutoff_at.data.astimezone(UTC) if form.cutoff_at.data else None,
            )
        except deadlines.DeadlineError as e:
            flash(str(e), "error")
        else:
            flash(_("Late policy saved."), "info")
            return redirect(request.path)
    status = 400 if request.method == "POST" else 200
    return _render_deadlines(course, assignment, cohort, scheduled, policy_form=form), status


@bp.post(f"{COHORT_PATH}/extensions")
def grant_extension(slug: str, assignment_slug: str, cohort_slug: str) -> ResponseReturnValue:
    course, assignment, cohort, scheduled = _scheduled(slug, assignment_slug, cohort_slug)
    form = _extension_form(cohort)
    if form.validate_on_submit():
        learner = db.session.get(User, form.learner.data)
        assert learner is not None  # one of the choices
        try:
            deadlines.grant_extension(
                scheduled,
                learner,
                form.due_at.data.astimezone(UTC),
                current_user,
                form.reason.data or "",
            )
        except deadlines.DeadlineError as e:
            flash(str(e), "error")
        else:
            flash(_("Extension granted to %(name)s.", name=learner.name), "info")
            return redirect(url_for(".deadlines", **_cohort_args(course, assignment, cohort)))
    return _render_deadlines(course, assignment, cohort, scheduled, extension_form=form), 400


@bp.post(f"{COHORT_PATH}/feedback")
def feedback(slug: str, assignment_slug: str, cohort_slug: str) -> ResponseReturnValue:
    course, assignment, cohort, scheduled = _scheduled(slug, assignment_slug, cohort_slug)
    form = FeedbackForm(prefix="feedback")
    if not form.validate_on_submit() or not (form.release.data or form.withdraw.data):
        abort(400)
    released = bool(form.release.data)
    grading.release_feedback(scheduled, released=released)
    flash(_("Feedback released.") if released else _("Feedback withdrawn."), "info")
    return redirect(url_for(".deadlines", **_cohort_args(course, assignment, cohort)))


def _cohort_args(course: Course, assignment: Assignment, cohort: Cohort) -> dict[str, Any]:
    return {"slug": course.slug, "assignment_slug": assignment.slug, "cohort_slug": cohort.slug}


@bp.get("/courses/<slug>/assignments/<assignment_slug>/insight", endpoint="insight")
def insight_page(slug: str, assignment_slug: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    cohorts = enrolments.course_cohorts(course.id)
    chosen = request.args.get("cohort", "")
    cohort = next((c for c in cohorts if c.slug == chosen), None)
    if chosen and cohort is None:
        abort(404)
    return render_template(
        "instructor/insight.html",
        course=course,
        assignment=assignment,
        cohorts=cohorts,
        cohort=cohort,
        submitted=insight.latest_count(assignment, cohort),
        rates=insight.pass_rates(assignment, cohort),
        flags=insight.similarity_flags(assignment, cohort),
        threshold=similarity.THRESHOLD,
        min_tokens=similarity.MIN_TOKENS,
    )


@bp.get("/courses/<slug>/assignments/<assignment_slug>/similarity/<int:sub_a>/<int:sub_b>")
def similarity_pair(slug: str, assignment_slug: str, sub_a: int, sub_b: int) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    a, b = db.session.get(Submission, sub_a), db.session.get(Submission, sub_b)
    # Both of this assignment, so of a course I teach; anything else is answered as missing.
    if a is None or b is None or {a.assignment_id, b.assignment_id} != {assignment.id}:
        abort(404)
    return render_template(
        "instructor/similarity_pair.html",
        course=course,
        assignment=assignment,
        a=a,
        b=b,
        score=insight.pair_score(a, b),
        cells=insight.side_by_side(a, b),
    )

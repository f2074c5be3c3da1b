"""The instructor's deadline and insight pages: late policy, extensions and feedback release of
an assignment in a cohort; test pass rates; similar submissions side by side."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from lms.extensions import db
from lms.instructor import learner_pick
from lms.instructor.insight_forms import ExtensionForm, FeedbackForm, PolicyForm
from lms.instructor.lookups import my_assignment
from lms.instructor.routes import bp
from lms.models import (
    Assignment,
    Cohort,
    CohortAssignment,
    Course,
    Submission,
)
from lms.queries import (
    enrolments,
    insight,
    learner_search,
    schedules,
    similar_submissions,
    similarity,
)
from lms.services import deadlines, grading

COHORT_PATH = "/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>"
LEARNER_OPTIONS_ID = "extension-learner-options"


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


def _extension_form(cohort: Cohort, suggest_url: str) -> ExtensionForm:
    form = ExtensionForm(prefix="extension")
    # A search field with suggestions: the page's <datalist>, filled by the server for a
    # cohort of up to learner_pick.DATALIST_MAX learners, by extensions.js beyond.
    form.learner.render_kw = {
        **(form.learner.render_kw or {}),
        "list": LEARNER_OPTIONS_ID,
        "data-suggest-url": suggest_url,
    }
    return form


def _feedback_form(cohort: Cohort, learners: int) -> FeedbackForm:
    form = FeedbackForm(prefix="feedback")
    form.confirm.label.text = ngettext(
        "Yes, release the feedback to the %(num)d learner of %(cohort)s",
        "Yes, release the feedback to the %(num)d learners of %(cohort)s",
        learners,
        cohort=cohort.name,
    )
    return form


def _render_deadlines(
    course: Course,
    assignment: Assignment,
    cohort: Cohort,
    scheduled: CohortAssignment,
    policy_form: PolicyForm | None = None,
    extension_form: ExtensionForm | None = None,
    feedback_form: FeedbackForm | None = None,
) -> str:
    args = _cohort_args(course, assignment, cohort)
    learners = learner_search.learner_count(cohort.id)
    return render_template(
        "instructor/deadlines.html",
        course=course,
        assignment=assignment,
        cohort=cohort,
        scheduled=scheduled,
        policy_form=policy_form or PolicyForm(prefix="policy", obj=scheduled),
        extension_form=extension_form
        or _extension_form(cohort, url_for(".extension_learners", **args)),
        learner_options=learner_pick.options(cohort),
        learner_options_id=LEARNER_OPTIONS_ID,
        feedback_form=feedback_form or _feedback_form(cohort, learners),
        learners=learners,
        submitted=insight.latest_count(assignment, cohort),
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
    args = _cohort_args(course, assignment, cohort)
    form = _extension_form(cohort, url_for(".extension_learners", **args))
    if form.validate_on_submit():
        # Only the cohort's own learners are found: anyone else is "no learner matches".
        picked = learner_pick.pick(cohort, form.learner.data or "")
        if picked.learner is None:
            form.learner.errors = [*form.learner.errors, picked.error]
        else:
            try:
                deadlines.grant_extension(
                    scheduled,
                    picked.learner,
                    form.due_at.data.astimezone(UTC),
                    current_user,
                    form.reason.data or "",
                )
            except deadlines.DeadlineError as e:
                flash(str(e), "error")
            else:
                flash(_("Extension granted to %(name)s.", name=picked.learner.name), "info")
                return redirect(url_for(".deadlines", **args))
    return _render_deadlines(course, assignment, cohort, scheduled, extension_form=form), 400


@bp.get(f"{COHORT_PATH}/learners.json")
def extension_learners(slug: str, assignment_slug: str, cohort_slug: str) -> ResponseReturnValue:
    """Suggestions for the extension's learner field: a few of this cohort's learners whose
    name or email contains ?q= (at least two characters)."""
    _course, _assignment, cohort, _scheduled_row = _scheduled(slug, assignment_slug, cohort_slug)
    response = jsonify(learner_pick.suggestions(cohort, request.args.get("q", "")[:200]))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post(f"{COHORT_PATH}/feedback")
def feedback(slug: str, assignment_slug: str, cohort_slug: str) -> ResponseReturnValue:
    course, assignment, cohort, scheduled = _scheduled(slug, assignment_slug, cohort_slug)
    learners = learner_search.learner_count(cohort.id)
    form = _feedback_form(cohort, learners)
    if not form.validate_on_submit() or not (form.release.data or form.withdraw.data):
        abort(400)
    released = bool(form.release.data)
    if released and not form.confirm.data:
        # Releasing reaches the whole cohort: only with the box (naming how many) ticked.
        form.confirm.errors = [_("Tick the box to confirm.")]
        page = _render_deadlines(course, assignment, cohort, scheduled, feedback_form=form)
        return page, 400
    grading.release_feedback(scheduled, released=released)
    if released:
        flash(
            ngettext(
                "Feedback released to %(num)d learner.",
                "Feedback released to %(num)d learners.",
                learners,
            ),
            "info",
        )
    else:
        flash(_("Feedback withdrawn."), "info")
    return redirect(url_for(".deadlines", **_cohort_args(course, assignment, cohort)))


def _cohort_args(course: Course, assignment: Assignment, cohort: Cohort) -> dict[str, Any]:
    return {"slug": course.slug, "assignment_slug": assignment.slug, "cohort_slug": cohort.slug}


def _chosen_cohort(course: Course) -> tuple[list[Cohort], Cohort | None]:
    """The course's cohorts and the one ?cohort= names (None for all; 404 for any other)."""
    cohorts = enrolments.course_cohorts(course.id)
    chosen = request.args.get("cohort", "")
    cohort = next((c for c in cohorts if c.slug == chosen), None)
    if chosen and cohort is None:
        abort(404)
    return list(cohorts), cohort


@bp.get("/courses/<slug>/assignments/<assignment_slug>/insight", endpoint="insight")
def insight_page(slug: str, assignment_slug: str) -> ResponseReturnValue:
    course, assignment = my_assignment(slug, assignment_slug)
    cohorts, cohort = _chosen_cohort(course)
    return render_template(
        "instructor/insight.html",
        course=course,
        assignment=assignment,
        cohorts=cohorts,
        cohort=cohort,
        submitted=insight.latest_count(assignment, cohort),
        rates=insight.pass_rates(assignment, cohort),
        similar=similar_submissions.similarity_page(
            assignment, cohort, request.args.get("page", 1, type=int) or 1
        ),
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
    # Compared as on the list it came from (?cohort=): what is left out depends on who else
    # handed it in.
    _cohorts, cohort = _chosen_cohort(course)
    work = similar_submissions.similar_work(assignment, cohort)
    return render_template(
        "instructor/similarity_pair.html",
        course=course,
        assignment=assignment,
        cohort=cohort,
        a=a,
        b=b,
        score=similar_submissions.pair_score(a, b, work),
        cells=similar_submissions.side_by_side(a, b, work),
        work=work,
    )

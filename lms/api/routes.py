"""The JSON API of the grading service: /api/v1, authenticated by bearer tokens only.

A request is made by the user its `Authorization: Bearer <token>` header names (tokens come
from `flask lms create-token EMAIL`), or by nobody: the browser session is never read, so a
page on another site cannot use a signed-in browser to call the API (no CSRF, hence exempt).

Errors are always {"error": message}. Who gets which answer, the same on every route:
- 401: no token, or a token that is unknown or revoked (with `WWW-Authenticate: Bearer`).
- 404: the object does not exist or is outside everything the caller may see: a learner
  asking for another learner's submission, anyone asking for a course they neither teach nor
  take. Its existence is never disclosed.
- 403: the caller may see the assignment but not do this with it: a learner of the course
  asking for an instructor's route, an instructor submitting to a course they only teach.
- 400: the request itself is wrong (a bad notebook, an unknown cohort, a malformed body);
  409: a batch that has already ended cannot be cancelled; 413: the upload is too large.

Over 400 lines on purpose: every route of /api/v1 beside the one answering rule above, so
that no route can drift from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from flask import Blueprint, abort, g, make_response, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from lms.api import openapi
from lms.extensions import csrf, db, login_manager
from lms.models import (
    Assignment,
    CellKind,
    Cohort,
    GradingBatch,
    GradingJob,
    JobKind,
    JobState,
    Submission,
    User,
    utcnow,
)
from lms.queries import coursework, enrolments, marking, schedules
from lms.scopes import may_see, taught_course_ids
from lms.services import api_tokens, grading, submissions
from lms.services.submissions import SubmissionError, Upload

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

# Endpoints anyone may call without a token.
PUBLIC = {"api.openapi_document"}


@bp.before_request
def _authenticate() -> None:
    # Flask-Login's current_user is this request's token user (or anonymous), never the
    # session's: setting it here keeps Flask-Login from reading the session cookie.
    g._login_user = login_manager.anonymous_user()
    if request.endpoint in PUBLIC:
        return
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _fail(
            401,
            _("Send an API token in the header Authorization: Bearer <token>."),
            {"WWW-Authenticate": 'Bearer realm="lms"'},
        )
    user = api_tokens.user_for(token)
    if user is None:
        _fail(
            401,
            _("This API token is not valid: it is unknown or has been revoked."),
            {"WWW-Authenticate": 'Bearer realm="lms", error="invalid_token"'},
        )
    g.api_user = user
    g._login_user = user


def _fail(status: int, message: str, headers: dict[str, str] | None = None) -> NoReturn:
    abort(make_response({"error": message}, status, headers or {}))


def _caller() -> User:
    user: User = g.api_user
    return user


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _teaches(user: User, course_id: int) -> bool:
    return may_see(taught_course_ids(user), course_id)


def _not_found() -> NoReturn:
    _fail(404, _("There is no such object, or it is not yours to see."))


def _staff_assignment(assignment_id: int) -> Assignment:
    """The assignment for a route of its course's instructors (and admins): 404 when the caller
    neither teaches nor takes its course, 403 when they take it as a learner only."""
    user = _caller()
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        _not_found()
    if _teaches(user, assignment.course_id):
        return assignment
    if enrolments.learner_cohorts(user.id, assignment.course_id):
        _fail(403, _("Only the instructors of this course can do this."))
    _not_found()


def _staff_batch(batch_id: int) -> GradingBatch:
    """A batch of a course the caller teaches; 404 for everyone else (learners never see
    batches, so there is nothing to disclose to them)."""
    batch = db.session.get(GradingBatch, batch_id)
    if batch is None or not _teaches(_caller(), batch.assignment.course_id):
        _not_found()
    return batch


def _course_cohort(assignment: Assignment, slug: object) -> Cohort | None:
    """The cohort named by slug, which must take the assignment's course (None: no slug)."""
    if slug is None or slug == "":
        return None
    cohort = None
    if isinstance(slug, str):
        cohort = enrolments.course_cohort(assignment.course_id, slug)
    if cohort is None:
        _fail(400, _("No cohort %(cohort)s takes this course.", cohort=str(slug)))
    return cohort


# --- Assignments ------------------------------------------------------------------------


@bp.get("/assignments")
def assignments() -> ResponseReturnValue:
    """{"teaching": the assignments of the courses the caller teaches (every course for an
    admin), "learning": those of the courses the caller's cohorts take}; a user may be both."""
    user = _caller()
    return {"teaching": _teaching(user), "learning": _learning(user)}


def _teaching(user: User) -> list[dict[str, Any]]:
    scope = taught_course_ids(user)
    if scope is not None and not scope:
        return []
    return [
        {
            "id": a.id,
            "slug": a.slug,
            "course": a.course.slug,
            "title": a.title,
            "points": a.points,
            "active": a.active,
            "instant_feedback": a.instant_feedback,
            "submissions": count,
        }
        for a, count in coursework.submission_counts(scope)
    ]


def _learning(user: User) -> list[dict[str, Any]]:
    live = enrolments.live_enrolments(user.id)
    if not live:
        return []
    extended = schedules.extended_due_dates(user.id)
    now = utcnow()
    rows = []
    for enrolment in live:
        cohort = enrolment.cohort
        for course in cohort.courses:
            for row in schedules.cohort_course_assignments(cohort, course):
                a = row.assignment
                own_due = extended.get((cohort.id, a.id))
                rows.append(
                    {
                        "id": a.id,
                        "slug": a.slug,
                        "course": course.slug,
                        "title": a.title,
                        "points": a.points,
                        "cohort": cohort.slug,
                        "opens_at": _iso(row.opens_at),
                        "due_at": _iso(own_due or row.due_at),
                        "extended": own_due is not None,
                        "open": row.is_open(now) and row.release is not None,
                        "instant_feedback": a.instant_feedback,
                    }
                )
    return rows


# --- Submissions ------------------------------------------------------------------------


@bp.post("/assignments/<int:assignment_id>/submissions")
def submit(assignment_id: int) -> ResponseReturnValue:
    """A learner submits notebooks (multipart field `notebook`, one or more files). 201 with a
    new attempt; 200 with the existing one for a retry (same Idempotency-Key) or an upload
    identical to the latest attempt."""
    user = _caller()
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        _not_found()
    cohorts = enrolments.learner_cohorts(user.id, assignment.course_id)
    if not cohorts:
        if _teaches(user, assignment.course_id):
            _fail(403, _("Only learners of this course can submit to it."))
        _not_found()
    cohort = _chosen_cohort(cohorts, request.form.get("cohort", ""))
    uploads = [Upload(f.filename or "", f.read()) for f in request.files.getlist("notebook")]
    key = request.headers.get("Idempotency-Key") or None
    try:
        outcome = submissions.submit(user, assignment, cohort, uploads, key=key, via="api")
    except SubmissionError as e:
        _fail(400, str(e))
    if outcome.created:
        grading.request_instant_feedback(outcome.submission)
    location = url_for(".submission", submission_id=outcome.submission.id)
    body = _submission_json(outcome.submission, staff=False)
    return body, 201 if outcome.created else 200, {"Location": location}


def _chosen_cohort(cohorts: list[Cohort], slug: str) -> Cohort:
    if slug:
        chosen = next((c for c in cohorts if c.slug == slug), None)
        if chosen is None:
            _fail(400, _("You are not in a cohort %(cohort)s that takes this course.", cohort=slug))
        return chosen
    if len(cohorts) > 1:
        _fail(
            400,
            _(
                "You are in several cohorts taking this course: name one in the field "
                "cohort (%(cohorts)s).",
                cohorts=", ".join(c.slug for c in cohorts),
            ),
        )
    return cohorts[0]


@bp.get("/submissions/<int:submission_id>")
def submission(submission_id: int) -> ResponseReturnValue:
    """A learner's own submission, or any of a course the caller teaches; 404 otherwise."""
    user = _caller()
    found = db.session.get(Submission, submission_id)
    if found is None:
        _not_found()
    staff = _teaches(user, found.assignment.course_id)
    if not staff and found.user_id != user.id:
        _not_found()
    return _submission_json(found, staff=staff)


def _state(found: Submission) -> str:
    """The latest grading job's state, or "submitted" when it was never queued."""
    return str(found.jobs[-1].state) if found.jobs else "submitted"


def _submission_json(found: Submission, *, staff: bool) -> dict[str, Any]:
    """The submission as its viewer may see it: scores and per-cell grades for staff, and for
    the learner once feedback is released; before that only the status of each autograded cell
    from an instant-feedback grading."""
    released = grading.feedback_released(found)
    # Late by the due date that applies now: an extension granted after submitting counts.
    lateness = schedules.lateness_of(found)
    body: dict[str, Any] = {
        "id": found.id,
        "assignment": found.assignment_id,
        "course": found.assignment.course.slug,
        "cohort": found.cohort.slug,
        "attempt": found.attempt,
        "submitted_at": _iso(found.submitted_at),
        "due_at": _iso(lateness.due_at or found.due_at),
        "late_seconds": lateness.late_seconds,
        "state": _state(found),
        "files": sorted(found.files),
        "feedback_released": released,
    }
    if staff:
        body["learner"] = found.user.email
    if staff or released:
        score = marking.submission_scores([found])[0].to_json()
        for field in ("score", "raw_score", "max_score", "late_penalty_percent", "needs_grading"):
            body[field] = score[field]
        body["grades"] = [
            {
                "notebook": cell.notebook.name,
                "cell": cell.grade_id,
                "kind": str(cell.kind),
                "max_score": cell.points,
                "score": grade.score if grade else None,
                "status": grade.status if grade else "",
                "comment": grade.comment if grade else "",
                **(
                    {
                        "auto_score": grade.auto_score if grade else None,
                        "manual_score": grade.manual_score if grade else None,
                    }
                    if staff
                    else {}
                ),
            }
            for cell, grade in marking.submission_grades(found)
        ]
    else:
        body["instant_feedback"] = _instant_feedback(found)
    return body


def _instant_feedback(found: Submission) -> dict[str, Any] | None:
    """Pass/fail of each autograded cell from the latest instant-feedback grading (no scores,
    no manual answers: those wait for the release)."""
    job: GradingJob | None = next(
        (j for j in reversed(found.jobs) if j.kind == JobKind.INSTANT and j.state == JobState.DONE),
        None,
    )
    if job is None or job.result is None:
        return None
    notebooks = job.result.get("notebooks", {})
    cells = [
        {
            "notebook": cell.notebook.name,
            "cell": cell.grade_id,
            "status": str(
                notebooks.get(cell.notebook.name, {})
                .get("cells", {})
                .get(cell.grade_id, {})
                .get("status", "")
            ),
        }
        for cell, _grade in marking.submission_grades(found)
        if cell.kind == CellKind.AUTOGRADED
    ]
    return {"graded_at": _iso(job.finished_at), "cells": cells}


@bp.get("/assignments/<int:assignment_id>/submissions")
def assignment_submissions(assignment_id: int) -> ResponseReturnValue:
    """Every submission of the assignment (?cohort=slug: of one cohort; ?latest=1: only each
    learner's latest attempt), oldest first. Instructors of the course and admins."""
    assignment = _staff_assignment(assignment_id)
    cohort = _course_cohort(assignment, request.args.get("cohort"))
    if request.args.get("latest", "").lower() in ("1", "true", "yes"):
        chosen = grading.latest_submissions(assignment, cohort)
    else:
        chosen = marking.assignment_submissions(
            assignment.id, cohort.id if cohort is not None else None
        )
    return [
        {
            "id": row.submission.id,
            "learner": row.learner.email,
            "cohort": row.submission.cohort.slug,
            "attempt": row.submission.attempt,
            "submitted_at": _iso(row.submission.submitted_at),
            "late_seconds": row.late_seconds,
            "state": row.job_state or "submitted",
            "score": row.final,
            "max_score": row.max_score,
        }
        for row in marking.submission_scores(chosen)
    ]


# --- Batches ------------------------------------------------------------------------------


@bp.post("/assignments/<int:assignment_id>/batches")
def create_batch(assignment_id: int) -> ResponseReturnValue:
    """Autograde every latest submission ({"scope": "all"}) or the chosen ones ({"scope":
    "selected", "submissions": [ids]}), optionally of one cohort ("cohort": slug). 202: the
    batch runs on the workers; follow it at its Location."""
    assignment = _staff_assignment(assignment_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        _fail(400, _('Send a JSON object, for example {"scope": "all"}.'))
    scope = body.get("scope", "all")
    ids: list[int] | None = None
    if scope == "selected":
        chosen = body.get("submissions")
        if (
            not isinstance(chosen, list)
            or not chosen
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in chosen)
        ):
            _fail(400, _("Give the submissions to grade as a list of submission ids."))
        ids = chosen
    elif scope != "all":
        _fail(400, _('The scope must be "all" or "selected".'))
    cohort = _course_cohort(assignment, body.get("cohort"))
    try:
        batch = grading.create_batch(assignment, _caller(), cohort=cohort, submission_ids=ids)
    except grading.GradingError as e:
        _fail(400, str(e))
    return _batch_json(batch), 202, {"Location": url_for(".batch", batch_id=batch.id)}


def _batch_json(batch: GradingBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "assignment": batch.assignment_id,
        "cohort": batch.cohort.slug if batch.cohort else None,
        "scope": batch.scope,
        "created_at": _iso(batch.created_at),
        "finished_at": _iso(batch.finished_at),
        **grading.progress(batch).to_json(),
    }


@bp.get("/batches/<int:batch_id>")
def batch(batch_id: int) -> ResponseReturnValue:
    """The batch's progress: counts per job state, and "state" "done" once every job ended."""
    return _batch_json(_staff_batch(batch_id))


@bp.post("/batches/<int:batch_id>/cancel")
def cancel_batch(batch_id: int) -> ResponseReturnValue:
    """Cancel the batch's queued jobs (those being graded finish); 409 once it has ended."""
    found = _staff_batch(batch_id)
    try:
        grading.cancel_batch(found)
    except grading.GradingError as e:
        _fail(409, str(e))
    return _batch_json(found)


# --- Grades -------------------------------------------------------------------------------


@bp.get("/assignments/<int:assignment_id>/grades")
def grades(assignment_id: int) -> ResponseReturnValue:
    """Each learner's latest attempt with its score (late penalty applied) (?cohort=slug)."""
    assignment = _staff_assignment(assignment_id)
    cohort = _course_cohort(assignment, request.args.get("cohort"))
    rows = marking.submission_scores(grading.latest_submissions(assignment, cohort))
    return {
        "assignment": assignment.id,
        "cohort": cohort.slug if cohort else None,
        "grades": [{**row.to_json(), "cohort": row.submission.cohort.slug} for row in rows],
    }


# --- The description of all this -----------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    """This API as an OpenAPI 3.1 document (no token needed)."""
    return openapi.document()

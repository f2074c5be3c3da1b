"""The learner's pages: my cohorts, their courses, assignments with dates, downloads,
submitting, and the feedback on my submissions."""

from __future__ import annotations

import io
import secrets
import zipfile
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from lms import feedback_page
from lms.access import guard_blueprint, is_learner
from lms.extensions import db
from lms.learner.forms import LabSubmitForm, OpenLabForm, SubmitForm
from lms.learner.lookups import cohort_course, scheduled_assignment
from lms.learner.notices import say_submitted
from lms.models import (
    CellKind,
    Cohort,
    Course,
    GradedCell,
    GradingJob,
    JobKind,
    JobState,
    Submission,
    utcnow,
)
from lms.queries import enrolments, learning, marking, schedules
from lms.services import certificates, grading, submissions, workspaces
from lms.storage import blobs, storage

bp = Blueprint("learner", __name__, url_prefix="/learn")
guard_blueprint(bp, is_learner)


@bp.get("/")
def home() -> ResponseReturnValue:
    """Each cohort's courses, with how far the learner is and what is due next."""
    now = utcnow()
    mine = enrolments.live_enrolments(current_user.id)
    standings = {
        (enrolment.cohort.id, course.id): learning.course_standings(
            current_user.id, enrolment.cohort, course, now
        )
        for enrolment in mine
        for course in enrolment.cohort.courses
    }
    return render_template(
        "learner/home.html",
        enrolments=mine,
        standings=standings,
        next_due=learning.next_due,
        certificates=certificates.of_learner(current_user.id),
    )


# What a learner is told of where they stand with an assignment (lms.queries.learning).
STANDINGS = {
    learning.Standing.NOT_RELEASED: _l("not released yet"),
    learning.Standing.NOT_OPEN: _l("not open yet"),
    learning.Standing.NOT_STARTED: _l("not started"),
    learning.Standing.IN_LAB: _l("in progress in the lab"),
    learning.Standing.SUBMITTED: _l("submitted"),
    learning.Standing.GRADED: _l("graded, not passed"),
    learning.Standing.PASSED: _l("passed"),
}


# What a learner is told about the grading of a submission (the latest job's state).
GRADING_STATES = {
    "": _l("submitted, not graded yet"),
    JobState.QUEUED: _l("waiting for a grader"),
    JobState.RUNNING: _l("being graded"),
    JobState.DONE: _l("graded"),
    JobState.FAILED: _l("grading failed"),
    JobState.CANCELLED: _l("grading cancelled"),
}
WAITING = (JobState.QUEUED, JobState.RUNNING)
# What an autograded test cell's outcome is called.
TEST_OUTCOMES = {
    "passed": _l("passed"),
    "partial": _l("partly passed"),
    "failed": _l("failed"),
}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"grading_state": grading_state, "standing_label": standing_label}


def grading_state(state: str) -> str:
    return str(GRADING_STATES.get(state, state))


def standing_label(standing: learning.Standing) -> str:
    return str(STANDINGS.get(standing, standing))


@bp.get("/cohorts/<cohort_slug>/courses/<course_slug>")
def course(cohort_slug: str, course_slug: str) -> ResponseReturnValue:
    cohort, found = cohort_course(cohort_slug, course_slug)
    return render_template(
        "learner/course.html",
        cohort=cohort,
        course=found,
        standings=learning.course_standings(current_user.id, cohort, found, utcnow()),
    )


@bp.get("/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>.zip")
def download(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """The release notebooks and data of an open assignment, as a zip."""
    cohort, found = cohort_course(cohort_slug, course_slug)
    row = scheduled_assignment(cohort, found, assignment_slug)
    if row.release is None or not row.is_open(utcnow()):
        abort(404)
    files = storage()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in files.list(row.release.path):
            archive.writestr(f"{assignment_slug}/{name}", files.read(f"{row.release.path}/{name}"))
    buffer.seek(0)
    return send_file(
        buffer,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{assignment_slug}-v{row.release.version}.zip",
    )


@bp.route(
    "/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/", methods=["GET", "POST"]
)
def assignment(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """The assignment as this learner meets it (dates, own extension, late rule), the upload
    form and the learner's attempts."""
    cohort, found = cohort_course(cohort_slug, course_slug)
    row = scheduled_assignment(cohort, found, assignment_slug)
    form = SubmitForm()
    refused = False
    if form.validate_on_submit():
        uploads = [submissions.Upload(f.filename or "", f.read()) for f in form.notebook.data]
        try:
            outcome = submissions.submit(
                current_user, row.assignment, cohort, uploads, key=form.submit_key.data
            )
        except submissions.SubmissionError as e:
            # Said next to the file field, naming the file (the message does).
            form.notebook.errors = [*form.notebook.errors, str(e)]
            refused = True
        else:
            job = grading.request_instant_feedback(outcome.submission) if outcome.created else None
            say_submitted(outcome, job)
            return redirect(url_for(".submission", submission_id=outcome.submission.id))
    # A fresh key per page shown: sending this page's form twice makes one submission.
    form.submit_key.data = secrets.token_urlsafe(24)
    lab_form = LabSubmitForm(formdata=None)
    lab_form.submit_key.data = secrets.token_urlsafe(24)
    status = 400 if refused or form.errors else 200
    response = make_response(
        render_template(
            "learner/assignment.html",
            **_assignment_page(cohort, found, row),
            form=form,
            lab_form=lab_form,
        ),
        status,
    )
    # Back to this page means a new key: a changed notebook sent from it is a new attempt.
    response.headers["Cache-Control"] = "no-store"
    return response


def _assignment_page(
    cohort: Cohort, course: Course, row: schedules.ScheduledAssignment
) -> dict[str, Any]:
    now = utcnow()
    scheduled = schedules.schedule(cohort.id, row.assignment.id)
    deadline = schedules.deadline_for(scheduled, current_user.id) if scheduled else None
    attempts = marking.learner_submissions(current_user.id, row.assignment.id, cohort.id)
    return {
        "cohort": cohort,
        "course": course,
        "row": row,
        "a": row.assignment,
        "now": now,
        "scheduled": scheduled,
        "deadline": deadline,
        "late_now": deadline.late_seconds(now) if deadline else 0,
        "penalty_now": deadline.penalty_percent(now) if deadline else 0.0,
        "may_submit": row.release is not None and row.is_open(now),
        "scores": marking.submission_scores(attempts),
        "released": scheduled is not None and scheduled.feedback_released_at is not None,
        "instant_left": grading.instant_feedback_left(current_user),
        "instant_per_hour": int(current_app.config["INSTANT_FEEDBACK_PER_HOUR"]),
        "max_upload_mb": int(current_app.config["MAX_UPLOAD_MB"]),
        "max_upload_bytes": int(current_app.config["MAX_CONTENT_LENGTH"]),
        "has_lab_folder": workspaces.folder_of(current_user, row.assignment).is_dir(),
        "open_lab_form": OpenLabForm(formdata=None),
    }


def _my_submission(submission_id: int) -> Submission:
    """The learner's own submission; anyone else's is answered like a missing one."""
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.user_id != current_user.id:
        abort(404)
    return submission


def _latest_job(submission: Submission, kind: JobKind | None = None) -> GradingJob | None:
    jobs = [j for j in submission.jobs if kind is None or j.kind == kind]
    return jobs[-1] if jobs else None


@bp.get("/submissions/<int:submission_id>")
def submission(submission_id: int) -> ResponseReturnValue:
    """Grading state; instant test results (before release); after release, scores per
    question, comments, the late penalty, the final score and the feedback pages."""
    found = _my_submission(submission_id)
    job = _latest_job(found)
    instant = _latest_job(found, JobKind.INSTANT)
    released = grading.feedback_released(found)
    result = grading.latest_result(found) if released else None
    grades = marking.submission_grades(found)
    return render_template(
        "learner/submission.html",
        submission=found,
        a=found.assignment,
        cohort=found.cohort,
        lateness=schedules.lateness_of(found),
        state=str(job.state) if job else "",
        instant=instant,
        tests=_instant_tests(found, instant, grades),
        test_outcomes=TEST_OUTCOMES,
        released=released,
        grades=grades if released else [],
        score=marking.submission_scores([found])[0] if released else None,
        feedback=sorted((result.feedback or {}) if result else {}),
    )


def _instant_tests(
    submission: Submission, instant: GradingJob | None, grades: list[tuple[GradedCell, Any]]
) -> list[tuple[GradedCell, dict[str, Any] | None]]:
    """Each autograded test cell with its outcome in the finished instant grading (shown
    before release); empty while there is none, or the assignment gives no instant feedback."""
    if not submission.assignment.instant_feedback or instant is None:
        return []
    if instant.state != JobState.DONE or not instant.result:
        return []
    notebooks = instant.result.get("notebooks", {})
    return [
        (cell, notebooks.get(cell.notebook.name, {}).get("cells", {}).get(cell.grade_id))
        for cell, _grade in grades
        if cell.kind == CellKind.AUTOGRADED
    ]


@bp.get("/submissions/<int:submission_id>/files/<path:file_name>")
def submitted_file(submission_id: int, file_name: str) -> ResponseReturnValue:
    """A file of one's own attempt, exactly as it was submitted."""
    found = _my_submission(submission_id)
    name = file_name
    digest = found.files.get(name)
    if digest is None:
        abort(404)
    response = send_file(
        io.BytesIO(blobs.get(digest)),
        mimetype="application/x-ipynb+json" if name.endswith(".ipynb") else None,
        as_attachment=True,
        download_name=f"attempt-{found.attempt}-{name.rsplit('/', 1)[-1]}",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/submissions/<int:submission_id>/status.json")
def submission_status(submission_id: int) -> ResponseReturnValue:
    """The grading state, polled by submission.js while a grader is at work."""
    job = _latest_job(_my_submission(submission_id))
    state = str(job.state) if job else ""
    response = make_response(
        {"state": state, "label": grading_state(state), "waiting": state in WAITING}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/submissions/<int:submission_id>/feedback/<notebook>.html")
def feedback(submission_id: int, notebook: str) -> ResponseReturnValue:
    """One notebook's sanitized feedback page, once the instructor released feedback."""
    found = _my_submission(submission_id)
    released = grading.feedback_released(found)
    return feedback_page.response(grading.latest_result(found) if released else None, notebook)

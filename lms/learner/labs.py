"""The learner's lab: the assignment's notebooks in the Jupyter interface, in the browser.

"Open lab" is a form (POST): it makes the learner's folder and has the lab hub start their lab
server. The lab page (GET) changes nothing: it frames the running lab server with the LMS's
toolbar around it (submit the saved notebooks, put a notebook back as released, the place in
the queue while every kernel is taken), or offers to start the lab when it is not running.
"""

from __future__ import annotations

import hmac
import secrets

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.extensions import csrf
from lms.lab import lab_identity_token
from lms.learner.forms import LabSubmitForm, OpenLabForm, ResetForm
from lms.learner.lookups import cohort_course, scheduled_assignment
from lms.learner.notices import say_submitted
from lms.learner.routes import bp
from lms.models import Cohort, Course, utcnow
from lms.queries import schedules
from lms.services import grading, labs, sessions, submissions, workspaces


def _open_assignment(
    cohort_slug: str, course_slug: str, assignment_slug: str
) -> tuple[Cohort, Course, schedules.ScheduledAssignment]:
    """The assignment, open to this learner now (its lab exists only then), or 404."""
    cohort, course = cohort_course(cohort_slug, course_slug)
    row = scheduled_assignment(cohort, course, assignment_slug)
    if row.release is None or not row.is_open(utcnow()):
        abort(404)
    return cohort, course, row


def _back(cohort: Cohort, course: Course, row: schedules.ScheduledAssignment) -> str:
    return url_for(
        "learner.assignment",
        cohort_slug=cohort.slug,
        course_slug=course.slug,
        assignment_slug=row.assignment.slug,
    )


LAB = "/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/lab"


@bp.post(LAB + "/open")
def lab_open(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """Open the lab: the workspace is made (first time), the server started or reused."""
    cohort, course, row = _open_assignment(cohort_slug, course_slug, assignment_slug)
    form = OpenLabForm()
    if not form.validate_on_submit():
        flash(_("This form was incomplete. Reload the page and try again."), "error")
        return redirect(_back(cohort, course, row))
    try:
        workspaces.open_workspace(current_user, row.assignment)
        labs.start(current_user, str(get_locale()))  # Jupyter speaks the learner's language
    except (workspaces.WorkspaceError, labs.LabUnavailable) as e:
        flash(str(e), "error")
        return redirect(_back(cohort, course, row))
    return redirect(_lab_url(cohort, course, row, form.notebook.data or None))


def _lab_url(
    cohort: Cohort, course: Course, row: schedules.ScheduledAssignment, notebook: str | None
) -> str:
    return url_for(
        "learner.lab",
        cohort_slug=cohort.slug,
        course_slug=course.slug,
        assignment_slug=row.assignment.slug,
        notebook=notebook,
    )


@bp.get(LAB)
def lab(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """The running lab in its frame; a Start button when it is not running (nothing is
    started or made on a GET)."""
    cohort, course, row = _open_assignment(cohort_slug, course_slug, assignment_slug)
    names = [f"{nb.name}.ipynb" for nb in row.assignment.notebooks]
    notebook = request.args.get("notebook") or names[0]
    if notebook not in names:
        abort(404)
    state = labs.state(current_user)
    folder = workspaces.folder_of(current_user, row.assignment)
    if not folder.is_dir() or state is None or not state.get("running"):
        open_form = OpenLabForm(formdata=None)
        open_form.notebook.data = notebook
        response = make_response(
            render_template(
                "learner/lab_start.html",
                cohort=cohort,
                course=course,
                a=row.assignment,
                open_form=open_form,
                unavailable=state is None,
                back=_back(cohort, course, row),
            )
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    workspace = workspaces.Workspace(workspaces.root_of(current_user), folder, names)
    submit_form = LabSubmitForm()
    submit_form.submit_key.data = secrets.token_urlsafe(24)
    response = make_response(
        render_template(
            "learner/lab.html",
            cohort=cohort,
            course=course,
            a=row.assignment,
            workspace=workspace,
            notebook=notebook,
            frame_url=labs.notebook_url(current_user, workspace, notebook),
            submit_form=submit_form,
            back=_back(cohort, course, row),
            gpu_idle_minutes=current_app.config["LAB_GPU_IDLE_MINUTES"],
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post(LAB + "/submit")
def lab_submit(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """The saved notebooks of the workspace, as a new submission (the upload rules apply)."""
    cohort, course, row = _open_assignment(cohort_slug, course_slug, assignment_slug)
    form = LabSubmitForm()
    if not form.validate_on_submit():
        flash(_("This form was incomplete. Reload the page and try again."), "error")
        return redirect(_back(cohort, course, row))
    try:
        outcome = workspaces.submit(current_user, row.assignment, cohort, key=form.submit_key.data)
    except (workspaces.WorkspaceError, submissions.SubmissionError) as e:
        flash(str(e), "error")
        return redirect(request.referrer or _back(cohort, course, row))
    job = grading.request_instant_feedback(outcome.submission) if outcome.created else None
    say_submitted(outcome, job)
    return redirect(url_for("learner.submission", submission_id=outcome.submission.id))


@bp.route(LAB + "/reset", methods=["GET", "POST"])
def lab_reset(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """Put one notebook back as released, after confirmation; the learner's copy is kept."""
    cohort, course, row = _open_assignment(cohort_slug, course_slug, assignment_slug)
    names = [f"{nb.name}.ipynb" for nb in row.assignment.notebooks]
    form = ResetForm()
    form.notebook.choices = [(n, n) for n in names]
    if request.method == "GET":
        form.notebook.data = request.args.get("notebook") or names[0]
    elif form.validate_on_submit():
        try:
            kept = workspaces.reset(current_user, row.assignment, form.notebook.data)
        except workspaces.WorkspaceError as e:
            flash(str(e), "error")
        else:
            flash(
                _(
                    "%(name)s is back as released. Your previous copy is kept as %(kept)s.",
                    name=form.notebook.data,
                    kept=kept.name,
                ),
                "info",
            )
            return redirect(
                url_for(
                    "learner.lab",
                    cohort_slug=cohort.slug,
                    course_slug=course.slug,
                    assignment_slug=row.assignment.slug,
                    notebook=form.notebook.data,
                )
            )
    return render_template(
        "learner/lab_reset.html",
        cohort=cohort,
        course=course,
        a=row.assignment,
        form=form,
        back=_back(cohort, course, row),
    ), (400 if form.errors else 200)


@bp.get("/lab/status.json")
def lab_status() -> ResponseReturnValue:
    """The learner's lab as the hub sees it: polled by lab.js for the kernel queue."""
    state = labs.state(current_user) or {"running": False, "unavailable": True}
    response = jsonify(state)
    response.headers["Cache-Control"] = "no-store"
    return response


# A lab that is not running: the proxy sends its URLs to the LMS ---------------------------------

stopped_bp = Blueprint("lab_stopped", __name__)
# The notebook front end's saves (PUT .../api/contents) carry no LMS form token; these routes
# change nothing, and without this they would get the CSRF error page instead of their 503.
csrf.exempt(stopped_bp)


@stopped_bp.route("/lab/<int:owner>/", defaults={"rest": ""}, methods=["GET", "POST", "PUT"])
@stopped_bp.route("/lab/<int:owner>/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
@login_required  # type: ignore[untyped-decorator]
def stopped(owner: int, rest: str) -> ResponseReturnValue:
    """A lab URL while the lab server is stopped (idle, or never opened): the owner is told
    their work is kept and how to reopen it; anyone else finds nothing here."""
    if owner != current_user.id:
        abort(404)
    if rest.startswith("api/") or request.method != "GET":
        return jsonify({"message": _("Your lab was stopped. Open it again from the LMS.")}), 503
    response = make_response(
        render_template("learner/lab_stopped.html", reopen=_reopen_url(rest)), 503
    )
    # Shown where the lab was: inside the lab page's frame too (same site only).
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    )
    return response


def _reopen_url(rest: str) -> str | None:
    """The lab page of the assignment whose notebook the stale lab URL named, if any."""
    parts = rest.split("/")
    if len(parts) < 4 or parts[0] not in ("notebooks", "lab", "tree"):
        return None
    course_slug, assignment_slug = parts[1], parts[2]
    for enrolment in current_user.enrolments:
        if any(c.slug == course_slug for c in enrolment.cohort.courses):
            return url_for(
                "learner.lab",
                cohort_slug=enrolment.cohort.slug,
                course_slug=course_slug,
                assignment_slug=assignment_slug,
            )
    return None


# JupyterHub asks whose session a browser's cookie is (lms.lab.jupyterhub_auth) -----------------

identity_bp = Blueprint("lab_identity", __name__)
csrf.exempt(identity_bp)  # called by JupyterHub with its token, never by a browser form


@identity_bp.post("/labs/identity")
def lab_identity() -> ResponseReturnValue:
    """The lab name of the user whose valid session this cookie is; 403 for anything else.
    Only JupyterHub asks, with the identity token (which answers this question only)."""
    expected = lab_identity_token(str(current_app.config["SECRET_KEY"]))
    given = request.headers.get("Authorization", "").removeprefix("token ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return jsonify(error="only the lab hub asks this"), 403
    body = request.get_json(silent=True)
    cookie = body.get("cookie") if isinstance(body, dict) else None
    if not isinstance(cookie, str) or not cookie:
        return jsonify(error="no session cookie given"), 400
    user = sessions.user_for_cookie(cookie)
    if user is None:
        return jsonify(error="no valid session"), 403
    return jsonify(name=str(user.id))

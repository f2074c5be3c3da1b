"""Progress exports from the web: the export buttons of the program, cohort and course pages,
and the page of an export written in the background.

The routes are added to two blueprints: the coordinators' (/coordinate/exports...) and the
instructors' (/teach/exports...), since instructors export their courses and the coordinator
blueprint lets only coordinators and admins in. Whichever way in, what a user may export is
decided per program, cohort or course by lms.services.export_jobs.allowed; anything else is
answered 404, like something that does not exist.

A report of up to EXPORT_INLINE_ROWS learner rows is written while the browser waits and
comes back as the download; a larger one becomes an export job for the worker, and the
browser goes to its page (progress bar, then the download link).
"""

from __future__ import annotations

import io
import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from lms.coordinator.forms import ExportForm
from lms.coordinator.routes import bp as coordinator_bp
from lms.extensions import db
from lms.instructor.routes import bp as instructor_bp
from lms.models import ExportJob
from lms.reporting import exports
from lms.services import export_jobs


def start_export() -> ResponseReturnValue:
    form = ExportForm()
    if not form.validate_on_submit():
        abort(400)
    target = export_jobs.find(current_user, form.scope.data, form.slug.data)
    if target is None:
        abort(404)
    fmt = form.format.data
    rows = export_jobs.learner_count(target)
    if rows <= int(current_app.config["EXPORT_INLINE_ROWS"]):
        report = export_jobs.build(target)
        mimetype, extension = exports.FORMATS[fmt]
        out = io.BytesIO()
        exports.write(report, fmt, out)
        out.seek(0)
        return _no_store(
            send_file(
                out,
                mimetype=mimetype,
                as_attachment=True,
                download_name=report.file_name(extension),
            )
        )
    job = export_jobs.start(current_user, target.scope, target.id, fmt, total=rows)
    return redirect(url_for(f"{request.blueprint}.export_job", job_id=job.id))


def export_job(job_id: int) -> ResponseReturnValue:
    job = _my_job(job_id)
    subject = export_jobs.subject_of(job)
    return render_template(
        "coordinator/export.html",
        job=job,
        progress=export_jobs.progress(job),
        subject=subject,
        blueprint=request.blueprint,
        stale_minutes=int(export_jobs.STALE_AFTER.total_seconds() // 60),
    )


def export_progress(job_id: int) -> ResponseReturnValue:
    job = _my_job(job_id)
    state = export_jobs.progress(job)
    if state["state"] == "done":
        state["download_url"] = url_for(f"{request.blueprint}.export_download", job_id=job.id)
    response = Response(json.dumps(state), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def export_download(job_id: int) -> ResponseReturnValue:
    job = _my_job(job_id)
    stored = export_jobs.open_file(job)
    if stored is None:
        abort(404)
    return _no_store(
        send_file(
            stored,
            mimetype=exports.FORMATS[job.format][0],
            as_attachment=True,
            download_name=job.file_name,
        )
    )


def _no_store(response: Response) -> Response:
    """Reports hold personal data (names, emails): no cache keeps a copy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _my_job(job_id: int) -> ExportJob:
    """The requester's own export (any, for an admin), while they may still export its
    subject: a coordinator or instructor who lost the grant since finds nothing (404)."""
    job = db.get_or_404(ExportJob, job_id)
    if job.requested_by_id != current_user.id and not current_user.is_admin:
        abort(404)
    subject = export_jobs.subject_of(job)
    if subject is None or export_jobs.allowed(current_user, job.scope, subject) is None:
        abort(404)
    return job


def register(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/exports", "start_export", start_export, methods=["POST"])
    blueprint.add_url_rule("/exports/<int:job_id>", "export_job", export_job)
    blueprint.add_url_rule(
        "/exports/<int:job_id>/progress.json", "export_progress", export_progress
    )
    blueprint.add_url_rule("/exports/<int:job_id>/download", "export_download", export_download)


for _blueprint in (coordinator_bp, instructor_bp):
    register(_blueprint)

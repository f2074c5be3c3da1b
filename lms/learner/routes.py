"""The learner's pages: my cohorts, their courses, assignments with dates, downloads."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, send_file
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.orm import selectinload

from lms import reports
from lms.access import guard_blueprint, is_learner
from lms.extensions import db
from lms.models import Cohort, Course, Enrolment, EnrolmentStatus, utcnow

bp = Blueprint("learner", __name__, url_prefix="/learn")
guard_blueprint(bp, is_learner)


@bp.get("/")
def home() -> ResponseReturnValue:
    enrolments = db.session.scalars(
        sa.select(Enrolment)
        .where(Enrolment.user_id == current_user.id, Enrolment.status != EnrolmentStatus.WITHDRAWN)
        .options(
            selectinload(Enrolment.cohort).selectinload(Cohort.courses),
            selectinload(Enrolment.cohort).selectinload(Cohort.program),
        )
        .join(Enrolment.cohort)
        .order_by(Cohort.starts_on.desc())
    ).all()
    return render_template("learner/home.html", enrolments=enrolments)


def _cohort_course(cohort_slug: str, course_slug: str) -> tuple[Cohort, Course]:
    """The cohort (which the learner must be in) and one of its courses, or 404."""
    enrolment = reports.learner_enrolment(current_user.id, cohort_slug)
    if enrolment is None:
        abort(404)
    course = next((c for c in enrolment.cohort.courses if c.slug == course_slug), None)
    if course is None:
        abort(404)
    return enrolment.cohort, course


@bp.get("/cohorts/<cohort_slug>/courses/<course_slug>")
def course(cohort_slug: str, course_slug: str) -> ResponseReturnValue:
    cohort, found = _cohort_course(cohort_slug, course_slug)
    rows = reports.cohort_course_assignments(cohort, found)
    return render_template(
        "learner/course.html", cohort=cohort, course=found, rows=rows, now=utcnow()
    )


@bp.get("/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>.zip")
def download(cohort_slug: str, course_slug: str, assignment_slug: str) -> ResponseReturnValue:
    """The release notebooks and data of an open assignment, as a zip."""
    cohort, found = _cohort_course(cohort_slug, course_slug)
    row = next(
        (
            r
            for r in reports.cohort_course_assignments(cohort, found)
            if r.assignment.slug == assignment_slug
        ),
        None,
    )
    if row is None or row.release is None or not row.is_open(utcnow()):
        abort(404)
    folder = Path(current_app.config["DATA_DIR"]) / row.release.path
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(assignment_slug) / path.relative_to(folder))
    buffer.seek(0)
    return send_file(
        buffer,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{assignment_slug}-v{row.release.version}.zip",
    )

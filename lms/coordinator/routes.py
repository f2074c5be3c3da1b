"""The coordinator's pages: my programs and their progress toward the learner target."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from lms import reports
from lms.access import coordinated_program_ids, guard_blueprint, may_see
from lms.extensions import db
from lms.models import Program, Role

bp = Blueprint("coordinator", __name__, url_prefix="/coordinate")
guard_blueprint(bp, lambda user: user.is_admin or user.has_role(Role.COORDINATOR))


@bp.get("/")
def home() -> ResponseReturnValue:
    rows = reports.program_progress(coordinated_program_ids(current_user))
    return render_template("coordinator/home.html", rows=rows)


@bp.get("/programs/<slug>")
def program(slug: str) -> ResponseReturnValue:
    found = db.session.scalar(sa.select(Program).where(Program.slug == slug))
    if found is None or not may_see(coordinated_program_ids(current_user), found.id):
        abort(404)
    [(_, progress)] = reports.program_progress({found.id})
    return render_template(
        "coordinator/program.html",
        program=found,
        progress=progress,
        cohorts=reports.cohort_progress(found),
    )

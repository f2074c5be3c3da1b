"""The learner's pages: my cohorts and their courses."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.orm import selectinload

from lms.access import guard_blueprint, is_learner
from lms.extensions import db
from lms.models import Cohort, Enrolment, EnrolmentStatus

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

"""Inviting a cohort's learners: their states, one or all invited, personal links handed out.

Open to the site's admins, the coordinators of the cohort's program and the instructors of
its courses; a cohort outside their grants is a 404.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from lms.access import guard_blueprint
from lms.extensions import db
from lms.invitations.forms import HandOutLinksForm, InviteCohortForm, InviteOneForm, ResumeForm
from lms.models import Cohort, Enrolment, InvitationBatch, Role, User
from lms.queries import directory, enrolments
from lms.scopes import coordinated_program_ids, may_see, taught_course_ids
from lms.services import ServiceError, accounts

bp = Blueprint("invitations", __name__, url_prefix="/cohorts/<cohort_slug>/invitations")
guard_blueprint(
    bp,
    lambda user: user.is_admin or user.has_role(Role.COORDINATOR) or user.has_role(Role.INSTRUCTOR),
)

PER_PAGE = 50
STATES = ("not-invited", "invited", "unconfirmed", "bounced", "joined", "deactivated")


def may_invite(user: User, cohort: Cohort) -> bool:
    if user.is_admin:
        return True
    if may_see(coordinated_program_ids(user) or set(), cohort.program_id):
        return True
    taught = taught_course_ids(user) or set()
    return any(course.id in taught for course in cohort.courses)


def may_hand_out_links(user: User, cohort: Cohort) -> bool:
    """A file of links opens the accounts in it to whoever holds it: admins and the
    program's coordinators (who answer for its partners) only, not the course's instructors."""
    return user.is_admin or may_see(coordinated_program_ids(user) or set(), cohort.program_id)


def cohort_or_404(slug: str) -> Cohort:
    found = directory.cohort_by_slug(slug)
    if found is None or not may_invite(current_user, found):
        abort(404)
    return found


@bp.get("/")
def overview(cohort_slug: str) -> ResponseReturnValue:
    cohort = cohort_or_404(cohort_slug)
    wanted = request.args.get("state", "")
    query = _filtered(enrolments.cohort_roster(cohort.id), cohort, wanted)
    page = db.paginate(query, per_page=PER_PAGE, error_out=False)
    states = accounts.states(e.user_id for e in page.items)
    return render_template(
        "invitations/overview.html",
        cohort=cohort,
        page=page,
        states=states,
        counts=accounts.state_counts(cohort),
        wanted=wanted if wanted in STATES else "",
        batches=directory.invitation_batches(cohort.id),
        cohort_form=InviteCohortForm(),
        links_form=HandOutLinksForm() if may_hand_out_links(current_user, cohort) else None,
        one_form=InviteOneForm(),
        state_names=STATES,
    )


def _filtered(
    query: sa.Select[tuple[Enrolment]], cohort: Cohort, wanted: str
) -> sa.Select[tuple[Enrolment]]:
    if wanted in STATES:
        return query.where(User.id.in_(accounts.users_in_state(cohort, wanted)))
    return query


@bp.post("/send")
def send(cohort_slug: str) -> ResponseReturnValue:
    cohort = cohort_or_404(cohort_slug)
    form = InviteCohortForm()
    if not form.validate_on_submit():
        flash(_("Tick the box to confirm, then send the invitations."), "error")
        return redirect(url_for(".overview", cohort_slug=cohort.slug)), 303
    batch = accounts.start_batch(cohort, current_user, reinvite=bool(form.again.data))
    return redirect(url_for(".batch", cohort_slug=cohort.slug, invitation_id=batch.id))


@bp.post("/learners/<int:user_id>")
def invite_one(cohort_slug: str, user_id: int) -> ResponseReturnValue:
    cohort = cohort_or_404(cohort_slug)
    enrolment = enrolments.cohort_enrolment(cohort.id, user_id)
    if enrolment is None:
        abort(404)
    if InviteOneForm().validate_on_submit():
        user = enrolment.user
        try:
            accounts.invite(user, current_user)
        except ServiceError:
            flash(_("%(email)s is deactivated: reactivate them first.", email=user.email), "error")
        else:
            flash(_("An invitation to %(email)s is on its way.", email=user.email), "info")
    return redirect(request.referrer or url_for(".overview", cohort_slug=cohort.slug))


@bp.post("/links.csv")
def links(cohort_slug: str) -> ResponseReturnValue:
    """Personal links of everyone who has not joined, for a partner who hands them out."""
    cohort = cohort_or_404(cohort_slug)
    if not may_hand_out_links(current_user, cohort):
        abort(403)
    form = HandOutLinksForm()
    if not form.validate_on_submit():
        flash(_("Tick the box to confirm, then download the links."), "error")
        return redirect(url_for(".overview", cohort_slug=cohort.slug)), 303
    body = accounts.handout_links(cohort, current_user)
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="invitation-links-{cohort.slug}-{stamp}.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _batch_or_404(cohort: Cohort, invitation_id: int) -> InvitationBatch:
    batch = db.session.get(InvitationBatch, invitation_id)
    if batch is None or batch.cohort_id != cohort.id:
        abort(404)
    return batch


@bp.get("/batches/<int:invitation_id>")
def batch(cohort_slug: str, invitation_id: int) -> ResponseReturnValue:
    cohort = cohort_or_404(cohort_slug)
    found = _batch_or_404(cohort, invitation_id)
    return render_template(
        "invitations/batch.html",
        cohort=cohort,
        batch=found,
        progress=accounts.batch_progress(found),
        resume_form=ResumeForm(),
    )


@bp.get("/batches/<int:invitation_id>/progress")
def batch_progress(cohort_slug: str, invitation_id: int) -> ResponseReturnValue:
    cohort = cohort_or_404(cohort_slug)
    response = jsonify(accounts.batch_progress(_batch_or_404(cohort, invitation_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/batches/<int:invitation_id>/resume")
def resume(cohort_slug: str, invitation_id: int) -> ResponseReturnValue:
    cohort = cohort_or_404(cohort_slug)
    found = _batch_or_404(cohort, invitation_id)
    if ResumeForm().validate_on_submit():
        accounts.resume(found)
    return redirect(url_for(".batch", cohort_slug=cohort.slug, invitation_id=found.id))

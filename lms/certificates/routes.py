"""Certificates: the public verification page (no sign-in), the PDF for its learner (and the
staff of its program), and issuing, listing and revoking a cohort's certificates (its
coordinators and admins)."""

from __future__ import annotations

import io
import math
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response

from lms.certificates.forms import IssueForm, RevokeForm
from lms.extensions import limiter, login_manager
from lms.models import Certificate, Cohort, Role
from lms.paging import Page
from lms.queries import directory, issued_certificates
from lms.reporting import certificate_pdf
from lms.scopes import coordinated_program_ids, may_see
from lms.services import ServiceError, certificates
from lms.urls import safe_next

bp = Blueprint("certificates", __name__)

PAGE_SIZE = 100

# Both verification routes count against one limit per client address.
verify_limit = limiter.shared_limit(
    lambda: str(current_app.config["VERIFY_LIMIT"]), scope="certificate-verify"
)


@bp.after_request
def _headers(response: Response) -> Response:
    # Certificates name people: search engines keep out, and nobody caches a stale verdict.
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"score_text": certificate_pdf.score_text, "long_date": certificate_pdf.long_date}


@bp.get("/verify")
@verify_limit
def verify_form() -> ResponseReturnValue:
    """The form to type a code into; a typed code leads to its page."""
    code = request.args.get("code", "").strip()
    if not code:
        return render_template("certificates/verify_form.html", code="")
    normalised = certificates.normalise_code(code)
    if normalised is None:
        return _not_found(code)
    return redirect(url_for(".verify", code=normalised))


@bp.get("/verify/<code>")
@verify_limit
def verify(code: str) -> ResponseReturnValue:
    """What the certificate states, and whether it is valid; nothing else."""
    found = certificates.find(code)
    if found is None:
        return _not_found(code)
    return render_template("certificates/verify.html", certificate=found)


def _not_found(code: str) -> ResponseReturnValue:
    return render_template("certificates/verify_form.html", code=code, not_found=True), 404


def _signed_in() -> None:
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())


def _may_download(certificate: Certificate) -> bool:
    enrolment = certificate.enrolment
    if enrolment.user_id == current_user.id:
        return True
    return may_see(coordinated_program_ids(current_user), enrolment.cohort.program_id)


@bp.get("/certificates/<code>.pdf")
def pdf(code: str) -> ResponseReturnValue:
    """The certificate's PDF, for its learner, or an admin or a coordinator of its program;
    anyone else (and a revoked certificate) gets 404."""
    _signed_in()
    found = certificates.find(code)
    if found is None or found.revoked_at is not None or not _may_download(found):
        abort(404)
    data = certificate_pdf.render(found, url_for(".verify", code=found.code, _external=True))
    response = send_file(
        io.BytesIO(data),
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"certificate-{found.code}.pdf",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _may_issue(program_id: int) -> bool:
    """Admins, and the coordinators of the program: who issues a cohort's certificates also
    lists and revokes them."""
    if not (current_user.is_admin or current_user.has_role(Role.COORDINATOR)):
        return False
    return may_see(coordinated_program_ids(current_user), program_id)


def _issuer_cohort(cohort_slug: str) -> Cohort:
    """A cohort whose certificates I may issue: 403 for anyone not staff who issues, 404 for a
    cohort of someone else's program."""
    _signed_in()
    if not (current_user.is_admin or current_user.has_role(Role.COORDINATOR)):
        abort(403)
    cohort = directory.cohort_by_slug(cohort_slug)
    if cohort is None or not _may_issue(cohort.program_id):
        abort(404)
    return cohort


@bp.post("/certificates/cohorts/<cohort_slug>/issue")
def issue(cohort_slug: str) -> ResponseReturnValue:
    """Certificates for every completed learner of the cohort who has none yet, once the
    person confirmed how many that is."""
    cohort = _issuer_cohort(cohort_slug)
    form = IssueForm()
    if form.validate_on_submit():
        waiting = certificates.uncertified_completed_count(cohort.id)
        if not form.confirm.data:
            flash(_("Tick the box to confirm."), "error")
        elif form.expected.data is not None and form.expected.data != waiting:
            flash(
                ngettext(
                    "%(num)d completed learner is waiting for a certificate now, not the number "
                    "you confirmed: check it and confirm again.",
                    "%(num)d completed learners are waiting for a certificate now, not the number "
                    "you confirmed: check it and confirm again.",
                    waiting,
                ),
                "error",
            )
        else:
            _issue(cohort)
    back = safe_next(form.next.data) or url_for("coordinator.program", slug=cohort.program.slug)
    return redirect(back)


def _issue(cohort: Cohort) -> None:
    try:
        issued = certificates.issue(cohort, current_user)
    except ServiceError as e:
        flash(str(e), "error")
        return
    if issued:
        flash(
            ngettext("%(num)d certificate issued.", "%(num)d certificates issued.", len(issued)),
            "info",
        )
    else:
        flash(_("No completed learner is waiting for a certificate."), "info")


@bp.get("/certificates/cohorts/<cohort_slug>")
def cohort_certificates(cohort_slug: str) -> ResponseReturnValue:
    """The cohort's issued certificates, revoked ones too, each with its Revoke button."""
    cohort = _issuer_cohort(cohort_slug)
    search = request.args.get("q", "").strip()[:100]
    total = issued_certificates.count(cohort.id, search)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    rows = issued_certificates.of_cohort(cohort.id, search, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return render_template(
        "certificates/cohort.html",
        cohort=cohort,
        certificates=rows,
        total=total,
        search=search,
        page=Page(page, pages),
        waiting=certificates.uncertified_completed_count(cohort.id),
    )


@bp.route("/certificates/<code>/revoke", methods=["GET", "POST"])
def revoke(code: str) -> ResponseReturnValue:
    """Revoke one certificate, with the reason (required); for who may issue it."""
    _signed_in()
    if not (current_user.is_admin or current_user.has_role(Role.COORDINATOR)):
        abort(403)
    found = certificates.find(code)
    if found is None or not _may_issue(found.enrolment.cohort.program_id):
        abort(404)
    form = RevokeForm()
    if found.revoked_at is None and form.validate_on_submit():
        try:
            certificates.revoke(found, form.reason.data or "", current_user)
        except ServiceError as e:
            form.reason.errors = [*form.reason.errors, str(e)]
        else:
            flash(
                _(
                    "Certificate %(code)s of %(name)s revoked.",
                    code=found.code,
                    name=found.learner_name,
                ),
                "info",
            )
            return redirect(
                url_for(".cohort_certificates", cohort_slug=found.enrolment.cohort.slug)
            )
    page = render_template("certificates/revoke.html", certificate=found, form=form)
    return page, 400 if form.errors else 200

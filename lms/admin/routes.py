"""Site administration: users and their roles, programs, cohorts, organisations, imports."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from lms.access import guard_blueprint
from lms.admin.forms import (
    AccountStateForm,
    CohortForm,
    DeleteForm,
    EraseForm,
    GrantForm,
    ImportForm,
    MergeForm,
    OrganisationForm,
    ProgramForm,
    UserForm,
)
from lms.extensions import db
from lms.models import (
    Course,
    Enrolment,
    Organisation,
    OrganisationKind,
    Program,
    Role,
    RoleGrant,
    User,
    utcnow,
)
from lms.queries import directory, enrolments, rush
from lms.services import (
    ServiceError,
    accounts,
    audit,
    labs,
    learner_import,
    people,
    programs,
    users,
    workers,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
guard_blueprint(bp, lambda user: user.is_admin)

PER_PAGE = 50
NONE_CHOICE = SelectChoice(0, "—")


def _choices(rows: list[tuple[int, str]]) -> list[SelectChoice]:
    """Options for a select field from (id, label) rows."""
    return [SelectChoice(row_id, text) for row_id, text in rows]


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("admin/home.html", counts=directory.totals())


@bp.get("/rush")
def rush_plan() -> ResponseReturnValue:
    """The deadlines ahead and the grading they need (lms.queries.rush)."""
    hours = min(24 * 14, max(1, request.args.get("hours", 48, type=int) or 48))
    now = utcnow()
    taking = {lane: workers.taking(lane) for lane in ("cpu", "gpu")}
    prewarm_minutes = float(current_app.config["PREWARM_MINUTES"])
    plan = rush.upcoming(
        now, timedelta(hours=hours), timedelta(minutes=prewarm_minutes), taking["gpu"] > 0
    )
    hub = labs.hub_state()
    return render_template(
        "admin/rush.html",
        plan=plan,
        now=now,
        hours=hours,
        prewarm_minutes=int(prewarm_minutes),
        rate=float(current_app.config["GRADING_RATE_PER_PROCESS"]),
        taking=taking,
        lab_kernels=None if hub is None else hub["kernels"]["size"],
    )


@bp.route("/users", methods=["GET", "POST"])
def user_list() -> ResponseReturnValue:
    form = UserForm()
    form.organisation.choices = [NONE_CHOICE, *_choices(directory.organisation_options())]
    if form.validate_on_submit():
        try:
            user = users.create_user(
                form.email.data,
                form.name.data,
                form.password.data or None,
                organisation=db.session.get(Organisation, form.organisation.data),
                by=current_user,
            )
        except ServiceError as e:
            flash(str(e), "error")
        else:
            flash(_("User %(email)s created.", email=user.email), "info")
            return redirect(url_for(".user_detail", user_id=user.id))
    q = request.args.get("q", "").strip()
    page = db.paginate(directory.users_matching(q), per_page=PER_PAGE, error_out=False)
    status = 400 if form.errors else 200
    return render_template("admin/users.html", form=form, page=page, q=q), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_detail(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    form = GrantForm()
    form.program.choices = [NONE_CHOICE, *_choices(directory.program_options())]
    form.course.choices = [NONE_CHOICE, *_choices(directory.course_options())]
    if form.validate_on_submit():
        try:
            users.grant_role(
                user,
                Role(form.role.data),
                program=db.session.get(Program, form.program.data),
                course=db.session.get(Course, form.course.data),
                granted_by=current_user,
            )
        except ServiceError as e:
            flash(str(e), "error")
        else:
            flash(_("Role granted."), "info")
            return redirect(url_for(".user_detail", user_id=user.id))
    return render_template(
        "admin/user.html",
        user=user,
        form=form,
        revoke_form=DeleteForm(),
        state_form=AccountStateForm(),
        erase_form=EraseForm(),
        merge_form=MergeForm(),
        action_form=DeleteForm(),
        enrolments=enrolments.user_enrolments(user.id),
        events=audit.of(user),
        invitation=accounts.states([user.id]).get(user.id),
    )


@bp.post("/users/<int:user_id>/invite")
def invite(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    if DeleteForm().validate_on_submit():
        try:
            accounts.invite(user, current_user)
        except ServiceError:
            flash(_("%(email)s is deactivated: reactivate them first.", email=user.email), "error")
        else:
            flash(_("An invitation to %(email)s is on its way.", email=user.email), "info")
    return redirect(url_for(".user_detail", user_id=user.id))


@bp.get("/users/<int:user_id>/data.zip")
def personal_data(user_id: int) -> ResponseReturnValue:
    """Everything held about the person, for a request made to the program (audited)."""
    user = db.get_or_404(User, user_id)
    return _zip_download(people.personal_data(user, current_user), user)


def _zip_download(body: bytes, user: User) -> Response:
    response = Response(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="personal-data-{user.id}.zip"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/users/<int:user_id>/erase")
def erase(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    form = EraseForm()
    if (
        not form.validate_on_submit()
        or users.normalize_email(form.confirm_email.data) != user.email
    ):
        flash(_("Type the person's email exactly to confirm the erasure."), "error")
        return redirect(url_for(".user_detail", user_id=user.id))
    try:
        people.erase(user, current_user)
    except people.PeopleError as e:
        flash(_people_error(str(e)), "error")
    else:
        flash(_("The personal data of this person is erased."), "info")
    return redirect(url_for(".user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/merge")
def merge(user_id: int) -> ResponseReturnValue:
    duplicate = db.get_or_404(User, user_id)
    form = MergeForm()
    if not form.validate_on_submit():
        flash(_("Give the email of the account to keep."), "error")
        return redirect(url_for(".user_detail", user_id=duplicate.id))
    into = users.find_by_email(form.into_email.data)
    if into is None:
        flash(_("No account uses %(email)s.", email=form.into_email.data), "error")
        return redirect(url_for(".user_detail", user_id=duplicate.id))
    try:
        moved = people.merge(duplicate, into, current_user)
    except people.PeopleError as e:
        flash(_people_error(str(e)), "error")
        return redirect(url_for(".user_detail", user_id=duplicate.id))
    flash(
        _(
            "Merged into %(email)s: %(enrolments)d enrolments, %(submissions)d submissions, "
            "%(roles)d roles moved.",
            email=into.email,
            enrolments=moved["enrolments"],
            submissions=moved["submissions"],
            roles=moved["roles"],
        ),
        "info",
    )
    return redirect(url_for(".user_detail", user_id=into.id))


def _people_error(message: str) -> str:
    known: dict[str, str] = {
        "An account cannot be merged into itself.": _("An account cannot be merged into itself."),
        "This account was already merged or erased.": _(
            "This account was already merged or erased."
        ),
        "Merge into an account that is in use.": _("Merge into an account that is in use."),
        "You cannot erase your own account here.": _("You cannot erase your own account here."),
        "Revoke the admin role first.": _("Revoke the admin role first."),
    }
    return known.get(message, message)


@bp.post("/enrolments/<int:enrolment_id>/withdraw")
def withdraw(enrolment_id: int) -> ResponseReturnValue:
    enrolment = db.get_or_404(Enrolment, enrolment_id)
    if DeleteForm().validate_on_submit():
        people.withdraw(enrolment, current_user)
        flash(
            _(
                "Withdrawn from %(cohort)s; their work and history stay.",
                cohort=enrolment.cohort.name,
            ),
            "info",
        )
    return redirect(url_for(".user_detail", user_id=enrolment.user_id))


@bp.post("/enrolments/<int:enrolment_id>/reinstate")
def reinstate(enrolment_id: int) -> ResponseReturnValue:
    enrolment = db.get_or_404(Enrolment, enrolment_id)
    if DeleteForm().validate_on_submit():
        people.reinstate(enrolment, current_user)
        flash(_("Back in %(cohort)s.", cohort=enrolment.cohort.name), "info")
    return redirect(url_for(".user_detail", user_id=enrolment.user_id))


@bp.post("/users/<int:user_id>/deactivate")
def deactivate(user_id: int) -> ResponseReturnValue:
    """The user is signed out everywhere at once (their lab stops) and cannot sign in."""
    user = db.get_or_404(User, user_id)
    form = AccountStateForm()
    if form.validate_on_submit() and form.email.data == user.email:
        if user.id == current_user.id:
            flash(_("You cannot deactivate yourself."), "error")
        elif user.active:
            users.deactivate(user, by=current_user)
            flash(
                _("%(email)s is deactivated and signed out everywhere.", email=user.email), "info"
            )
    return redirect(url_for(".user_detail", user_id=user.id))


@bp.post("/users/<int:user_id>/reactivate")
def reactivate(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    form = AccountStateForm()
    if form.validate_on_submit() and form.email.data == user.email and not user.active:
        users.reactivate(user, by=current_user)
        flash(_("%(email)s may sign in again.", email=user.email), "info")
    return redirect(url_for(".user_detail", user_id=user.id))


@bp.post("/grants/<int:grant_id>/revoke")
def revoke(grant_id: int) -> ResponseReturnValue:
    grant = db.get_or_404(RoleGrant, grant_id)
    user_id = grant.user_id
    if DeleteForm().validate_on_submit():
        if grant.user_id == current_user.id and grant.role == Role.ADMIN:
            flash(_("You cannot revoke your own admin role."), "error")
        else:
            users.revoke_grant(grant, by=current_user)
            flash(_("Role revoked."), "info")
    return redirect(url_for(".user_detail", user_id=user_id))


@bp.route("/programs", methods=["GET", "POST"])
def program_list() -> ResponseReturnValue:
    form = ProgramForm()
    if form.validate_on_submit():
        try:
            program = programs.create_program(
                form.name.data,
                form.target_learners.data,
                form.target_date.data,
                slug=form.slug.data or None,
                description=form.description.data or "",
            )
        except ServiceError as e:
            flash(str(e), "error")
        else:
            flash(_("Program %(name)s created.", name=program.name), "info")
            return redirect(url_for(".program_list"))
    return render_template("admin/programs.html", form=form, programs=directory.programs()), (
        400 if form.errors else 200
    )


@bp.route("/cohorts", methods=["GET", "POST"])
def cohort_list() -> ResponseReturnValue:
    form = CohortForm()
    form.program.choices = _choices(directory.program_options())
    form.organisation.choices = [NONE_CHOICE, *_choices(directory.organisation_options())]
    form.courses.choices = _choices(directory.course_options())
    if form.validate_on_submit():
        program = db.session.get(Program, form.program.data)
        if program is None:
            abort(400)
        try:
            cohort = programs.create_cohort(
                program,
                form.name.data,
                form.starts_on.data,
                form.ends_on.data,
                slug=form.slug.data or None,
                organisation=db.session.get(Organisation, form.organisation.data),
                courses=directory.courses_with_ids(form.courses.data or []),
            )
        except ServiceError as e:
            flash(str(e), "error")
        else:
            flash(_("Cohort %(name)s created.", name=cohort.name), "info")
            return redirect(url_for(".cohort_detail", slug=cohort.slug))
    return render_template("admin/cohorts.html", form=form, cohorts=directory.cohorts()), (
        400 if form.errors else 200
    )


@bp.route("/cohorts/<slug>", methods=["GET", "POST"])
def cohort_detail(slug: str) -> ResponseReturnValue:
    cohort = directory.cohort_by_slug(slug)
    if cohort is None:
        abort(404)
    form = ImportForm()
    import_errors: list[learner_import.RowError] = []
    status = 200
    if form.validate_on_submit():
        try:
            report = learner_import.import_learners(cohort, form.file.data.read(), by=current_user)
        except learner_import.ImportRejected as e:
            import_errors = e.errors
            flash(_("Nothing was imported: fix the rows below and upload the file again."), "error")
            status = 400
        else:
            flash(_import_summary(report), "info")
            if form.invite.data:
                batch = accounts.start_batch(cohort, current_user)
                return redirect(
                    url_for("invitations.batch", cohort_slug=cohort.slug, invitation_id=batch.id)
                )
            return redirect(url_for(".cohort_detail", slug=cohort.slug))
    elif form.errors:
        status = 400
    page = db.paginate(enrolments.cohort_roster(cohort.id), per_page=PER_PAGE, error_out=False)
    return render_template(
        "admin/cohort.html", cohort=cohort, form=form, page=page, import_errors=import_errors
    ), status


def _import_summary(report: learner_import.ImportReport) -> str:
    """Each count with its own plural: "1 row: 1 new user, 1 newly enrolled, ..."."""
    rows = ngettext("%(num)d row", "%(num)d rows", report.rows)
    created = ngettext("%(num)d new user", "%(num)d new users", report.users_created)
    return str(
        _(
            "%(rows)s: %(created)s, %(enrolled)s, %(already)s.",
            rows=rows,
            created=created,
            enrolled=_("%(num)d newly enrolled", num=report.enrolled),
            already=_("%(num)d already enrolled", num=report.already_enrolled),
        )
    )


@bp.route("/organisations", methods=["GET", "POST"])
def organisation_list() -> ResponseReturnValue:
    form = OrganisationForm()
    if form.validate_on_submit():
        try:
            org = programs.create_organisation(form.name.data, OrganisationKind(form.kind.data))
        except ServiceError as e:
            flash(str(e), "error")
        else:
            flash(_("Organisation %(name)s created.", name=org.name), "info")
            return redirect(url_for(".organisation_list"))
    return render_template(
        "admin/organisations.html", form=form, organisations=directory.organisations()
    ), (400 if form.errors else 200)

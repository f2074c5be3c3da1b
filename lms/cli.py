"""`flask --app wsgi lms <verb>`: the command line for admins and scripts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import sqlalchemy as sa

from lms.extensions import db
from lms.models import Cohort, Role
from lms.services import ServiceError, learner_import, programs, users


def database_problem(error: sa.exc.DBAPIError) -> str | None:
    """One line for a command that met a database it cannot use, or None for any other error
    (a real bug keeps its traceback)."""
    where = db.engine.url.render_as_string(hide_password=True)
    text = str(error.orig).lower()
    if isinstance(error, sa.exc.OperationalError) and any(
        words in text
        for words in ("connection", "could not connect", "unable to open", "timeout", "resolve")
    ):
        first = str(error.orig).strip().splitlines()[0]
        return f"Cannot reach the database {where}: {first}"
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"The database {where} has no tables yet: run `flask --app wsgi db upgrade` first."
    if "no such column" in text or ("column" in text and "does not exist" in text):
        return (
            f"The database {where} is not migrated to this version: "
            "run `flask --app wsgi db upgrade` first."
        )
    return None


class _Commands(click.Group):
    """The `lms` group: a database that is missing, unreachable or not migrated is said in
    one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except sa.exc.DBAPIError as e:
            problem = database_problem(e)
            if problem is None:
                raise
            raise click.ClickException(problem) from None


@click.group(cls=_Commands)
def lms() -> None:
    """Manage the LMS."""


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


@lms.command("demo")
def demo_command() -> None:
    """Load the demo programs, cohorts, learners and one user per role (once)."""
    # Here, not at the top: the web process imports this module, and the demo reads the
    # course catalogue with the grader's notebook reader, which it never needs.
    from lms.services import demo

    if demo.load(_courses_root()):
        click.echo("Demo data loaded.")
    else:
        click.echo("Demo data already present; nothing changed.")
    try:
        added = demo.load_submissions(_courses_root())
    except ServiceError as e:
        _fail(str(e))
    if added:
        click.echo(f"{added} demo submissions added (autograde them as the instructor).")
    click.echo(f"Demo logins (password: {demo.DEMO_PASSWORD}):")
    for role, email in demo.DEMO_USERS.items():
        click.echo(f"  {role:<12} {email}")
    if demo.invite_newcomer():
        from flask import current_app

        where = current_app.config["SMTP_URL"] or current_app.config["MAIL_DIR"]
        click.echo(
            f"An invitation was mailed to {demo.DEMO_NEWCOMER} ({where}): "
            "follow its link to choose a password."
        )


@lms.command("demo-history")
def demo_history_command() -> None:
    """The ended demo spring cohort's graded work, completions and certificates (once; run
    after `lms release`, which makes the notebooks it is made from)."""
    from lms.services import demo

    try:
        added = demo.load_spring_work(_courses_root())
    except ServiceError as e:
        _fail(str(e))
    if added:
        click.echo(f"The spring cohort's {added} graded submissions added.")
    else:
        click.echo("The spring cohort's work is already present; nothing changed.")


@lms.command("create-user")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--organisation", "organisation_slug", help="Slug of the user's organisation.")
@click.option("--admin", is_flag=True, help="Make the user a site admin.")
def create_user(
    email: str, name: str, password: str, organisation_slug: str | None, admin: bool
) -> None:
    """Create a user who can sign in with a password."""
    try:
        organisation = programs.get_organisation(organisation_slug) if organisation_slug else None
        user = users.create_user(email, name, password, organisation=organisation)
        if admin:
            users.grant_role(user, Role.ADMIN)
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Created {user.email}" + (" (admin)" if admin else ""))


@lms.command("grant-role")
@click.argument("email")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.option("--program", "program_slug", help="Program slug, for a coordinator.")
@click.option("--course", "course_slug", help="Course slug, for an instructor.")
def grant_role(email: str, role: str, program_slug: str | None, course_slug: str | None) -> None:
    """Grant ROLE to the user with EMAIL, scoped to a program or course."""
    user = users.find_by_email(email)
    if user is None:
        _fail(f"No user with email {email}.")
    try:
        program = programs.get_program(program_slug) if program_slug else None
        course = programs.get_course(course_slug) if course_slug else None
        users.grant_role(user, Role(role), program=program, course=course)
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Granted {role} to {user.email}.")


@lms.command("create-program")
@click.option("--name", required=True)
@click.option("--target", "target_learners", type=click.IntRange(min=1), required=True)
@click.option("--target-date", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
@click.option("--slug")
@click.option("--description", default="")
def create_program(
    name: str, target_learners: int, target_date: datetime, slug: str | None, description: str
) -> None:
    """Create a program with a learner target and a target date."""
    try:
        program = programs.create_program(
            name, target_learners, target_date.date(), slug=slug, description=description
        )
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Created program {program.slug}.")


@lms.command("create-cohort")
@click.option("--program", "program_slug", required=True)
@click.option("--name", required=True)
@click.option("--starts-on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
@click.option("--ends-on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True)
@click.option("--slug")
@click.option("--organisation", "organisation_slug")
@click.option("--course", "course_slugs", multiple=True, help="A course taught; repeatable.")
def create_cohort(
    program_slug: str,
    name: str,
    starts_on: datetime,
    ends_on: datetime,
    slug: str | None,
    organisation_slug: str | None,
    course_slugs: tuple[str, ...],
) -> None:
    """Create a cohort of a program."""
    try:
        program = programs.get_program(program_slug)
        organisation = programs.get_organisation(organisation_slug) if organisation_slug else None
        courses = [programs.get_course(slug) for slug in course_slugs]
        cohort = programs.create_cohort(
            program,
            name,
            starts_on.date(),
            ends_on.date(),
            slug=slug,
            organisation=organisation,
            courses=courses,
        )
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Created cohort {cohort.slug}.")


@lms.command("import-learners")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cohort", "cohort_slug", required=True, help="Slug of the cohort to enrol into.")
@click.option(
    "--invite",
    is_flag=True,
    help="Then mail an invitation to everyone of the cohort who was never invited.",
)
def import_learners(file: Path, cohort_slug: str, invite: bool) -> None:
    """Enrol the learners listed in a CSV FILE (email, name, organisation) into a cohort."""
    try:
        cohort = programs.get_cohort(cohort_slug)
    except ServiceError as e:
        _fail(str(e))
    data = file.read_bytes()
    rows = max(data.count(b"\n"), 1)
    with click.progressbar(length=rows, label="Importing", show_pos=True) as bar:
        try:
            report = learner_import.import_learners(cohort, data, on_progress=bar.update)
        except learner_import.ImportRejected as e:
            for error in e.errors:
                click.echo(f"{file}:{error.line}: {error.message}", err=True)
            count = len(e.errors)
            _fail(f"{count} problem{'s' if count != 1 else ''} found; nothing was imported.")
    click.echo(
        f"{report.rows} rows: {report.users_created} new users, {report.users_existing} existing; "
        f"{report.enrolled} newly enrolled, {report.already_enrolled} already enrolled."
    )
    if invite:
        _send_invitations(cohort, reinvite=False)


@lms.command("invite")
@click.option("--cohort", "cohort_slug", required=True, help="Slug of the cohort.")
@click.option("--again", is_flag=True, help="Also people invited before who have not joined.")
def invite_cohort(cohort_slug: str, again: bool) -> None:
    """Mail invitations to the people of a cohort who have not joined yet."""
    try:
        cohort = programs.get_cohort(cohort_slug)
    except ServiceError as e:
        _fail(str(e))
    _send_invitations(cohort, reinvite=again)


def _send_invitations(cohort: Cohort, reinvite: bool) -> None:
    """Run an invitation batch here (not in the worker), with a progress bar. A batch already
    running elsewhere for the cohort is left to its worker."""
    from lms.services import accounts

    batch = accounts.start_batch(cohort, None, reinvite=reinvite, enqueue=False)
    with click.progressbar(length=max(batch.total, 1), label="Inviting", show_pos=True) as bar:
        shown = 0

        def advance(done: int, total: int) -> None:
            nonlocal shown
            bar.length = max(total, 1)
            bar.update(done - shown)
            shown = done

        accounts.run_batch(batch.id, on_progress=advance)
    db.session.refresh(batch)
    progress = accounts.batch_progress(batch)
    if progress["state"] in ("queued", "running"):
        click.echo(f"Invitation batch {batch.id} is being sent by a worker already.")
        return
    click.echo(
        f"Invitations: {progress['sent']} sent, {progress['bounced']} refused by the mail "
        f"server, {progress['unconfirmed']} unconfirmed (of {progress['total']})."
    )
    if progress["state"] == "failed":
        _fail(f"Sending stopped: {progress['error']}. Run `flask lms invite` again to go on.")


def _courses_root() -> Path:
    from flask import current_app

    return Path(current_app.config["COURSES_DIR"])


@lms.command("sync-courses")
@click.option("--force", is_flag=True, help="Allow changes to released assignments (new version).")
@click.option("--actor", default="cli", help="Who is syncing, recorded with forced changes.")
def sync_courses(force: bool, actor: str) -> None:
    """Load courses/ into the database (idempotent; versioned by content hash)."""
    from lms.services import catalog

    try:
        report = catalog.sync(_courses_root(), force=force, actor=actor)
    except catalog.CatalogError as e:
        for problem in e.problems:
            click.echo(f"  {problem}", err=True)
        _fail(f"{len(e.problems)} problem(s); nothing was synced.")
    for label, items in (
        ("new", report.created),
        ("updated", report.updated),
        ("new version", report.new_versions),
        ("no longer in courses/", report.deactivated),
    ):
        for item in items:
            click.echo(f"  {label}: {item}")
    click.echo(
        f"Synced: {len(report.created)} new, {len(report.updated)} updated, "
        f"{len(report.new_versions)} new versions, {len(report.unchanged)} unchanged; "
        f"{report.scheduled} cohort dates scheduled."
    )


@lms.command("release")
@click.option("--course", "course_slug", help="Only this course.")
def release_command(course_slug: str | None) -> None:
    """Generate the learner version of every assignment version not yet released."""
    from lms.services import releases

    pending = [a for a in releases.unreleased() if not course_slug or a.course.slug == course_slug]
    if not pending:
        click.echo("Every assignment version is released.")
        return
    with click.progressbar(pending, label="Releasing", item_show_func=_slug_of) as bar:
        for assignment in bar:
            try:
                releases.release(assignment)
            except ServiceError as e:
                _fail(str(e))
    click.echo(f"Released {len(pending)} assignment version(s).")


def _slug_of(assignment: object) -> str:
    return getattr(assignment, "slug", "") or ""


@lms.command("check-courses")
@click.option("--course", "course_slug", help="Only this course.")
def check_courses(course_slug: str | None) -> None:
    """Validate courses/ and grade with stock nbgrader: sources full marks, releases zero; then
    grade the same right, wrong, partly right and crashing submissions with our autograder and
    check that every cell scores exactly as stock nbgrader scores it."""
    import tempfile
    import time

    from flask import current_app

    from autograder.grade import grader_for
    from autograder.nbgrader_cli import NbgraderError
    from autograder.release import generate_release
    from autograder.sandbox import SandboxPolicy
    from autograder.stock import grade_stock
    from autograder.variants import make_submissions
    from lms.services import catalog

    specs, problems = catalog.load(_courses_root())
    assignments = [
        (course.slug, a)
        for course in specs
        for a in course.assignments
        if not course_slug or course.slug == course_slug
    ]
    slowest = ("", 0.0)
    with click.progressbar(assignments, label="Checking", item_show_func=_check_label) as bar:
        for course, assignment in bar:
            where = f"{course}/{assignment.slug}"
            started = time.perf_counter()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    release = Path(tmp) / assignment.slug
                    generate_release(assignment.folder, release)
                    learners = {"source": assignment.folder, "release": release}
                    variants = make_submissions(assignment.folder, release, Path(tmp) / "sub")
                    # right == source and wrong == release: only the other two are new.
                    learners |= {k: v for k, v in variants.items() if k[0] in "pc"}
                    results = grade_stock(assignment.folder, learners)
                    policy = SandboxPolicy(mode=current_app.config["SANDBOX"])
                    with grader_for(
                        assignment.folder, 2, policy, gpu=assignment.gpu
                    ) as grader:  # fmt: skip
                        ours = {name: grader.grade(folder) for name, folder in learners.items()}
            except NbgraderError as e:
                problems.append(f"{where}: {e}")
                continue
            problems += [f"{where}: {p}" for p in _parity_problems(results, ours)]
            seconds = time.perf_counter() - started
            slowest = max(slowest, (where, results["source"].seconds), key=lambda s: s[1])
            source_score, possible = results["source"].autograded()
            release_score, _ = results["release"].autograded()
            if source_score != possible:
                failed = [
                    gid
                    for nb in results["source"].notebooks.values()
                    for gid, c in nb.cells.items()
                    if c.status in ("failed", "partial")
                ]
                problems.append(
                    f"{where}: the source scores {source_score:g} of {possible:g} "
                    f"autograded points (failing: {', '.join(failed)})"
                )
            if release_score != 0:
                problems.append(
                    f"{where}: the untouched release scores {release_score:g} (must be 0)"
                )
            click.echo(
                f"\n  {where}: source {source_score:g}/{possible:g}, release "
                f"{release_score:g}, {seconds:.1f} s",
            )
    for problem in problems:
        click.echo(f"PROBLEM {problem}", err=True)
    if problems:
        _fail(f"{len(problems)} problem(s) in courses/")
    click.echo(
        f"All {len(assignments)} assignments pass; slowest to grade: {slowest[0]} "
        f"({slowest[1]:.1f} s per submission with stock nbgrader)."
    )


def _parity_problems(stock: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Every cell of every learner must score as stock nbgrader scores it."""
    problems = []
    for learner, expected in stock.items():
        got = ours[learner]
        for name, notebook in expected.notebooks.items():
            for grade_id, cell in notebook.cells.items():
                mine = got.notebooks[name].cells.get(grade_id)
                if mine is None or (mine.score, mine.status) != (cell.score, cell.status):
                    problems.append(
                        f"parity: {learner} {name}/{grade_id}: stock {cell.score:g} "
                        f"({cell.status}), ours {mine and mine.score} ({mine and mine.status})"
                    )
        problems += [f"parity: {learner}: {flag}" for flag in got.flags]
    return problems


def _check_label(item: object) -> str:
    return f"{item[0]}/{item[1].slug}" if isinstance(item, tuple) else ""


@lms.command("worker")
@click.option("--workers", type=click.IntRange(min=1), help="Processes (default LMS_WORKERS).")
def worker_command(workers: int | None) -> None:
    """Run the queue consumer: grading (instant feedback first), mail, invitations, exports."""
    from flask import current_app

    from lms import worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker.serve(app, workers or int(app.config["WORKERS"]), say=click.echo)


@lms.command("labs")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where browsers connect.")
@click.option("--port", default=8000, show_default=True, help="Where browsers connect.")
@click.option(
    "--lms-url",
    default="http://127.0.0.1:8001",
    show_default=True,
    help="The LMS (gunicorn) that serves every path but the labs.",
)
@click.option(
    "--api-host",
    default="127.0.0.1",
    show_default=True,
    help="Where the LMS and lab servers reach the hub's API (port from LMS_LAB_HUB_URL).",
)
def labs_command(host: str, port: int, lms_url: str, api_host: str) -> None:
    """Run the lab hub: the site's entry point (a proxy to the LMS and the learners' lab
    servers), the lab servers themselves and their pool of sandboxed kernels."""
    import asyncio
    import logging
    import signal
    from urllib.parse import urlsplit

    from flask import current_app

    from autograder.gpu import GpuSlots
    from autograder.pool import KernelPool
    from autograder.sandbox import SandboxPolicy, SandboxUnavailable
    from lms.lab.hub import CPU, GPU, LabHub, Settings, make_proxy, serve
    from lms.services.labs import DatabaseRecorder, session_owner
    from lms.storage import storage

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings(
        secret_key=str(config["SECRET_KEY"]),
        data_dir=storage().local_folder("workspaces").parent,
        session_cookie=str(config.get("SESSION_COOKIE_NAME") or "session"),
        session_max_age=int(app.permanent_session_lifetime.total_seconds()),
        session_owner=session_owner(app),
        trusted_proxies=max(1, int(config["TRUSTED_PROXIES"])),
        sandbox=str(config["SANDBOX"]),
        max_servers=int(config["LAB_SERVERS"]),
        kernels=int(config["LAB_KERNELS"]),
        kernels_per_learner=int(config["LAB_KERNELS_PER_LEARNER"]),
        idle_seconds=float(config["LAB_IDLE_MINUTES"]) * 60,
        gpu_idle_seconds=float(config["LAB_GPU_IDLE_MINUTES"]) * 60,
        gateway_url=str(config["KERNEL_GATEWAY_URL"]),
        gateway_token=str(config["KERNEL_GATEWAY_TOKEN"]),
    )
    shortest = min(settings.idle_seconds, settings.gpu_idle_seconds)
    settings.cull_every_seconds = max(1.0, min(60.0, shortest / 6))
    recorder = DatabaseRecorder(app)
    recorder.all_stopped("hub restarted")
    pools: dict[str, KernelPool] = {}
    if not settings.gateway_url:
        slots = GpuSlots.parse(str(config["GPU_SLOTS"]), Path(config["GPU_DEVICE_ROOT"]))
        mode = str(config["SANDBOX"])
        preload = [m.strip() for m in str(config["LAB_PRELOAD"]).split(",") if m.strip()]
        try:
            pools[CPU] = KernelPool(
                settings.kernels,
                SandboxPolicy(mode=mode),
                preload=preload,
                folder="lab",
                unset_env=("NBGRADER_EXECUTION",),  # a lab is not an autograder run
                guard=False,  # labs are not graded
            )
            if slots.available:  # one sandbox per slot, with only that slot's device files
                pools[GPU] = KernelPool(
                    len(slots.devices),
                    SandboxPolicy(mode=mode),
                    preload=preload,
                    gpu=True,
                    gpu_slots=slots,
                    folder="lab",
                    unset_env=("NBGRADER_EXECUTION",),
                    guard=False,
                )
        except SandboxUnavailable as e:
            for pool in pools.values():
                pool.close()
            _fail(str(e))
    api_port = urlsplit(str(config["LAB_HUB_URL"])).port or 8091
    hub = LabHub(settings, pools, recorder, None, api_port, api_host)
    hub.proxy = make_proxy(lms_url, hub)
    click.echo(f"Lab hub: http://{host}:{port}/ (LMS at {lms_url}, API on {api_port})")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        await serve(hub, (host, port), stop)

    try:
        asyncio.run(main())
    finally:
        for pool in pools.values():
            pool.close()


def _assignment(spec: str) -> Any:
    """COURSE/ASSIGNMENT (or an assignment slug that only one course has)."""
    import sqlalchemy as sa

    from lms.extensions import db
    from lms.models import Assignment, Course

    course_slug, _, slug = spec.rpartition("/")
    query = sa.select(Assignment).join(Course).where(Assignment.slug == slug)
    if course_slug:
        query = query.where(Course.slug == course_slug)
    found = list(db.session.scalars(query))
    if len(found) != 1:
        _fail(
            f"No assignment {spec!r}." if not found else f"{spec!r} is ambiguous: use COURSE/SLUG."
        )
    return found[0]


@lms.command("grade")
@click.option("--assignment", "assignment_spec", required=True, help="COURSE/ASSIGNMENT slug.")
@click.option("--cohort", "cohort_slug", help="Only this cohort's learners.")
@click.option("--wait", is_flag=True, help="Follow the batch with a progress bar until it ends.")
def grade_command(assignment_spec: str, cohort_slug: str | None, wait: bool) -> None:
    """Autograde every learner's latest submission as one batch (run by `lms worker`)."""
    import time

    from lms.extensions import db
    from lms.services import grading

    assignment = _assignment(assignment_spec)
    try:
        cohort = programs.get_cohort(cohort_slug) if cohort_slug else None
        batch = grading.create_batch(assignment, None, cohort=cohort)
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Batch {batch.id}: {batch.total} submission(s) queued.")
    if not wait:
        return
    with click.progressbar(length=batch.total, label="Grading", show_pos=True) as bar:
        shown = 0
        while True:
            db.session.refresh(batch)
            state = grading.progress(batch)
            finished = state.done + state.failed + state.cancelled
            bar.update(finished - shown)
            shown = finished
            if state.state != "running":
                break
            db.session.commit()  # end the read transaction so the next poll sees new rows
            time.sleep(0.5)
    click.echo(f"Batch {batch.id} {state.state}: {state.done} graded, {state.failed} failed.")
    if state.failed:
        raise SystemExit(1)


@lms.command("create-token")
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for, shown to admins.")
def create_token(email: str, name: str) -> None:
    """Print a new API token for the user (stored hashed: it cannot be shown again)."""
    from lms.services import api_tokens

    user = users.find_by_email(email)
    if user is None:
        _fail(f"No user with email {email}.")
    click.echo(api_tokens.create(user, name))


@lms.command("refresh-completions")
@click.option("--cohort", "cohort_slug", help="Only this cohort.")
def refresh_completions(cohort_slug: str | None) -> None:
    """Apply the completion rule to every learner again (after grades or pass marks change)."""
    import sqlalchemy as sa

    from lms.extensions import db
    from lms.models import Cohort
    from lms.services import completion

    try:
        cohorts = (
            [programs.get_cohort(cohort_slug)]
            if cohort_slug
            else list(db.session.scalars(sa.select(Cohort).order_by(Cohort.id)))
        )
    except ServiceError as e:
        _fail(str(e))
    slugs = {cohort.id: cohort.slug for cohort in cohorts}
    changed = 0
    with click.progressbar(
        list(slugs), label="Refreshing", item_show_func=lambda i: slugs.get(i, "") if i else ""
    ) as bar:
        for cohort_id in bar:
            changed += completion.refresh(cohort_id)
    click.echo(f"{changed} enrolment(s) changed in {len(slugs)} cohort(s).")


@lms.command("issue-certificates")
@click.option("--cohort", "cohort_slug", required=True, help="Slug of the cohort.")
def issue_certificates(cohort_slug: str) -> None:
    """Issue certificates to every completed learner of the cohort who has none yet."""
    from lms.services import certificates

    try:
        cohort = programs.get_cohort(cohort_slug)
        waiting = certificates.uncertified_completed_count(cohort.id)
        click.echo(f"{waiting} completed learner(s) of {cohort.slug} without a certificate.")
        issued = certificates.issue(cohort, None)
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"{len(issued)} certificate(s) issued for cohort {cohort.slug}.")


@lms.command("revoke-certificate")
@click.argument("code")
@click.option("--reason", required=True, help="Why, kept with the certificate.")
def revoke_certificate(code: str, reason: str) -> None:
    """Revoke the certificate with verification CODE (its page then says it was revoked)."""
    from lms.services import certificates

    certificate = certificates.find(code)
    if certificate is None:
        _fail(f"No certificate has the code {code}.")
    try:
        certificates.revoke(certificate, reason, None)
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Certificate {certificate.code} revoked.")


@lms.command("seed-scale")
@click.option("--learners", type=click.IntRange(min=1), default=50_000, show_default=True)
@click.option("--assignments", type=click.IntRange(min=1), default=40, show_default=True)
def seed_scale(learners: int, assignments: int) -> None:
    """Fill the database with the national-50k program: learners, submissions, grades (once)."""
    from lms.services import scale

    try:
        scale.refuse_if_present()
        with click.progressbar(length=learners, label="Seeding", show_pos=True) as bar:
            report = scale.seed(learners, assignments, on_progress=bar.update)
    except scale.ScaleExists as e:
        click.echo(str(e))
        return
    except ServiceError as e:
        _fail(str(e))
    statuses = ", ".join(f"{n:,} {s}" for s, n in report.statuses.items())
    click.echo(
        f"Created program {report.program}: {report.organisations} organisations, "
        f"{report.cohorts} cohorts, {report.courses} courses, {report.assignments} assignments, "
        f"{report.cohort_assignments:,} cohort dates."
    )
    click.echo(f"Rows: {report.learners:,} users, {report.enrolments:,} enrolments ({statuses}),")
    click.echo(
        f"      {report.submissions:,} submissions, {report.grades:,} grades "
        f"in {report.seconds:.1f} s."
    )


@lms.group("export")
def export_group() -> None:
    """Write reports to files."""


@export_group.command("progress")
@click.option("--program", "program_slug", help="Slug of the program.")
@click.option("--cohort", "cohort_slug", help="Slug of the cohort.")
@click.option("--course", "course_slug", help="Slug of the course (all its cohorts).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "pdf"]),
    help="File format (default: from the output file's extension).",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The file to write (replaced whole, never left half-written).",
)
def export_progress(
    program_slug: str | None,
    cohort_slug: str | None,
    course_slug: str | None,
    fmt: str | None,
    output: Path,
) -> None:
    """Export the progress report of a program, a cohort or a course as CSV (the learner
    rows), XLSX (summary with charts, tables, learner rows) or PDF (summary, charts, tables)."""
    import os

    from lms.reporting import exports
    from lms.services import export_jobs

    given = {"program": program_slug, "cohort": cohort_slug, "course": course_slug}
    chosen = [(scope, slug) for scope, slug in given.items() if slug]
    if len(chosen) != 1:
        raise click.UsageError("Give exactly one of --program, --cohort or --course.")
    scope, slug = chosen[0]
    if fmt is None:
        fmt = output.suffix.lower().lstrip(".")
        if fmt not in exports.FORMATS:
            raise click.UsageError(
                f"Cannot tell the format from {output.name!r}: give --format csv, xlsx or pdf."
            )
    if not output.parent.is_dir():
        _fail(f"No folder {output.parent} to write {output.name} into.")
    target = export_jobs.find(None, scope, slug)
    if target is None:
        _fail(f"No {scope} with slug {slug!r}.")
    report = export_jobs.build(target)
    total = export_jobs.learner_rows(report)
    partial = output.with_name(f".{output.name}.{os.getpid()}.part")
    shown = 0

    with click.progressbar(length=total, label="Exporting", show_pos=True) as bar:

        def advance(done: int) -> None:
            nonlocal shown
            bar.update(done - shown)
            shown = done

        try:
            with partial.open("wb") as out:
                exports.write(report, fmt, out, on_progress=advance)
            os.replace(partial, output)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    click.echo(f"Wrote {output} ({fmt}, {total:,} learner rows).")


@lms.command("deactivate-user")
@click.argument("email")
def deactivate_user(email: str) -> None:
    """Deactivate a user: signed out of every browser now (their lab stops), no new sign-in."""
    user = users.find_by_email(email)
    if user is None:
        _fail(f"No user with email {email}.")
    try:
        users.deactivate(user, by=None)
    except ServiceError as e:
        _fail(str(e))
    click.echo(f"Deactivated {user.email}; every session of theirs has ended.")


@lms.command("reactivate-user")
@click.argument("email")
def reactivate_user(email: str) -> None:
    """Let a deactivated user sign in again."""
    user = users.find_by_email(email)
    if user is None:
        _fail(f"No user with email {email}.")
    users.reactivate(user, by=None)
    click.echo(f"Reactivated {user.email}; they may sign in again.")

"""People: `lms create-user`, `grant-role`, `import-learners`, `invite`, `create-token`,
`deactivate-user`, `reactivate-user`."""

from __future__ import annotations

from pathlib import Path

import click

from lms.commands import fail, lms
from lms.extensions import db
from lms.models import Cohort, Role
from lms.services import ServiceError, learner_import, programs, users


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
        fail(str(e))
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
        fail(f"No user with email {email}.")
    try:
        program = programs.get_program(program_slug) if program_slug else None
        course = programs.get_course(course_slug) if course_slug else None
        users.grant_role(user, Role(role), program=program, course=course)
    except ServiceError as e:
        fail(str(e))
    click.echo(f"Granted {role} to {user.email}.")


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
        fail(str(e))
    data = file.read_bytes()
    rows = max(data.count(b"\n"), 1)
    with click.progressbar(length=rows, label="Importing", show_pos=True) as bar:
        try:
            report = learner_import.import_learners(cohort, data, on_progress=bar.update)
        except learner_import.ImportRejected as e:
            for error in e.errors:
                click.echo(f"{file}:{error.line}: {error.message}", err=True)
            count = len(e.errors)
            fail(f"{count} problem{'s' if count != 1 else ''} found; nothing was imported.")
    read = f"{report.rows} row{'s' if report.rows != 1 else ''}"
    created = f"{report.users_created} new user{'s' if report.users_created != 1 else ''}"
    click.echo(
        f"{read}: {created}, {report.users_existing} existing; "
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
        fail(str(e))
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
        fail(f"Sending stopped: {progress['error']}. Run `flask lms invite` again to go on.")


@lms.command("create-token")
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for, shown to admins.")
def create_token(email: str, name: str) -> None:
    """Print a new API token for the user (stored hashed: it cannot be shown again)."""
    from lms.services import api_tokens

    user = users.find_by_email(email)
    if user is None:
        fail(f"No user with email {email}.")
    click.echo(api_tokens.create(user, name))


@lms.command("deactivate-user")
@click.argument("email")
def deactivate_user(email: str) -> None:
    """Deactivate a user: signed out of every browser now (their lab stops), no new sign-in."""
    user = users.find_by_email(email)
    if user is None:
        fail(f"No user with email {email}.")
    try:
        users.deactivate(user, by=None)
    except ServiceError as e:
        fail(str(e))
    click.echo(f"Deactivated {user.email}; every session of theirs has ended.")


@lms.command("reactivate-user")
@click.argument("email")
def reactivate_user(email: str) -> None:
    """Let a deactivated user sign in again."""
    user = users.find_by_email(email)
    if user is None:
        fail(f"No user with email {email}.")
    users.reactivate(user, by=None)
    click.echo(f"Reactivated {user.email}; they may sign in again.")

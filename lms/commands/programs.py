"""Programs, cohorts and their outcomes: `lms create-program`, `create-cohort`,
`refresh-completions`, `issue-certificates`, `revoke-certificate`."""

from __future__ import annotations

from datetime import datetime

import click
import sqlalchemy as sa

from lms.commands import fail, lms
from lms.extensions import db
from lms.models import Cohort
from lms.services import ServiceError, programs


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
        fail(str(e))
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
        fail(str(e))
    click.echo(f"Created cohort {cohort.slug}.")


@lms.command("refresh-completions")
@click.option("--cohort", "cohort_slug", help="Only this cohort.")
def refresh_completions(cohort_slug: str | None) -> None:
    """Apply the completion rule to every learner again (after grades or pass marks change)."""

    from lms.services import completion

    try:
        cohorts = (
            [programs.get_cohort(cohort_slug)]
            if cohort_slug
            else list(db.session.scalars(sa.select(Cohort).order_by(Cohort.id)))
        )
    except ServiceError as e:
        fail(str(e))
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
        fail(str(e))
    click.echo(f"{len(issued)} certificate(s) issued for cohort {cohort.slug}.")


@lms.command("revoke-certificate")
@click.argument("code")
@click.option("--reason", required=True, help="Why, kept with the certificate.")
def revoke_certificate(code: str, reason: str) -> None:
    """Revoke the certificate with verification CODE (its page then says it was revoked)."""
    from lms.services import certificates

    certificate = certificates.find(code)
    if certificate is None:
        fail(f"No certificate has the code {code}.")
    try:
        certificates.revoke(certificate, reason, None)
    except ServiceError as e:
        fail(str(e))
    click.echo(f"Certificate {certificate.code} revoked.")

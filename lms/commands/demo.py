"""Demo data and the national-scale seed: `lms demo`, `lms demo-history`, `lms seed-scale`."""

from __future__ import annotations

import click

from lms.commands import courses_root, fail, lms
from lms.services import ServiceError


@lms.command("demo")
def demo_command() -> None:
    """Load the demo programs, cohorts, learners and one user per role (once)."""
    # Here, not at the top: the web process imports this module, and the demo reads the
    # course catalogue with the grader's notebook reader, which it never needs.
    from lms.services import demo

    if demo.load(courses_root()):
        click.echo("Demo data loaded.")
    else:
        click.echo("Demo data already present; nothing changed.")
    try:
        added = demo.load_submissions(courses_root())
    except ServiceError as e:
        fail(str(e))
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
        added = demo.load_spring_work(courses_root())
    except ServiceError as e:
        fail(str(e))
    if added:
        click.echo(f"The spring cohort's {added} graded submissions added.")
    else:
        click.echo("The spring cohort's work is already present; nothing changed.")


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
        fail(str(e))
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

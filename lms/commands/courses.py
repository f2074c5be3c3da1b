"""Course content: `lms sync-courses`, `release`, `check-courses` (whose checks live in
autograder.course_check)."""

from __future__ import annotations

import click

from lms.commands import courses_root, fail, lms
from lms.services import ServiceError


@lms.command("sync-courses")
@click.option("--force", is_flag=True, help="Allow changes to released assignments (new version).")
@click.option("--actor", default="cli", help="Who is syncing, recorded with forced changes.")
def sync_courses(force: bool, actor: str) -> None:
    """Load courses/ into the database (idempotent; versioned by content hash)."""
    from lms.services import catalog

    try:
        report = catalog.sync(courses_root(), force=force, actor=actor)
    except catalog.CatalogError as e:
        for problem in e.problems:
            click.echo(f"  {problem}", err=True)
        fail(f"{len(e.problems)} problem(s); nothing was synced.")
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
                fail(str(e))
    click.echo(f"Released {len(pending)} assignment version(s).")


def _slug_of(assignment: object) -> str:
    return getattr(assignment, "slug", "") or ""


@lms.command("check-courses")
@click.option("--course", "course_slug", help="Only this course.")
def check_courses(course_slug: str | None) -> None:
    """Validate courses/ and grade with stock nbgrader: sources full marks, releases zero; then
    grade the same right, wrong, partly right and crashing submissions with our autograder and
    check that every cell scores exactly as stock nbgrader scores it."""
    from flask import current_app

    from autograder.course_check import check_assignment
    from autograder.nbgrader_cli import NbgraderError
    from autograder.sandbox import SandboxPolicy
    from lms.services import catalog

    specs, problems = catalog.load(courses_root())
    assignments = [
        (course.slug, a)
        for course in specs
        for a in course.assignments
        if not course_slug or course.slug == course_slug
    ]
    policy = SandboxPolicy(mode=current_app.config["SANDBOX"])
    slowest = ("", 0.0)
    with click.progressbar(assignments, label="Checking", item_show_func=_check_label) as bar:
        for course, assignment in bar:
            where = f"{course}/{assignment.slug}"
            try:
                check = check_assignment(assignment.folder, policy, gpu=assignment.gpu)
            except NbgraderError as e:
                problems.append(f"{where}: {e}")
                continue
            problems += [f"{where}: {problem}" for problem in check.problems]
            slowest = max(slowest, (where, check.stock_seconds), key=lambda s: s[1])
            click.echo(
                f"\n  {where}: source {check.source_score:g}/{check.possible:g}, release "
                f"{check.release_score:g}, {check.seconds:.1f} s",
            )
    for problem in problems:
        click.echo(f"PROBLEM {problem}", err=True)
    if problems:
        fail(f"{len(problems)} problem(s) in courses/")
    click.echo(
        f"All {len(assignments)} assignments pass; slowest to grade: {slowest[0]} "
        f"({slowest[1]:.1f} s per submission with stock nbgrader)."
    )


def _check_label(item: object) -> str:
    return f"{item[0]}/{item[1].slug}" if isinstance(item, tuple) else ""

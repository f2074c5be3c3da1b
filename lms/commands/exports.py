"""`lms export progress`: a progress report written to a file, with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click

from lms.commands import fail, lms


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
        fail(f"No folder {output.parent} to write {output.name} into.")
    target = export_jobs.find(None, scope, slug)
    if target is None:
        fail(f"No {scope} with slug {slug!r}.")
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

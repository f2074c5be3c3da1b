"""`lms grade`: autograde an assignment's latest submissions as one batch."""

from __future__ import annotations

import click

from lms.commands import fail, find_assignment, lms
from lms.extensions import db
from lms.services import ServiceError, programs


@lms.command("grade")
@click.option("--assignment", "assignment_spec", required=True, help="COURSE/ASSIGNMENT slug.")
@click.option("--cohort", "cohort_slug", help="Only this cohort's learners.")
@click.option("--wait", is_flag=True, help="Follow the batch with a progress bar until it ends.")
def grade_command(assignment_spec: str, cohort_slug: str | None, wait: bool) -> None:
    """Autograde every learner's latest submission as one batch (run by `lms worker`)."""
    import time

    from lms.services import grading

    assignment = find_assignment(assignment_spec)
    try:
        cohort = programs.get_cohort(cohort_slug) if cohort_slug else None
        batch = grading.create_batch(assignment, None, cohort=cohort)
    except ServiceError as e:
        fail(str(e))
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

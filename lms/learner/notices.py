"""What the learner is told (flashed) after submitting, from the page or the lab."""

from __future__ import annotations

from flask import flash
from flask_babel import gettext as _

from lms.models import GradingJob
from lms.services import submissions


def say_submitted(outcome: submissions.Outcome, job: GradingJob | None) -> None:
    """Flash the new attempt (or that nothing new was stored) and when its tests are run."""
    submission = outcome.submission
    if not outcome.created:
        flash(
            _(
                "Already submitted as attempt %(attempt)d: nothing new was stored.",
                attempt=submission.attempt,
            ),
            "info",
        )
        return
    flash(_("Attempt %(attempt)d submitted.", attempt=submission.attempt), "info")
    if not submission.assignment.instant_feedback:
        return
    if job is not None:
        flash(_("Your notebook is being checked: the test results appear here."), "info")
    else:
        flash(
            _(
                "You have used this hour's instant feedback checks: this attempt is graded "
                "later, with everyone's."
            ),
            "info",
        )

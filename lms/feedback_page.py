"""The autograder's feedback HTML as a response: sanitized learner-made content, served so that
it runs nothing, loads nothing and is not cached. Learners and instructors get it the same way."""

from __future__ import annotations

from flask import Response, abort

from lms.models import GradingJob
from lms.storage import blobs

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def response(job: GradingJob | None, notebook: str) -> Response:
    """The notebook's feedback page of the grading job, or 404 when there is none."""
    digest = (job.feedback or {}).get(notebook) if job is not None else None
    if digest is None:
        abort(404)
    try:
        page = blobs.get(digest)
    except (OSError, ValueError):
        abort(404)
    served = Response(page, mimetype="text/html")
    served.headers["Content-Security-Policy"] = CSP
    served.headers["X-Content-Type-Options"] = "nosniff"
    served.headers["Cache-Control"] = "private, no-store"
    return served

"""Submissions: a learner's notebooks, checked, stored once by content hash, never changed.

Everything is checked before anything is stored: a rejected upload leaves no file, no row and
no job behind. A retried request (the same submit key) or an upload identical to the latest
attempt gives back that attempt instead of a new one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from lms.extensions import db
from lms.models import (
    Assignment,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    Release,
    Submission,
    User,
    cohort_courses,
    utcnow,
)
from lms.queries import schedules
from lms.services import ServiceError
from lms.storage import blobs

KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")


class SubmissionError(ServiceError):
    pass


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    submission: Submission
    created: bool  # False: a retry or an unchanged upload gave back an existing attempt


def submit(
    user: User,
    assignment: Assignment,
    cohort: Cohort,
    uploads: Sequence[Upload],
    *,
    key: str | None = None,
    via: str = "upload",
    now: datetime | None = None,
) -> Outcome:
    """Store a new attempt of the learner's notebooks for the assignment in the cohort."""
    now = now or utcnow()
    if key is not None and not KEY_RE.match(key):
        raise SubmissionError(_("The submission key is not valid."))
    if key is not None:
        existing = _by_key(user.id, key)
        if existing is not None:
            return Outcome(existing, created=False)
    scheduled = _check_may_submit(user, assignment, cohort, now)
    files = check_files(assignment, uploads)
    content_hash = content_hash_of(files)
    latest = latest_attempt(user.id, assignment.id, cohort.id)
    if latest is not None and latest.content_hash == content_hash:
        return Outcome(latest, created=False)
    digests = {name: blobs.put(data) for name, data in files.items()}
    deadline = schedules.deadline_for(scheduled, user.id)
    submission = Submission(
        user_id=user.id,
        assignment_id=assignment.id,
        cohort_id=cohort.id,
        attempt=(latest.attempt + 1) if latest else 1,
        submitted_at=now,
        version=assignment.version,
        files=digests,
        content_hash=content_hash,
        submit_key=key,
        due_at=deadline.due_at,
        late_seconds=deadline.late_seconds(now),
        via=via,
    )
    db.session.add(submission)
    try:
        db.session.commit()
    except IntegrityError:
        # Two requests raced (a double click): the other one stored it; give that one back.
        db.session.rollback()
        winner = _by_key(user.id, key) if key else None
        winner = winner or latest_attempt(user.id, assignment.id, cohort.id)
        if winner is None or winner.content_hash != content_hash:
            raise SubmissionError(
                _("Another submission arrived at the same time; try again.")
            ) from None
        return Outcome(winner, created=False)
    return Outcome(submission, created=True)


def _by_key(user_id: int, key: str) -> Submission | None:
    return db.session.scalar(
        sa.select(Submission).where(Submission.user_id == user_id, Submission.submit_key == key)
    )


def latest_attempt(user_id: int, assignment_id: int, cohort_id: int) -> Submission | None:
    return db.session.scalar(
        sa.select(Submission)
        .where(
            Submission.user_id == user_id,
            Submission.assignment_id == assignment_id,
            Submission.cohort_id == cohort_id,
        )
        .order_by(Submission.attempt.desc())
        .limit(1)
    )


def _check_may_submit(user: User, assignment: Assignment, cohort: Cohort, now: datetime) -> Any:
    enrolled = db.session.scalar(
        sa.select(Enrolment.id).where(
            Enrolment.user_id == user.id,
            Enrolment.cohort_id == cohort.id,
            Enrolment.status != EnrolmentStatus.WITHDRAWN,
        )
    )
    takes_course = db.session.scalar(
        sa.select(cohort_courses.c.course_id).where(
            cohort_courses.c.cohort_id == cohort.id,
            cohort_courses.c.course_id == assignment.course_id,
        )
    )
    if enrolled is None or takes_course is None or not assignment.active:
        raise SubmissionError(_("You cannot submit to this assignment."))
    scheduled = schedules.schedule(cohort.id, assignment.id)
    if scheduled is None or scheduled.opens_at > now:
        raise SubmissionError(_("This assignment is not open yet."))
    released = db.session.scalar(
        sa.select(Release.id).where(
            Release.assignment_id == assignment.id, Release.version == assignment.version
        )
    )
    if released is None:
        raise SubmissionError(_("This assignment has not been released yet."))
    return scheduled


def check_files(assignment: Assignment, uploads: Sequence[Upload]) -> dict[str, bytes]:
    """The uploads as {notebook file name: bytes}, or a SubmissionError saying what is wrong.

    Each file must be one of the assignment's notebooks, by name. A single notebook uploaded
    to a one-notebook assignment is taken whatever its name: browsers save a second download
    as "name (1).ipynb".
    """
    expected = [f"{nb.name}.ipynb" for nb in assignment.notebooks]
    uploads = [u for u in uploads if u.filename or u.data]
    if not uploads:
        raise SubmissionError(_("Choose the notebook file to upload."))
    files: dict[str, bytes] = {}
    for upload in uploads:
        name = PurePosixPath(upload.filename.replace("\\", "/")).name
        if not name.endswith(".ipynb"):
            raise SubmissionError(
                _("%(name)s is not a notebook: upload .ipynb files.", name=name or "?")
            )
        chosen = name  # the learner's own file name: what a problem with it is said about
        if name not in expected and len(expected) == 1 and len(uploads) == 1:
            name = expected[0]
        if name not in expected:
            raise SubmissionError(
                _(
                    "%(name)s is not a notebook of this assignment (expected: %(expected)s).",
                    name=name,
                    expected=", ".join(expected),
                )
            )
        if name in files:
            raise SubmissionError(_("%(name)s was uploaded twice.", name=name))
        check_notebook(chosen, upload.data)
        files[name] = upload.data
    return files


def check_notebook(name: str, data: bytes) -> None:
    """An nbformat 4 notebook with nbgrader's metadata, or a one-line reason why not."""
    try:
        notebook = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SubmissionError(
            _("%(name)s is not a notebook: it is not UTF-8 text.", name=name)
        ) from None
    except json.JSONDecodeError as e:
        raise SubmissionError(
            _(
                "%(name)s is not a valid notebook: broken JSON at line %(line)d.",
                name=name,
                line=e.lineno,
            )
        ) from e
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError(_("%(name)s is not a notebook: it has no list of cells.", name=name))
    if notebook.get("nbformat") != 4:
        raise SubmissionError(
            _("%(name)s must be in notebook format 4 (Jupyter saves it so).", name=name)
        )
    graded = 0
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise SubmissionError(_("%(name)s has a cell that is not a notebook cell.", name=name))
        source = cell.get("source", "")
        if not isinstance(source, str) and not (
            isinstance(source, list) and all(isinstance(line, str) for line in source)
        ):
            raise SubmissionError(_("%(name)s has a cell whose text is not text.", name=name))
        meta = cell.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict):
            graded += 1
    if not graded:
        raise SubmissionError(
            _(
                "%(name)s has no nbgrader cells: upload the notebook given with the assignment, "
                "not a new one.",
                name=name,
            )
        )


def content_hash_of(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()

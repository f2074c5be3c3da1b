"""Releases: the learner version of each assignment version, generated once, kept forever."""

from __future__ import annotations

import tempfile
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from lms.extensions import db
from lms.models import Assignment, Release, User
from lms.services import ServiceError
from lms.services.catalog import current_hash
from lms.storage import storage


class ReleaseError(ServiceError):
    pass


def courses_root() -> Path:
    return Path(current_app.config["COURSES_DIR"])


def release_key(assignment: Assignment, version: int) -> str:
    """Where the release's files are kept (a storage folder; Release.path)."""
    return f"releases/{assignment.course.slug}/{assignment.slug}/v{version}"


def release(assignment: Assignment, released_by: User | None = None) -> Release:
    """Release the assignment's current version (returning the release if it already exists).

    The source folder must still be the content that was synced: otherwise the release would
    not be the version the database describes.
    """
    from autograder.release import ReleaseError as GenerateError
    from autograder.release import generate_release

    existing = assignment.current_release
    if existing is not None:
        return existing
    if not assignment.active:
        raise ReleaseError(f"{assignment.course.slug}/{assignment.slug} is no longer in courses/")
    source = courses_root() / assignment.course.slug / assignment.slug
    if current_hash(source.parent, assignment.slug) != assignment.content_hash:
        raise ReleaseError(
            f"{assignment.course.slug}/{assignment.slug}: courses/ changed since the last sync; "
            "run sync-courses first"
        )
    key = release_key(assignment, assignment.version)
    files = storage().list(key)
    if not files:  # a crash after storing but before the commit leaves it behind: reused
        with tempfile.TemporaryDirectory(prefix="release-") as work:
            generated = Path(work) / "release"
            try:
                generate_release(source, generated)
            except GenerateError as e:
                raise ReleaseError(f"{assignment.course.slug}/{assignment.slug}: {e}") from e
            storage().put_folder(key, generated)
    row = Release(
        assignment=assignment,
        version=assignment.version,
        content_hash=assignment.content_hash,
        path=key,
        released_by_id=released_by.id if released_by else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


def unreleased() -> list[Assignment]:
    """Active assignments whose current version has no release yet."""
    released = sa.select(Release.id).where(
        Release.assignment_id == Assignment.id, Release.version == Assignment.version
    )
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.active.is_(True), ~released.exists())
            .order_by(Assignment.course_id, Assignment.position)
        )
    )

"""A person's life in the system after they join: withdrawal from a cohort, merging duplicate
accounts, and their personal data (Vietnam's Decree 13/2023, Korea's PIPA): a download of
everything held about them, and erasure on request. Every action here is audited.

Erasure keeps the figures consistent: the person's rows stay (anonymised) wherever they count
(enrolments, grades, completions, issued certificates), while what identifies them goes: name,
email, password, sessions, API tokens, links, the files they submitted and their feedback,
their lab workspace. A certificate issued to them stays verifiable; its page says the holder's
data was erased instead of showing a name.

Over 400 lines on purpose: withdrawal, merge, export and erasure each walk every table that
holds a person; kept together, a new table is added to all four at once.
"""

from __future__ import annotations

import enum
import io
import json
import shutil
import zipfile
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

from lms.extensions import db
from lms.models import (
    AccountLink,
    ApiToken,
    AuditEvent,
    Certificate,
    Enrolment,
    EnrolmentStatus,
    ExportJob,
    Extension,
    Grade,
    GradeEvent,
    GradingJob,
    LabKernel,
    LabServer,
    RoleGrant,
    Submission,
    User,
    UserSession,
    utcnow,
)
from lms.services import ServiceError, audit, sessions, workspaces
from lms.storage import blobs

# Columns never handed out, not even to their owner: they are secrets, not data about them.
SECRET_COLUMNS = {"password_hash", "token_hash"}
ERASED_DOMAIN = "erased.invalid"


class PeopleError(ServiceError):
    pass


# --- Enrolments -------------------------------------------------------------------------


def withdraw(enrolment: Enrolment, by: User | None) -> None:
    """The learner leaves the cohort; their work, grades and history stay."""
    if enrolment.status == EnrolmentStatus.WITHDRAWN:
        return
    enrolment.status = EnrolmentStatus.WITHDRAWN
    enrolment.withdrawn_at = utcnow()
    audit.record(by, enrolment.user, "withdrawn", f"cohort {enrolment.cohort.slug}")
    db.session.commit()


def reinstate(enrolment: Enrolment, by: User | None) -> None:
    """Undo a withdrawal: back to where the learner was (certified, completed or enrolled)."""
    if enrolment.status != EnrolmentStatus.WITHDRAWN:
        return
    enrolment.status = (
        EnrolmentStatus.CERTIFIED
        if enrolment.certified_at
        else EnrolmentStatus.COMPLETED
        if enrolment.completed_at
        else EnrolmentStatus.ENROLLED
    )
    enrolment.withdrawn_at = None
    audit.record(by, enrolment.user, "reinstated", f"cohort {enrolment.cohort.slug}")
    db.session.commit()


# --- Merging duplicates -----------------------------------------------------------------


def merge(duplicate: User, into: User, by: User | None) -> dict[str, int]:
    """Fold a duplicate account (two imports under two addresses) into the one that stays:
    its enrolments, submissions, extensions, roles and history move over; where both were in
    one cohort, the more advanced enrolment stays and the other's work joins it. The
    duplicate is deactivated (signed out everywhere) and keeps no address. One transaction.
    Returns what moved, by kind."""
    if duplicate.id == into.id:
        raise PeopleError("An account cannot be merged into itself.")
    if duplicate.merged_into_id is not None or duplicate.erased_at is not None:
        raise PeopleError("This account was already merged or erased.")
    if into.erased_at is not None or into.merged_into_id is not None:
        raise PeopleError("Merge into an account that is in use.")
    moved = {"enrolments": 0, "submissions": 0, "extensions": 0, "roles": 0}
    old_email = duplicate.email

    kept = {
        e.cohort_id: e
        for e in db.session.scalars(sa.select(Enrolment).where(Enrolment.user_id == into.id))
    }
    for enrolment in list(
        db.session.scalars(sa.select(Enrolment).where(Enrolment.user_id == duplicate.id))
    ):
        other = kept.get(enrolment.cohort_id)
        if other is None:
            enrolment.user_id = into.id
            moved["enrolments"] += 1
            continue
        _fold_enrolment(enrolment, other)

    # Submissions: attempts of the duplicate follow the kept account's own, in time order.
    last_attempt: dict[tuple[int, int], int] = {
        (assignment_id, cohort_id): attempt
        for assignment_id, cohort_id, attempt in db.session.execute(
            sa.select(
                Submission.assignment_id, Submission.cohort_id, sa.func.max(Submission.attempt)
            )
            .where(Submission.user_id == into.id)
            .group_by(Submission.assignment_id, Submission.cohort_id)
        ).tuples()
    }
    for submission in db.session.scalars(
        sa.select(Submission)
        .where(Submission.user_id == duplicate.id)
        .order_by(Submission.submitted_at, Submission.id)
    ):
        key = (submission.assignment_id, submission.cohort_id)
        if key in last_attempt:
            last_attempt[key] += 1
            submission.attempt = last_attempt[key]
        submission.user_id = into.id
        submission.submit_key = None
        moved["submissions"] += 1

    existing = {
        e.cohort_assignment_id: e
        for e in db.session.scalars(sa.select(Extension).where(Extension.user_id == into.id))
    }
    for extension in list(
        db.session.scalars(sa.select(Extension).where(Extension.user_id == duplicate.id))
    ):
        mine = existing.get(extension.cohort_assignment_id)
        if mine is None:
            extension.user_id = into.id
            moved["extensions"] += 1
        else:
            mine.due_at = max(mine.due_at, extension.due_at)
            db.session.delete(extension)

    held = {(g.role, g.program_id, g.course_id) for g in into.grants}
    for grant in list(duplicate.grants):
        if (grant.role, grant.program_id, grant.course_id) not in held:
            grant.user_id = into.id
            moved["roles"] += 1
        else:
            db.session.delete(grant)

    db.session.execute(
        sa.update(ExportJob)
        .where(ExportJob.requested_by_id == duplicate.id)
        .values(requested_by_id=into.id)
    )
    # Lab history moves (kernel minutes); a lab still open stays the duplicate's, so that the
    # hub stops it as the duplicate's when the sessions end below.
    db.session.execute(
        sa.update(LabServer)
        .where(LabServer.user_id == duplicate.id, LabServer.stopped_at.is_not(None))
        .values(user_id=into.id)
    )
    db.session.execute(
        sa.update(LabKernel)
        .where(LabKernel.user_id == duplicate.id, LabKernel.ended_at.is_not(None))
        .values(user_id=into.id)
    )
    db.session.execute(sa.delete(ApiToken).where(ApiToken.user_id == duplicate.id))
    db.session.execute(sa.delete(AccountLink).where(AccountLink.user_id == duplicate.id))

    db.session.flush()
    duplicate.merged_into_id = into.id
    duplicate.email = f"merged-{duplicate.id}@{ERASED_DOMAIN}"
    duplicate.password_hash = None
    duplicate.active = False
    detail = f"{old_email} -> {into.email}: " + ", ".join(f"{n} {k}" for k, n in moved.items())
    audit.record(by, into, "merged", detail)
    audit.record(by, duplicate, "merged-away", detail)
    sessions.revoke_all(duplicate, "merged")  # commits the whole merge
    return moved


def _fold_enrolment(duplicate: Enrolment, kept: Enrolment) -> None:
    """Both accounts were in the cohort: the kept enrolment takes the furthest milestones and
    the duplicate's certificate if it has none. A second certificate cannot move (one per
    enrolment): it stays, valid, on the duplicate's enrolment, which is marked withdrawn so
    the person counts once."""
    for field in ("completed_at", "certified_at"):
        if getattr(kept, field) is None and getattr(duplicate, field) is not None:
            setattr(kept, field, getattr(duplicate, field))
    kept.enrolled_at = min(kept.enrolled_at, duplicate.enrolled_at)
    if duplicate.status != EnrolmentStatus.WITHDRAWN or kept.status != EnrolmentStatus.WITHDRAWN:
        kept.withdrawn_at = None
        kept.status = (
            EnrolmentStatus.CERTIFIED
            if kept.certified_at
            else EnrolmentStatus.COMPLETED
            if kept.completed_at
            else EnrolmentStatus.ENROLLED
        )
    certificate = db.session.scalar(
        sa.select(Certificate).where(Certificate.enrolment_id == duplicate.id)
    )
    kept_has_one = db.session.scalar(
        sa.select(Certificate.id).where(Certificate.enrolment_id == kept.id)
    )
    if certificate is not None and kept_has_one is None:
        certificate.enrolment_id = kept.id
        certificate = None
    db.session.flush()
    if certificate is None:
        db.session.delete(duplicate)
    else:
        duplicate.status = EnrolmentStatus.WITHDRAWN
        duplicate.withdrawn_at = duplicate.withdrawn_at or utcnow()


# --- Personal data: download ---------------------------------------------------------------


def _rows(model: type[DeclarativeBase], condition: Any) -> list[dict[str, Any]]:
    mapper = sa.inspect(model)
    columns = [c.key for c in mapper.column_attrs if c.key not in SECRET_COLUMNS]
    return [
        {key: _plain(getattr(row, key)) for key in columns}
        for row in db.session.scalars(sa.select(model).where(condition))
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def personal_data(user: User, by: User | None) -> bytes:
    """Everything the system holds about a person, as one ZIP: data.json (profile, roles,
    enrolments, submissions, grades, extensions, certificates, sessions, labs, links, events)
    and the files they submitted and keep in their lab workspace. Audited."""
    submission_ids = list(
        db.session.scalars(sa.select(Submission.id).where(Submission.user_id == user.id))
    )
    data: dict[str, Any] = {
        "exported_at": utcnow().isoformat(),
        "profile": _rows(User, User.id == user.id)[0],
        "organisation": user.organisation.name if user.organisation else None,
        "roles": _rows(RoleGrant, RoleGrant.user_id == user.id),
        "enrolments": _rows(Enrolment, Enrolment.user_id == user.id),
        "submissions": _rows(Submission, Submission.user_id == user.id),
        "grades": _rows(Grade, Grade.submission_id.in_(submission_ids)),
        "grade_changes": _rows(
            GradeEvent,
            GradeEvent.grade_id.in_(
                sa.select(Grade.id).where(Grade.submission_id.in_(submission_ids))
            ),
        ),
        "gradings": _rows(GradingJob, GradingJob.submission_id.in_(submission_ids)),
        "extensions": _rows(Extension, Extension.user_id == user.id),
        "certificates": _rows(
            Certificate,
            Certificate.enrolment_id.in_(
                sa.select(Enrolment.id).where(Enrolment.user_id == user.id)
            ),
        ),
        "sessions": _rows(UserSession, UserSession.user_id == user.id),
        "labs": _rows(LabServer, LabServer.user_id == user.id),
        "lab_kernels": _rows(LabKernel, LabKernel.user_id == user.id),
        "links": _rows(AccountLink, AccountLink.user_id == user.id),
        "api_tokens": _rows(ApiToken, ApiToken.user_id == user.id),
        "events": _rows(AuditEvent, AuditEvent.subject_id == user.id),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=2, default=str))
        archive.writestr("README.txt", _README)
        for submission in data["submissions"]:
            for name, digest in (submission["files"] or {}).items():
                _add_blob(archive, f"submissions/{submission['id']}/{name}", digest)
        for job in data["gradings"]:
            for name, digest in (job["feedback"] or {}).items():
                _add_blob(archive, f"feedback/{job['id']}/{name}.html", digest)
        root = workspaces.root_of(user)
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"workspace/{path.relative_to(root)}")
    audit.record(by, user, "data-exported")
    db.session.commit()
    return out.getvalue()


_README = """Everything this training system holds about you.

data.json      your profile, roles, enrolments, submissions and their grades, extensions,
               certificates, sign-in sessions, labs, links sent to you, and the log of
               actions on your account (who, what, when). Times are UTC.
submissions/   the notebooks you submitted, by submission id.
feedback/      the feedback pages of your gradings.
workspace/     the files in your lab workspace.
Passwords and tokens are stored only as one-way hashes and are not included.
"""


def _add_blob(archive: zipfile.ZipFile, name: str, digest: str) -> None:
    try:
        archive.writestr(name, blobs.get(digest))
    except (OSError, ValueError):
        archive.writestr(name + ".missing.txt", "This file is no longer stored.\n")


# --- Personal data: erasure --------------------------------------------------------------


def erase(user: User, by: User | None) -> None:
    """Erase a person's personal data (see the module's docstring). Irreversible."""
    if by is not None and by.id == user.id:
        raise PeopleError("You cannot erase your own account here.")
    if user.erased_at is not None:
        return
    if user.is_admin:
        raise PeopleError("Revoke the admin role first.")
    submissions = list(
        db.session.scalars(sa.select(Submission).where(Submission.user_id == user.id))
    )
    digests: set[str] = set()
    for submission in submissions:
        digests.update((submission.files or {}).values())
        submission.files = {}
    jobs = list(
        db.session.scalars(
            sa.select(GradingJob).where(GradingJob.submission_id.in_([s.id for s in submissions]))
        )
    )
    for job in jobs:
        digests.update((job.feedback or {}).values())
        job.feedback = {}
    for certificate in db.session.scalars(
        sa.select(Certificate).where(
            Certificate.enrolment_id.in_(
                sa.select(Enrolment.id).where(Enrolment.user_id == user.id)
            )
        )
    ):
        certificate.learner_name = ""
    db.session.execute(sa.delete(ApiToken).where(ApiToken.user_id == user.id))
    db.session.execute(sa.delete(AccountLink).where(AccountLink.user_id == user.id))
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.user_id == user.id)
        .values(ip=None, user_agent=None)
    )
    for grant in list(user.grants):
        db.session.delete(grant)
    # The log keeps who did what to this person and when; its details (old addresses of an
    # email change or a merge) are personal data.
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.subject_id == user.id).values(detail="")
    )
    user.email = f"erased-{user.id}@{ERASED_DOMAIN}"
    user.name = f"Erased #{user.id}"
    user.password_hash = None
    user.locale = None
    user.last_login_at = None
    user.active = False
    user.erased_at = utcnow()
    audit.record(by, user, "erased")
    sessions.revoke_all(user, "erased")  # commits; the lab stops on its signal
    _delete_unshared_blobs(digests, user.id)
    shutil.rmtree(workspaces.root_of(user), ignore_errors=True)


def _delete_unshared_blobs(digests: Iterable[str], user_id: int) -> None:
    """Blobs are stored once by content: an untouched release notebook is the same file for
    many learners. Only those no one else's submission or feedback uses are deleted."""
    for digest in digests:
        used = db.session.scalar(
            sa.select(sa.func.count())
            .where(
                sa.or_(
                    sa.cast(Submission.files, sa.Text).contains(digest),
                    sa.cast(GradingJob.feedback, sa.Text).contains(digest),
                )
            )
            .select_from(Submission)
            .outerjoin(GradingJob, GradingJob.submission_id == Submission.id)
        )
        if not used:
            try:
                blobs.delete(digest)
            except ValueError:
                continue

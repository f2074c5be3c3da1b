"""Certificates of completion: issuing them to completed learners, revoking them, and finding
one by its verification code.

A certificate freezes what it states when it is issued: the learner's and the program's
names, the cohort, the day of completion, and each course of the cohort with the sum of the
learner's final scores (latest attempt per assignment in the cohort, late penalty applied) out
of the sum of its active assignments' points. Later renames or regrades change nothing on it.

The verification code is 15 random Crockford base32 characters (75 bits from `secrets`), shown
and stored as XXXXX-XXXXX-XXXXX; lookups accept lower case, missing dashes and spaces, and the
letters Crockford reads as digits (O for 0, I and L for 1).
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from lms.extensions import db
from lms.models import (
    Certificate,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    User,
    utcnow,
)
from lms.queries import gradebook
from lms.services import ServiceError, audit

log = logging.getLogger(__name__)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 15
GROUP = 5
# What Crockford decoding reads as a digit; dashes and spaces are only for the eye.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
# Learners whose submissions one query reads, so no IN list grows without bound.
_CHUNK = 500
MAX_REASON = 500


class CertificateError(ServiceError):
    pass


def new_code() -> str:
    """A fresh verification code: 75 random bits as XXXXX-XXXXX-XXXXX."""
    bits = secrets.randbits(5 * CODE_LENGTH)
    chars = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(CODE_LENGTH))
    return _grouped(chars)


def _grouped(chars: str) -> str:
    return "-".join(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))


def normalise_code(text: str) -> str | None:
    """The code as stored (XXXXX-XXXXX-XXXXX), or None if text cannot be one."""
    if len(text) > 4 * CODE_LENGTH:
        return None
    chars = text.strip().upper().translate(_READ_AS)
    if len(chars) != CODE_LENGTH or any(c not in ALPHABET for c in chars):
        return None
    return _grouped(chars)


def find(code: str) -> Certificate | None:
    """The certificate with this verification code (in any accepted spelling), or None."""
    normalised = normalise_code(code)
    if normalised is None:
        return None
    return db.session.scalar(sa.select(Certificate).where(Certificate.code == normalised))


def issue(target: Cohort | Iterable[Enrolment], actor: User | None) -> list[Certificate]:
    """Certificates for every completed enrolment of the cohort (or of the given enrolments)
    that has none yet; the others are skipped. Each enrolment becomes certified. A few
    queries per cohort whatever its size; one transaction. Returns the new certificates."""
    if isinstance(target, Cohort):
        pending = list(
            db.session.scalars(
                _uncertified_completed()
                .where(Enrolment.cohort_id == target.id)
                .options(selectinload(Enrolment.user))
                .order_by(Enrolment.id)
            )
        )
    else:
        ids = {e.id for e in target}
        pending = []
        for chunk in _chunks(sorted(ids)):
            pending += db.session.scalars(
                _uncertified_completed()
                .where(Enrolment.id.in_(chunk))
                .options(selectinload(Enrolment.user))
                .order_by(Enrolment.id)
            )
    by_cohort: dict[int, list[Enrolment]] = defaultdict(list)
    for enrolment in pending:
        by_cohort[enrolment.cohort_id].append(enrolment)

    now = utcnow()
    actor_id = actor.id if actor is not None else None
    rows: list[dict[str, object]] = []
    for cohort_id, enrolments in by_cohort.items():
        cohort = db.session.scalars(
            sa.select(Cohort)
            .where(Cohort.id == cohort_id)
            .options(selectinload(Cohort.program), selectinload(Cohort.courses))
        ).one()
        statements = _course_statements(cohort, [e.user_id for e in enrolments])
        for enrolment in enrolments:
            rows.append(
                {
                    "enrolment_id": enrolment.id,
                    "code": new_code(),
                    "issued_at": now,
                    "issued_by_id": actor_id,
                    "learner_name": enrolment.user.name,
                    "program_name": cohort.program.name,
                    "cohort_name": cohort.name,
                    "completed_on": (enrolment.completed_at or now).date(),
                    "courses": statements[enrolment.user_id],
                    "revoked_reason": "",
                }
            )
            enrolment.status = EnrolmentStatus.CERTIFIED
            enrolment.certified_at = now
    if not rows:
        db.session.commit()
        return []
    enrolment_ids = [e.id for e in pending]  # read now: commit expires every loaded row
    try:
        # One executemany (the ORM would insert row by row on SQLite to learn each id).
        db.session.execute(sa.insert(Certificate), rows)
        db.session.commit()
    except IntegrityError as e:
        # Someone issued for the same learners at the same moment (or, once in 2**75, a code
        # was drawn twice): nothing of this call was stored.
        db.session.rollback()
        raise CertificateError(
            _(
                "Certificates were being issued for these learners at the same time: "
                "nothing was issued. Try again."
            )
        ) from e
    log.info(
        "%d certificate(s) issued by %s", len(rows), f"user {actor_id}" if actor_id else "the CLI"
    )
    issued: list[Certificate] = []
    for chunk in _chunks(enrolment_ids):
        issued += db.session.scalars(
            sa.select(Certificate)
            .where(Certificate.enrolment_id.in_(chunk))
            .order_by(Certificate.enrolment_id)
        )
    return issued


def revoke(certificate: Certificate, reason: str, actor: User | None) -> Certificate:
    """Revoke the certificate (the verification page then says so, with the date), recorded
    in the learner's audit log with the actor and the reason. The enrolment goes back to
    completed: it no longer counts as certified, and keeps its revoked certificate, so it is
    not issued a new one. Revoking twice changes nothing."""
    reason = reason.strip()
    if not reason:
        raise CertificateError(_("Give the reason for revoking the certificate."))
    if len(reason) > MAX_REASON:
        raise CertificateError(_("The reason is longer than %(num)d characters.", num=MAX_REASON))
    if certificate.revoked_at is not None:
        return certificate
    certificate.revoked_at = utcnow()
    certificate.revoked_reason = reason
    enrolment = certificate.enrolment
    if enrolment.status == EnrolmentStatus.CERTIFIED:
        enrolment.status = EnrolmentStatus.COMPLETED
        enrolment.certified_at = None
    # Who revoked it and why, in the learner's audit log (the row keeps the reason and when).
    audit.record(actor, enrolment.user, "certificate-revoked", f"{certificate.code}: {reason}")
    db.session.commit()
    log.info(
        "certificate %s revoked by %s", certificate.code, f"user {actor.id}" if actor else "the CLI"
    )
    return certificate


def uncertified_completed_count(cohort_id: int) -> int:
    """How many completed learners of the cohort have no certificate yet (issue() would
    certify them)."""
    return int(
        db.session.scalar(
            _uncertified_completed()
            .where(Enrolment.cohort_id == cohort_id)
            .with_only_columns(sa.func.count(Enrolment.id))
        )
        or 0
    )


def of_learner(user_id: int) -> list[Certificate]:
    """The learner's certificates, newest first (read-only)."""
    return list(
        db.session.scalars(
            sa.select(Certificate)
            .join(Enrolment, Enrolment.id == Certificate.enrolment_id)
            .where(Enrolment.user_id == user_id)
            .order_by(Certificate.issued_at.desc(), Certificate.id.desc())
        )
    )


def _uncertified_completed() -> sa.Select[tuple[Enrolment]]:
    return sa.select(Enrolment).where(
        Enrolment.status == EnrolmentStatus.COMPLETED,
        ~sa.exists().where(Certificate.enrolment_id == Enrolment.id),
    )


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _course_statements(
    cohort: Cohort, user_ids: Sequence[int]
) -> dict[int, list[dict[str, object]]]:
    """Learner id -> [{"title", "score", "max_score"}, ...] for each course of the cohort in
    its order: the sum of the final scores of the learner's latest attempts at the course's
    active assignments (ungraded counts 0), out of the sum of their points."""
    assignments = gradebook.required_assignments(cohort.id)
    course_of = {a.id: a.course_id for a in assignments}
    points: dict[int, float] = defaultdict(float)
    for assignment in assignments:
        points[assignment.course_id] += assignment.points

    scores: dict[tuple[int, int], float] = defaultdict(float)  # (learner, course) -> sum
    if course_of:
        for chunk in _chunks(user_ids):
            attempts = gradebook.latest_attempts(cohort.id, list(course_of), set(chunk))
            for (user_id, assignment_id), attempt in attempts.items():
                scores[(user_id, course_of[assignment_id])] += attempt.final or 0.0
    return {
        user_id: [
            {
                "title": course.title,
                "score": round(scores[(user_id, course.id)], 2),
                "max_score": round(points[course.id], 2),
            }
            for course in cohort.courses
        ]
        for user_id in user_ids
    }

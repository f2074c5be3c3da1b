"""The certificates issued in a cohort, as its staff list them (read-only)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from lms.extensions import db
from lms.models import Certificate, Enrolment


def _of_cohort(cohort_id: int, search: str) -> sa.Select[tuple[Certificate]]:
    query = (
        sa.select(Certificate)
        .join(Enrolment, Enrolment.id == Certificate.enrolment_id)
        .where(Enrolment.cohort_id == cohort_id)
    )
    needle = search.strip().lower()
    if needle:
        query = query.where(
            sa.or_(
                sa.func.lower(Certificate.learner_name).contains(needle, autoescape=True),
                sa.func.lower(Certificate.code).contains(needle, autoescape=True),
            )
        )
    return query


def count(cohort_id: int, search: str = "") -> int:
    """How many certificates the cohort has (revoked ones too), or how many of them have a
    name or code containing search."""
    counted = _of_cohort(cohort_id, search).with_only_columns(sa.func.count(Certificate.id))
    return int(db.session.scalar(counted) or 0)


def of_cohort(
    cohort_id: int, search: str = "", offset: int = 0, limit: int = 100
) -> list[Certificate]:
    """A page of the cohort's certificates (revoked ones too), by the learner's name as
    printed; only those whose name or code contains search when given."""
    return list(
        db.session.scalars(
            _of_cohort(cohort_id, search)
            .options(selectinload(Certificate.enrolment).selectinload(Enrolment.user))
            .order_by(Certificate.learner_name, Certificate.id)
            .offset(offset)
            .limit(limit)
        )
    )

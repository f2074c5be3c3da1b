"""Bearer tokens for the JSON API: shown once, stored as sha256."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from lms.extensions import db
from lms.models import ApiToken, User, utcnow

PREFIX = "lms_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(user: User, name: str = "") -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), name=name[:100]))
    db.session.commit()
    return token


def user_for(token: str) -> User | None:
    """The active user the token belongs to (None for an unknown or revoked token)."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = db.session.scalar(
        sa.select(ApiToken).where(
            ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    db.session.commit()
    return row.user


def revoke(row: ApiToken) -> None:
    row.revoked_at = utcnow()
    db.session.commit()

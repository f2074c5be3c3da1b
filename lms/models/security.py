"""Sign-in state kept on the server: browser sessions, and failed sign-in counters."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.models.base import Base, utcnow
from lms.models.people import User


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its sha256 is stored, so
    signing out (or an admin deactivating the user) ends the session for good."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # Why it ended: "sign-out", "deactivated"... (None while it is valid).
    revoke_reason: Mapped[str | None] = mapped_column(sa.String(32))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<UserSession {self.id} of user {self.user_id}>"


class LoginThrottle(Base):
    """Failed sign-ins counted under one key (an account, a client address, or the pair),
    when the counts are not kept in Redis. The key is a digest: no email or address here."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    failures: Mapped[int]
    last_failure_at: Mapped[datetime]
    # After this the row is as good as absent (and may be deleted).
    expires_at: Mapped[datetime] = mapped_column(index=True)

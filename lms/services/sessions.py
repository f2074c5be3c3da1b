"""Server-side sessions: a signed-in browser is a row, so that signing out and deactivation
really end it.

The Flask session cookie carries Flask-Login's `_user_id` and `sid`, a random token; the
database keeps only the token's sha256. A session is valid while its row exists, is not
revoked, its user is active and it was seen within PERMANENT_SESSION_LIFETIME (the cookie's
own lifetime).

`session_ended` is sent (sender=the user, all_sessions=bool) after sessions are revoked:
all_sessions=False when one browser signed out, True when every session of the user ended
(revoke_all, deactivation). The lab code stops the learner's lab on it. A receiver that
raises is logged and does not stop the others, nor the sign-out.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from blinker import Namespace
from flask import current_app
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from lms.extensions import db
from lms.models import User, UserSession, utcnow

signals = Namespace()
session_ended = signals.signal("session-ended")

# last_seen_at is written at most this often per session.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime() -> timedelta:
    return current_app.permanent_session_lifetime


def start(user: User, ip: str | None, user_agent: str | None) -> str:
    """A new session of the user; returns its raw token (for the cookie, never stored)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            token_hash=_digest(token),
            user_id=user.id,
            ip=(ip or None) and ip[:64],
            user_agent=(user_agent or None) and user_agent[:200],
        )
    )
    db.session.commit()
    return token


def current(token: str | None) -> UserSession | None:
    """The valid session with this token: not revoked, its user active, seen lately."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    row = db.session.scalar(
        sa.select(UserSession)
        .join(UserSession.user)
        .where(
            UserSession.token_hash == _digest(token),
            UserSession.revoked_at.is_(None),
            User.active.is_(True),
        )
    )
    # Idle as long as the cookie may live (plus the touch interval it may lag behind): over.
    if row is None or utcnow() - row.last_seen_at > _lifetime() + TOUCH_EVERY:
        return None
    return row


def touch(user_session: UserSession) -> None:
    """Mark the session as seen now; at most one write a minute per session (a conditional
    UPDATE, so concurrent requests of one browser write once)."""
    now = utcnow()
    if now - user_session.last_seen_at < TOUCH_EVERY:
        return
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.id == user_session.id, UserSession.last_seen_at < now - TOUCH_EVERY)
        .values(last_seen_at=now)
    )
    db.session.commit()


def revoke(token: str | None, reason: str) -> bool:
    """End the session with this token (sign-out). False when there was none to end."""
    if not token or not isinstance(token, str):
        return False
    digest = _digest(token)
    user = db.session.scalar(
        sa.select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.token_hash == digest)
    )
    result = db.session.execute(
        sa.update(UserSession)
        .where(UserSession.token_hash == digest, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoke_reason=reason[:32])
    )
    db.session.commit()
    if user is None or not getattr(result, "rowcount", 0):
        return False
    _ended(user, all_sessions=False)
    return True


def revoke_all(user: User, reason: str, keep: str | None = None) -> int:
    """End every session of the user but `keep` (a raw token); returns how many ended.
    Pending changes of the caller (deactivation's active flag) commit with it. Signals
    all_sessions=True when some were ended, or always when nothing is kept."""
    query = sa.update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if keep:
        query = query.where(UserSession.token_hash != _digest(keep))
    result = db.session.execute(query.values(revoked_at=utcnow(), revoke_reason=reason[:32]))
    count = int(getattr(result, "rowcount", 0) or 0)
    db.session.commit()
    if count or keep is None:
        _ended(user, all_sessions=True)
    return count


def _ended(user: User, all_sessions: bool) -> None:
    for receiver in list(session_ended.receivers_for(user)):
        try:
            receiver(user, all_sessions=all_sessions)
        except Exception:
            current_app.logger.exception("a session_ended receiver failed for user %s", user.id)


def user_for_cookie(raw_cookie_value: str) -> User | None:
    """The user of a raw Flask session cookie value (as a browser sends it), if its `sid` is
    a valid session of that user; else None. Checks the signature and age with the current
    app's session serializer and PERMANENT_SESSION_LIFETIME. Writes nothing."""
    interface = current_app.session_interface
    if not raw_cookie_value or not isinstance(interface, SecureCookieSessionInterface):
        return None
    serializer = interface.get_signing_serializer(current_app)
    if serializer is None:
        return None
    try:
        data = serializer.loads(raw_cookie_value, max_age=int(_lifetime().total_seconds()))
    except BadSignature:  # also a bad or expired timestamp, and garbage
        return None
    if not isinstance(data, dict):
        return None
    user_id, sid = data.get("_user_id"), data.get("sid")
    if not isinstance(user_id, str) or not isinstance(sid, str):
        return None
    row = current(sid)
    if row is None or str(row.user_id) != user_id:
        return None
    return row.user

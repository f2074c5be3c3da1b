"""Getting people into their accounts: invitations, password resets, email changes.

Every mail carries a one-time link (lms.models.AccountLink): a random token in the URL, only
its sha256 stored. A link works once, until it expires, and only while it is the newest of
its purpose for that person. Links are made where the mail is sent (the worker), since the
raw token exists only there and in the mail.

Bulk invitations of a cohort (InvitationBatch) run in the worker, a chunk at a time: each
chunk's links are made and committed, marked as being sent, *before* the SMTP server gets
them, and their outcome is recorded after. A batch that is killed and resumed skips everyone
who has a link of that batch, so nobody is mailed twice; the few whose mail was in flight at
the kill are counted as unconfirmed (their link works if it arrived; re-invite them one by
one if not).

Over 400 lines on purpose: invitations, resets and email changes are one-time links with one
life cycle (made, mailed, used, superseded); apart, each would repeat it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app

from lms import queue
from lms.extensions import db
from lms.models import (
    AccountLink,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    InvitationBatch,
    InvitationBatchState,
    LinkPurpose,
    RoleGrant,
    User,
    utcnow,
)
from lms.reporting.exports import safe_text
from lms.services import ServiceError, audit, mail, passwords, sessions, users

log = logging.getLogger(__name__)

# Mails of a batch per commit: a batch killed mid-way leaves at most this many unconfirmed.
CHUNK = 50
# A running batch whose worker wrote nothing for this long is taken for dead (resumable).
STALE_AFTER = timedelta(minutes=2)
UNFINISHED = (InvitationBatchState.QUEUED, InvitationBatchState.RUNNING)


class AccountError(ServiceError):
    pass


# --- Links ---------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime(purpose: LinkPurpose) -> timedelta:
    config = current_app.config
    if purpose == LinkPurpose.INVITE:
        return timedelta(days=int(config["INVITE_DAYS"]))
    if purpose == LinkPurpose.RESET:
        return timedelta(minutes=int(config["RESET_MINUTES"]))
    return timedelta(hours=int(config["EMAIL_CHANGE_HOURS"]))


def _supersede(user_ids: list[int], purpose: LinkPurpose, now: datetime) -> None:
    db.session.execute(
        sa.update(AccountLink)
        .where(
            AccountLink.user_id.in_(user_ids),
            AccountLink.purpose == purpose,
            AccountLink.used_at.is_(None),
            AccountLink.superseded_at.is_(None),
        )
        .values(superseded_at=now)
        .execution_options(synchronize_session=False)
    )


def _new_links(
    user_ids: list[int],
    purpose: LinkPurpose,
    *,
    by: User | None = None,
    batch_id: int | None = None,
    new_email: str | None = None,
    delivery: str = "mail",
) -> dict[int, tuple[int, str]]:
    """A fresh link for each user (older open links of that purpose superseded), not yet
    committed: {user_id: (link id, raw token)}."""
    now = utcnow()
    _supersede(user_ids, purpose, now)
    tokens = {user_id: secrets.token_urlsafe(32) for user_id in user_ids}
    expires = now + _lifetime(purpose)
    rows = [
        {
            "token_hash": _digest(token),
            "user_id": user_id,
            "purpose": purpose,
            "created_at": now,
            "expires_at": expires,
            "new_email": new_email,
            "created_by_id": by.id if by is not None else None,
            "batch_id": batch_id,
            "delivery": delivery,
            "sending_at": now if delivery == "mail" else None,
            "sent_at": now if delivery == "file" else None,
        }
        for user_id, token in tokens.items()
    ]
    db.session.execute(sa.insert(AccountLink), rows)
    found = db.session.execute(
        sa.select(AccountLink.token_hash, AccountLink.id).where(
            AccountLink.token_hash.in_([r["token_hash"] for r in rows])
        )
    )
    # Not dict(result): a Result has keys() (its column names), so dict() would misread it.
    ids = {token_hash: link_id for token_hash, link_id in found.tuples()}
    return {user_id: (ids[_digest(token)], token) for user_id, token in tokens.items()}


@dataclass(frozen=True)
class LinkCheck:
    link: AccountLink | None
    # Why it does not work: "unknown", "expired", "used", "superseded", "inactive"; None: it works.
    problem: str | None


def check_link(token: str, purpose: LinkPurpose) -> LinkCheck:
    if not token or len(token) > 100:
        return LinkCheck(None, "unknown")
    link = db.session.scalar(
        sa.select(AccountLink).where(
            AccountLink.token_hash == _digest(token), AccountLink.purpose == purpose
        )
    )
    if link is None:
        return LinkCheck(None, "unknown")
    if link.used_at is not None:
        return LinkCheck(link, "used")
    if link.superseded_at is not None:
        return LinkCheck(link, "superseded")
    if link.expires_at <= utcnow():
        return LinkCheck(link, "expired")
    if not link.user.active:
        return LinkCheck(link, "inactive")
    return LinkCheck(link, None)


def _use(token: str, purpose: LinkPurpose) -> AccountLink:
    """Mark the link used, exactly once even when two requests race (a conditional UPDATE)."""
    found = check_link(token, purpose)
    if found.problem is not None or found.link is None:
        raise AccountError(found.problem or "unknown")
    now = utcnow()
    claimed = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(AccountLink)
            .where(
                AccountLink.id == found.link.id,
                AccountLink.used_at.is_(None),
                AccountLink.superseded_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not claimed:
        db.session.rollback()
        raise AccountError("used")
    db.session.refresh(found.link)
    return found.link


def set_password_with_link(token: str, purpose: LinkPurpose, password: str) -> User:
    """An invitation or reset link used to choose a password. Every session of the person
    ends (a reset is often because someone else got in); the caller signs this browser in.
    Raises AccountError("<problem>") for a link that does not work, and ServiceError with the
    password rule's words for a password that may not be chosen."""
    found = check_link(token, purpose)
    if found.link is not None and found.problem is None:
        user = found.link.user
        problem = passwords.problem(password, [user.email, user.name])
        if problem:
            raise ServiceError(problem)
    link = _use(token, purpose)
    user = link.user
    user.password_hash = users.hash_password(passwords.normalize(password))
    # Once a password is chosen, no other open invitation or reset link may set another.
    now = utcnow()
    for other in (LinkPurpose.INVITE, LinkPurpose.RESET):
        _supersede([user.id], other, now)
    audit.record(None, user, "joined" if purpose == LinkPurpose.INVITE else "password-reset")
    sessions.revoke_all(user, "password-set")  # commits
    return user


# --- Sending ----------------------------------------------------------------------------


def _send_link(user: User, purpose: LinkPurpose, by: User | None = None, **extra: Any) -> bool:
    """Make a link and mail it now (the worker's side). False when the server refused it."""
    new_email = extra.get("new_email")
    link_id, token = _new_links([user.id], purpose, by=by, new_email=new_email)[user.id]
    db.session.commit()
    message = _message(user, purpose, token, by, new_email=new_email)
    try:
        with mail.connection() as connection:
            outcome = mail.send(connection, message)
    except Exception:
        # Never sent: the link is useless without its mail; the older one stays superseded.
        _record(link_id, mail.Outcome(False, refused="the mail server could not be reached"))
        db.session.commit()
        raise
    _record(link_id, outcome)
    db.session.commit()
    return outcome.sent


def _message(
    user: User, purpose: LinkPurpose, token: str, by: User | None, new_email: str | None = None
) -> Any:
    if purpose == LinkPurpose.INVITE:
        return _invitation(user, mail.public_url("auth.join", token=token), by)
    if purpose == LinkPurpose.RESET:
        return mail.compose(
            "reset",
            user.email,
            user.locale,
            user=user,
            link=mail.public_url("auth.reset", token=token),
            minutes=int(current_app.config["RESET_MINUTES"]),
        )
    assert new_email is not None
    return mail.compose(
        "email_change",
        new_email,
        user.locale,
        user=user,
        link=mail.public_url("auth.confirm_email", token=token),
        hours=int(current_app.config["EMAIL_CHANGE_HOURS"]),
    )


def _invitation(user: User, link: str, by: User | None) -> Any:
    days = int(current_app.config["INVITE_DAYS"])
    return mail.compose("invite", user.email, user.locale, user=user, by=by, link=link, days=days)


def _record(link_id: int, outcome: mail.Outcome) -> None:
    now = utcnow()
    values: dict[str, Any] = (
        {"sent_at": now}
        if outcome.sent
        else {"bounced_at": now, "bounce_reason": (outcome.refused or "")[:300]}
    )
    db.session.execute(
        sa.update(AccountLink)
        .where(AccountLink.id == link_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def invite(user: User, by: User | None) -> None:
    """Queue an invitation mail for one person (a new link; the older one stops working)."""
    if not user.active:
        raise AccountError("This person is deactivated; reactivate them first.")
    audit.record(by, user, "invited")
    db.session.commit()
    _queue_mail("invite", user.id, by.id if by is not None else None)


def invite_now(user: User, by: User | None) -> bool:
    """Invite one person and send the mail here and now (the command line, the demo);
    False when the server refused the recipient."""
    if not user.active:
        raise AccountError("This person is deactivated; reactivate them first.")
    audit.record(by, user, "invited")
    db.session.commit()
    return _send_link(user, LinkPurpose.INVITE, by=by)


def request_reset(email: str) -> None:
    """Queue a reset mail for this address. Called the same way whether or not the address
    has an account, so the request takes as long either way; the worker finds out."""
    _queue_mail("reset", users.normalize_email(email), None)


def request_email_change(user: User, new_email: str) -> None:
    """Mail a confirmation link to the new address; the email changes when it is followed."""
    new_email = users.normalize_email(new_email)
    if not users.is_valid_email(new_email):
        raise AccountError(f"Not a valid email address: {new_email!r}.")
    if users.find_by_email(new_email) is not None:
        # Said to the signed-in person only, about an address they typed.
        raise AccountError("Another account uses this address.")
    _queue_mail("email", user.id, None, new_email)


def _queue_mail(
    kind: str, subject: int | str, by_id: int | None, new_email: str | None = None
) -> None:
    queue.queue().enqueue(
        "account_mail", kind, subject, by_id, new_email, priority=queue.PRIORITY_MAIL
    )


@queue.task("account_mail")
def deliver(kind: str, subject: int | str, by_id: int | None, new_email: str | None) -> None:
    """The worker's side of a queued account mail."""
    by = db.session.get(User, by_id) if by_id is not None else None
    if kind == "reset":
        user = users.find_by_email(str(subject))
        # Unknown, deactivated: nothing is sent. An invited person who never joined may
        # reset too: the reset link sets their first password.
        if user is not None and user.active:
            _send_link(user, LinkPurpose.RESET)
        return
    user = db.session.get(User, int(subject))
    if user is None or not user.active:
        return
    if kind == "invite":
        _send_link(user, LinkPurpose.INVITE, by=by)
    elif kind == "email" and new_email:
        _send_link(user, LinkPurpose.EMAIL, new_email=new_email)
    elif kind == "email-changed" and new_email:
        # To the old address: someone who took the account over is noticed by its owner.
        notice = mail.compose("email_changed", new_email, user.locale, user=user)
        with mail.connection() as connection:
            mail.send(connection, notice)


def confirm_email(token: str) -> User:
    link = _use(token, LinkPurpose.EMAIL)
    user = link.user
    assert link.new_email is not None
    if users.find_by_email(link.new_email) is not None:
        db.session.rollback()
        raise AccountError("Another account uses this address.")
    old = user.email
    user.email = link.new_email
    audit.record(user, user, "email-changed", f"{old} -> {link.new_email}")
    db.session.commit()
    try:
        _queue_mail("email-changed", user.id, None, old)
    except Exception:  # noqa: BLE001 - the change is made; a lost notice must not undo its page
        log.exception("could not queue the email-change notice for user %s", user.id)
    return user


def change_password(user: User, current: str, new: str, keep_session: str | None) -> None:
    """Change one's own password: every other session of the person ends."""
    if users.authenticate(user.email, current) is None:
        raise AccountError("Your current password is not right.")
    problem = passwords.problem(new, [user.email, user.name])
    if problem:
        raise ServiceError(problem)
    user.password_hash = users.hash_password(passwords.normalize(new))
    audit.record(user, user, "password-changed")
    sessions.revoke_all(user, "password-changed", keep=keep_session)


# --- The state people are in -------------------------------------------------------------


@dataclass(frozen=True)
class InvitationState:
    # not-invited | invited | joined | deactivated | bounced | unconfirmed
    state: str
    at: datetime | None = None
    reason: str | None = None
    # "mail" or "file" (a personal link handed out in a file)
    delivery: str | None = None


def states(user_ids: Iterable[int]) -> dict[int, InvitationState]:
    """Each person's invitation state (for a page of a cohort's learners)."""
    ids = list(user_ids)
    if not ids:
        return {}
    people = {
        row.id: row
        for row in db.session.execute(
            sa.select(User.id, User.active, User.password_hash.is_not(None).label("joined"))
            .add_columns(User.last_login_at)
            .where(User.id.in_(ids))
        )
    }
    newest = (
        sa.select(AccountLink.user_id, sa.func.max(AccountLink.id).label("link_id"))
        .where(AccountLink.user_id.in_(ids), AccountLink.purpose == LinkPurpose.INVITE)
        .group_by(AccountLink.user_id)
        .subquery()
    )
    links = {
        link.user_id: link
        for link in db.session.scalars(
            sa.select(AccountLink).join(newest, AccountLink.id == newest.c.link_id)
        )
    }
    result = {}
    for user_id in ids:
        person = people.get(user_id)
        if person is None:
            continue
        link = links.get(user_id)
        if not person.active:
            result[user_id] = InvitationState("deactivated")
        elif person.joined:
            result[user_id] = InvitationState(
                "joined", link.used_at if link is not None else person.last_login_at
            )
        elif link is None:
            result[user_id] = InvitationState("not-invited")
        elif link.bounced_at is not None:
            result[user_id] = InvitationState("bounced", link.bounced_at, link.bounce_reason)
        elif link.sent_at is not None:
            result[user_id] = InvitationState("invited", link.sent_at, delivery=link.delivery)
        else:
            result[user_id] = InvitationState("unconfirmed", link.sending_at)
    return result


def _state_rows(cohort_id: int) -> sa.Subquery:
    """(user_id, state) of everyone enrolled in the cohort, the same states as states()."""
    newest = (
        sa.select(AccountLink.user_id, sa.func.max(AccountLink.id).label("link_id"))
        .where(AccountLink.purpose == LinkPurpose.INVITE)
        .group_by(AccountLink.user_id)
        .subquery()
    )
    state = sa.case(
        (User.active.is_(False), "deactivated"),
        (User.password_hash.is_not(None), "joined"),
        (newest.c.link_id.is_(None), "not-invited"),
        (AccountLink.bounced_at.is_not(None), "bounced"),
        (AccountLink.sent_at.is_not(None), "invited"),
        else_="unconfirmed",
    )
    return (
        sa.select(User.id.label("user_id"), state.label("state"))
        .select_from(Enrolment)
        .join(User, User.id == Enrolment.user_id)
        .outerjoin(newest, newest.c.user_id == User.id)
        .outerjoin(AccountLink, AccountLink.id == newest.c.link_id)
        .where(Enrolment.cohort_id == cohort_id)
        .subquery()
    )


def state_counts(cohort: Cohort) -> dict[str, int]:
    rows = _state_rows(cohort.id)
    query = sa.select(rows.c.state, sa.func.count()).group_by(rows.c.state)
    return {state: int(count) for state, count in db.session.execute(query).tuples()}


def users_in_state(cohort: Cohort, state: str) -> sa.Select[tuple[int]]:
    rows = _state_rows(cohort.id)
    return sa.select(rows.c.user_id).where(rows.c.state == state)


# --- Whole cohorts -----------------------------------------------------------------------


def _cohort_targets(cohort_id: int) -> sa.Select[tuple[int]]:
    """People of the cohort who may be invited: enrolled (not withdrawn), active, and
    without a password yet."""
    return (
        sa.select(User.id)
        .join(Enrolment, Enrolment.user_id == User.id)
        .where(
            Enrolment.cohort_id == cohort_id,
            Enrolment.status != EnrolmentStatus.WITHDRAWN,
            User.active.is_(True),
            User.password_hash.is_(None),
        )
    )


def _batch_targets(batch: InvitationBatch) -> sa.Select[tuple[int]]:
    """Who the batch still has to invite: nobody it has made a link for, and, unless it
    re-invites, nobody who was invited before it started."""
    # purpose too, so that the lookup goes by (user_id, purpose), not through every link of
    # the batch (which made a 50,000 round quadratic).
    query = _cohort_targets(batch.cohort_id).where(
        ~sa.exists().where(
            AccountLink.user_id == User.id,
            AccountLink.purpose == LinkPurpose.INVITE,
            AccountLink.batch_id == batch.id,
        )
    )
    if not batch.reinvite:
        query = query.where(
            ~sa.exists().where(
                AccountLink.user_id == User.id,
                AccountLink.purpose == LinkPurpose.INVITE,
                AccountLink.created_at < batch.created_at,
            )
        )
    return query


def _count(query: sa.Select[tuple[int]]) -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


def start_batch(
    cohort: Cohort, by: User | None, reinvite: bool = False, enqueue: bool = True
) -> InvitationBatch:
    """Queue invitations to the cohort (only those never invited, unless reinvite). An
    unfinished batch of the cohort that is still alive is returned instead of a second.
    enqueue=False: the caller runs it (the CLI)."""
    for batch in db.session.scalars(
        sa.select(InvitationBatch).where(
            InvitationBatch.cohort_id == cohort.id, InvitationBatch.state.in_(UNFINISHED)
        )
    ):
        if not is_stale(batch):
            return batch
    batch = InvitationBatch(cohort_id=cohort.id, requested_by=by, reinvite=reinvite)
    db.session.add(batch)
    db.session.flush()
    batch.total = _count(_batch_targets(batch))
    audit.record(by, None, "cohort-invited", f"cohort {cohort.slug}: {batch.total} people")
    db.session.commit()
    if not enqueue:
        return batch
    try:
        queue.queue().enqueue("invitations", batch.id, priority=queue.PRIORITY_EXPORT)
    except Exception:  # noqa: BLE001 - the broker is down: the page offers to resume once stale
        log.exception("could not queue invitation batch %s", batch.id)
    return batch


def is_stale(batch: InvitationBatch, now: datetime | None = None) -> bool:
    if batch.state not in UNFINISHED:
        return False
    since = batch.heartbeat_at or batch.started_at or batch.created_at
    return (now or utcnow()) - since > STALE_AFTER


def resume(batch: InvitationBatch) -> None:
    """Queue a stale or failed batch again; it goes on where it stopped."""
    if batch.state == InvitationBatchState.DONE or not (
        batch.state == InvitationBatchState.FAILED or is_stale(batch)
    ):
        return
    batch.state = InvitationBatchState.QUEUED
    batch.heartbeat_at = utcnow()
    batch.error = ""
    db.session.commit()
    queue.queue().enqueue("invitations", batch.id, priority=queue.PRIORITY_EXPORT)


@queue.task("invitations")
def run_batch(batch_id: int, on_progress: Callable[[int, int], None] | None = None) -> None:
    """The worker's side: send what the batch has left to send, a chunk at a time.
    on_progress(done, total) after each chunk (the CLI's progress bar)."""
    now = utcnow()
    stale_before = now - STALE_AFTER
    claimed = cast(
        sa.CursorResult[Any],
        db.session.execute(
            sa.update(InvitationBatch)
            .where(
                InvitationBatch.id == batch_id,
                sa.or_(
                    InvitationBatch.state == InvitationBatchState.QUEUED,
                    sa.and_(
                        InvitationBatch.state == InvitationBatchState.RUNNING,
                        sa.func.coalesce(InvitationBatch.heartbeat_at, InvitationBatch.created_at)
                        < stale_before,
                    ),
                ),
            )
            .values(state=InvitationBatchState.RUNNING, started_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    db.session.commit()
    if not claimed:
        return
    batch = db.session.get(InvitationBatch, batch_id)
    assert batch is not None
    by = batch.requested_by
    try:
        _refresh_counts(batch)
        batch.total = (
            batch.sent + batch.bounced + _unconfirmed(batch) + _count(_batch_targets(batch))
        )
        db.session.commit()
        with mail.parallel(int(current_app.config["MAIL_CONNECTIONS"])) as send_all:
            # Who is left, once (one pass over the cohort); each chunk is checked again just
            # before sending, since people join or are deactivated while a round runs.
            left = list(db.session.scalars(_batch_targets(batch).order_by(User.id)))
            for start in range(0, len(left), CHUNK):
                chunk = list(
                    db.session.scalars(
                        _batch_targets(batch)
                        .where(User.id.in_(left[start : start + CHUNK]))
                        .order_by(User.id)
                    )
                )
                if not chunk:
                    continue
                made = _new_links(chunk, LinkPurpose.INVITE, by=by, batch_id=batch.id)
                batch.heartbeat_at = utcnow()
                db.session.commit()  # claimed: from here on a resumed batch skips them
                _send_chunk(send_all, batch, chunk, made)
                if on_progress is not None:
                    on_progress(batch.sent + batch.bounced, batch.total)
        batch.state = InvitationBatchState.DONE
        batch.finished_at = utcnow()
        db.session.commit()
    except Exception as e:  # noqa: BLE001 - any failure ends the run with its reason
        log.exception("invitation batch %s failed", batch_id)
        db.session.rollback()
        batch = db.session.get(InvitationBatch, batch_id)
        assert batch is not None
        _refresh_counts(batch)
        batch.state = InvitationBatchState.FAILED
        batch.error = f"{type(e).__name__}: {e}"[:2000]
        batch.finished_at = utcnow()
        db.session.commit()


def _send_chunk(
    send_all: Callable[[list[Any]], list[mail.Outcome | Exception]],
    batch: InvitationBatch,
    chunk: list[int],
    made: dict[int, tuple[int, str]],
) -> None:
    people = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(chunk)))}
    join_link = mail.link_maker("auth.join")
    messages = [
        _invitation(people[user_id], join_link(made[user_id][1]), batch.requested_by)
        for user_id in chunk
    ]
    results = send_all(messages)
    outcomes = [
        (made[user_id][0], result)
        for user_id, result in zip(chunk, results, strict=True)
        if isinstance(result, mail.Outcome)
    ]
    _record_all(outcomes)
    failures = [result for result in results if not isinstance(result, mail.Outcome)]
    if failures:
        # Those never handed over lose their links, so that a resumed batch invites them
        # (the failure is the server's, not theirs).
        never_sent = [
            made[user_id][0]
            for user_id, result in zip(chunk, results, strict=True)
            if not isinstance(result, mail.Outcome)
        ]
        db.session.execute(sa.delete(AccountLink).where(AccountLink.id.in_(never_sent)))
        _refresh_counts(batch)
        db.session.commit()
        raise failures[0]
    sent = sum(1 for _link, outcome in outcomes if outcome.sent)
    batch.sent += sent
    batch.bounced += len(outcomes) - sent
    batch.heartbeat_at = utcnow()
    db.session.commit()


def _record_all(outcomes: list[tuple[int, mail.Outcome]]) -> None:
    """A chunk's outcomes in one statement for the sent ones (bounces are few)."""
    sent = [link_id for link_id, outcome in outcomes if outcome.sent]
    if sent:
        db.session.execute(
            sa.update(AccountLink)
            .where(AccountLink.id.in_(sent))
            .values(sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    for link_id, outcome in outcomes:
        if not outcome.sent:
            _record(link_id, outcome)


def _refresh_counts(batch: InvitationBatch) -> None:
    """The batch's figures from its links (after a crash the counters may lag)."""
    base = sa.select(sa.func.count()).where(AccountLink.batch_id == batch.id)
    batch.sent = int(db.session.scalar(base.where(AccountLink.sent_at.is_not(None))) or 0)
    batch.bounced = int(db.session.scalar(base.where(AccountLink.bounced_at.is_not(None))) or 0)


def _unconfirmed(batch: InvitationBatch) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.count()).where(
                AccountLink.batch_id == batch.id,
                AccountLink.sent_at.is_(None),
                AccountLink.bounced_at.is_(None),
            )
        )
        or 0
    )


def batch_progress(batch: InvitationBatch) -> dict[str, Any]:
    unconfirmed = _unconfirmed(batch) if batch.state not in UNFINISHED else 0
    return {
        "id": batch.id,
        "state": str(batch.state),
        "sent": batch.sent,
        "bounced": batch.bounced,
        "unconfirmed": unconfirmed,
        "done": batch.sent + batch.bounced + unconfirmed,
        "total": batch.total,
        "error": batch.error,
        "stale": is_stale(batch),
    }


def handout_links(cohort: Cohort, by: User | None) -> bytes:
    """A CSV of a personal invitation link for each person of the cohort who has not joined
    (for a partner that hands links out itself). Each replaces the person's mailed link.
    Staff (anyone granted a role) are left out unless an admin asks: a link in a file must not
    open an account that governs others; they are invited by mail, to their own inbox."""
    targets = _cohort_targets(cohort.id)
    if by is None or not by.is_admin:
        targets = targets.where(~sa.exists().where(RoleGrant.user_id == User.id))
    user_ids = list(db.session.scalars(targets.order_by(User.id)))
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(["email", "name", "link", "expires (UTC)"])
    for start in range(0, len(user_ids), 1000):
        chunk = user_ids[start : start + 1000]
        made = _new_links(chunk, LinkPurpose.INVITE, by=by, delivery="file")
        people = db.session.execute(
            sa.select(User.id, User.email, User.name).where(User.id.in_(chunk)).order_by(User.id)
        )
        expires = (utcnow() + _lifetime(LinkPurpose.INVITE)).strftime("%Y-%m-%d %H:%M")
        for user_id, email, name in people:
            link = mail.public_url("auth.join", token=made[user_id][1])
            writer.writerow([safe_text(email), safe_text(name), safe_text(link), expires])
    audit.record(by, None, "links-handed-out", f"cohort {cohort.slug}: {len(user_ids)} people")
    db.session.commit()
    return ("\ufeff" + out.getvalue()).encode("utf-8")

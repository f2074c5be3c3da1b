"""Learners' labs, as the LMS sees them: asking the lab hub (lms.lab.hub) to start a learner's
lab server, and what the hub recorded (servers and kernel minutes per cohort)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask, current_app
from flask_babel import gettext as _

from lms.extensions import db
from lms.lab import base_url, hub_token
from lms.models import (
    Assignment,
    Cohort,
    Course,
    Enrolment,
    LabKernel,
    LabServer,
    User,
    utcnow,
)
from lms.services import ServiceError, sessions
from lms.services.workspaces import Workspace


class LabUnavailable(ServiceError):
    pass


# What the hub's refusals mean to a learner.
HUB_REFUSALS = {
    "lab-servers-full": lambda: _(
        "All lab places are taken right now. Try again in a few minutes."
    ),
}


def _hub(method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 90) -> Any:
    config = current_app.config
    request = urllib.request.Request(
        str(config["LAB_HUB_URL"]).rstrip("/") + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"token {hub_token(str(config['SECRET_KEY']))}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        reason = str(e.reason or "")
        current_app.logger.warning("lab hub refused %s %s: %s %s", method, path, e.code, reason)
        message = HUB_REFUSALS.get(reason)
        raise LabUnavailable(
            message() if message else _("Your lab could not be started: %(reason)s", reason=reason)
        ) from e
    except OSError as e:
        current_app.logger.error("lab hub at %s unreachable: %s", config["LAB_HUB_URL"], e)
        raise LabUnavailable(
            _("The lab service is not running. Please tell your instructor.")
        ) from e


def start(user: User, language: str | None = None) -> bool:
    """Start the learner's lab server, or find it running; True when it was started now.
    Jupyter's interface speaks `language` (the LMS language the learner reads)."""
    query = f"?language={quote(language)}" if language else ""
    return bool(_hub("POST", f"/servers/{user.id}{query}")["started"])


def stop(user: User) -> None:
    _hub("DELETE", f"/servers/{user.id}?reason=stopped", timeout=30)


def state(user: User) -> dict[str, Any] | None:
    """The hub's view of the learner's lab (running, kernels, place in the kernel queue);
    None when the hub does not answer."""
    try:
        result: dict[str, Any] = _hub("GET", f"/servers/{user.id}", timeout=5)
    except LabUnavailable:
        return None
    return result


def hub_state() -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = _hub("GET", "/servers", timeout=5)
    except LabUnavailable:
        return None
    return result


def stop_quietly(user: User, reason: str = "signed out") -> None:
    """End the learner's lab now (its work stays on disk); nothing to say if the hub is down."""
    try:
        _hub("DELETE", f"/servers/{user.id}?reason={quote(reason)}", timeout=30)
    except LabUnavailable:
        current_app.logger.info("lab of user %s not stopped: the hub did not answer", user.id)


def _on_session_ended(user: User, all_sessions: bool = False, **_: Any) -> None:
    """Signing out, or deactivation, ends the learner's lab at once: its open pages and kernel
    connections close, and no cached answer of the hub's lets the old cookie back in."""
    stop_quietly(user, "deactivated" if all_sessions and not user.active else "signed out")


sessions.session_ended.connect(_on_session_ended)


def session_owner(app: Flask) -> Callable[[str], int | None]:
    """For the lab hub's proxy: the user whose valid server-side session a raw session cookie
    is (signed out, revoked, expired or deactivated: None). Each call in its own app context
    (the hub calls it from its threads)."""

    def owner(cookie: str) -> int | None:
        with app.app_context():
            try:
                user = sessions.user_for_cookie(cookie)
                return user.id if user is not None else None
            finally:
                db.session.remove()

    return owner


def notebook_url(user: User, workspace: Workspace, notebook: str) -> str:
    """Where the Notebook front end opens the notebook in the learner's lab server."""
    return f"{base_url(user.id)}notebooks/{quote(workspace.relative)}/{quote(notebook)}"


# What the hub records ----------------------------------------------------------------------------


class DatabaseRecorder:
    """The hub's Recorder: each call in its own app context and session (hub threads)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def server_started(self, owner: int) -> None:
        with self.app.app_context():
            self._close_servers(owner, "restarted")
            db.session.add(LabServer(user_id=owner))
            db.session.commit()

    def server_stopped(self, owner: int, reason: str) -> None:
        with self.app.app_context():
            self._close_servers(owner, reason)
            db.session.commit()

    def _close_servers(self, owner: int | None, reason: str) -> None:
        where: list[sa.ColumnElement[bool]] = [LabServer.stopped_at.is_(None)]
        if owner is not None:
            where.append(LabServer.user_id == owner)
        db.session.execute(
            sa.update(LabServer).where(*where).values(stopped_at=utcnow(), stop_reason=reason)
        )

    def _assignment(self, folder: str) -> tuple[int, bool] | None:
        """(id, gpu) of the assignment of a workspace folder: "<course>/<assignment>/..."."""
        parts = folder.split("/")
        if len(parts) < 2:
            return None
        found = db.session.execute(
            sa.select(Assignment.id, Assignment.gpu)
            .join(Assignment.course)
            .where(Course.slug == parts[0], Assignment.slug == parts[1])
        ).first()
        return (found[0], found[1]) if found is not None else None

    def needs_gpu(self, folder: str) -> bool:
        with self.app.app_context():
            found = self._assignment(folder)
            return found is not None and found[1]

    def kernel_started(self, owner: int, folder: str) -> int:
        """A kernel lent for the workspace folder "<course>/<assignment>/..."."""
        with self.app.app_context():
            found = self._assignment(folder)
            usage = LabKernel(user_id=owner, assignment_id=found[0] if found else None)
            db.session.add(usage)
            db.session.commit()
            return usage.id

    def kernel_stopped(self, usage: int) -> None:
        with self.app.app_context():
            db.session.execute(
                sa.update(LabKernel)
                .where(LabKernel.id == usage, LabKernel.ended_at.is_(None))
                .values(ended_at=utcnow())
            )
            db.session.commit()

    def all_stopped(self, reason: str) -> None:
        """Close what a previous hub left open (it stopped without saying so)."""
        with self.app.app_context():
            self._close_servers(None, reason)
            db.session.execute(
                sa.update(LabKernel).where(LabKernel.ended_at.is_(None)).values(ended_at=utcnow())
            )
            db.session.commit()


# What instructors and coordinators see -----------------------------------------------------------


@dataclass
class CohortLabs:
    cohort: Cohort
    active: int = 0  # lab servers running now
    learners: int = 0  # learners who used a kernel in the window
    kernel_seconds: float = 0.0  # kernel time in the window

    @property
    def kernel_minutes(self) -> int:
        return round(self.kernel_seconds / 60)


@dataclass
class ActiveLab:
    user: User
    cohort: Cohort
    started_at: datetime
    kernels: int


USAGE_DAYS = 30


def overview(cohorts: list[Cohort]) -> dict[str, Any]:
    """What the labs overview page shows for these cohorts."""
    live = hub_state()
    return {
        "hub": live,
        "usage": usage_by_cohort(cohorts, USAGE_DAYS),
        "active": active_labs(cohorts, live),
        "days": USAGE_DAYS,
    }


def usage_by_cohort(cohorts: list[Cohort], days: int = 30) -> list[CohortLabs]:
    """Per cohort: labs running now, and learners and kernel minutes in the last `days`."""
    now = utcnow()
    since = now - timedelta(days=days)
    rows = {c.id: CohortLabs(c) for c in cohorts}
    if not rows:
        return []
    enrolled = sa.and_(Enrolment.cohort_id.in_(rows), Enrolment.user_id == LabServer.user_id)
    for cohort_id, count in db.session.execute(
        sa.select(Enrolment.cohort_id, sa.func.count(LabServer.id))
        .join(LabServer, enrolled)
        .where(LabServer.stopped_at.is_(None))
        .group_by(Enrolment.cohort_id)
    ):
        rows[cohort_id].active = int(count)
    learners: dict[int, set[int]] = {}
    for cohort_id, user_id, started, ended in db.session.execute(
        sa.select(Enrolment.cohort_id, LabKernel.user_id, LabKernel.started_at, LabKernel.ended_at)
        .join(
            LabKernel,
            sa.and_(Enrolment.cohort_id.in_(rows), Enrolment.user_id == LabKernel.user_id),
        )
        .where(sa.or_(LabKernel.ended_at.is_(None), LabKernel.ended_at >= since))
    ):
        begin = max(started, since)
        end = ended if ended is not None else now
        rows[cohort_id].kernel_seconds += max(0.0, (end - begin).total_seconds())
        learners.setdefault(cohort_id, set()).add(user_id)
    for cohort_id, users in learners.items():
        rows[cohort_id].learners = len(users)
    return list(rows.values())


def active_labs(cohorts: list[Cohort], live: dict[str, Any] | None) -> list[ActiveLab]:
    """The lab servers running now for learners of these cohorts, newest first."""
    by_id = {c.id: c for c in cohorts}
    if not by_id:
        return []
    kernels = {s["owner"]: int(s["kernels"]) for s in (live or {}).get("servers", [])}
    found = db.session.execute(
        sa.select(User, Enrolment.cohort_id, LabServer.started_at)
        .join(LabServer, LabServer.user_id == User.id)
        .join(Enrolment, Enrolment.user_id == User.id)
        .where(LabServer.stopped_at.is_(None), Enrolment.cohort_id.in_(by_id))
        .order_by(LabServer.started_at.desc())
    ).all()
    return [
        ActiveLab(user, by_id[cohort_id], started, kernels.get(user.id, 0))
        for user, cohort_id, started in found
    ]

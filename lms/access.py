"""Who may see what: the one place that turns role grants into scopes and guards blueprints."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import Blueprint, abort, g, has_request_context
from flask_login import current_user

from lms.extensions import db, login_manager
from lms.models import Enrolment, EnrolmentStatus, Role, User


def is_learner(user: User) -> bool:
    """Enrolled in a cohort (not withdrawn). Asked up to three times per page (guard, home
    redirect, navigation), so the answer is kept for the rest of the request."""
    key = f"is_learner:{user.id}"
    if has_request_context() and key in g:
        return bool(g.get(key))
    answer = (
        db.session.scalar(
            sa.select(Enrolment.id)
            .where(Enrolment.user_id == user.id, Enrolment.status != EnrolmentStatus.WITHDRAWN)
            .limit(1)
        )
        is not None
    )
    if has_request_context():
        setattr(g, key, answer)
    return answer


def homes(user: User) -> list[tuple[str, str]]:
    """(endpoint, role name) for every home page the user may open, most powerful first."""
    pages = []
    if user.is_admin:
        pages.append(("admin.home", "admin"))
    if user.has_role(Role.COORDINATOR):
        pages.append(("coordinator.home", "coordinator"))
    if user.has_role(Role.INSTRUCTOR):
        pages.append(("instructor.home", "instructor"))
    if is_learner(user):
        pages.append(("learner.home", "learner"))
    return pages


def guard_blueprint(bp: Blueprint, allowed: Callable[[User], bool]) -> None:
    """Every route of bp needs a signed-in user for whom allowed(user) holds (else 403)."""

    @bp.before_request
    def _guard() -> None:
        if not current_user.is_authenticated:
            abort(login_manager.unauthorized())
        if not allowed(current_user):
            abort(403)

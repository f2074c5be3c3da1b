"""Read-only queries for the instructor's insight pages: test pass rates, and what the
deadlines page lists (similar submissions: lms.queries.similar_submissions). Nothing here
writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentNotebook,
    CellKind,
    Cohort,
    CohortAssignment,
    Enrolment,
    EnrolmentStatus,
    Extension,
    Grade,
    GradedCell,
    User,
)
from lms.queries import marking

# A score this close to the cell's points counts as full points (scores are floats).
EPSILON = 1e-9


def _latest_ids(assignment: Assignment, cohort: Cohort | None) -> sa.Select[tuple[int]]:
    return marking.latest_attempt_ids(assignment.id, cohort.id if cohort else None)


# --- Pass rates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassRate:
    """How the latest submissions did on one autograded test."""

    cell: GradedCell
    notebook: str
    graded: int  # latest submissions the autograder scored on this test
    passed: int  # of those, how many got full points

    @property
    def percent(self) -> float | None:
        return 100.0 * self.passed / self.graded if self.graded else None


def pass_rates(assignment: Assignment, cohort: Cohort | None = None) -> list[PassRate]:
    """Every autograded test of the assignment with its pass rate over the latest submissions
    (of the cohort, if given): hardest first, tests nobody was graded on last. What the
    autograder gave counts, not a person's override: this is about the tests."""
    graded = sa.func.count(Grade.id).filter(Grade.auto_score.is_not(None))
    passed = sa.func.count(Grade.id).filter(Grade.auto_score >= Grade.max_score - EPSILON)
    query = (
        sa.select(GradedCell, AssignmentNotebook.name, graded, passed)
        .join(AssignmentNotebook, AssignmentNotebook.id == GradedCell.notebook_id)
        .outerjoin(
            Grade,
            sa.and_(
                Grade.cell_id == GradedCell.id,
                Grade.submission_id.in_(_latest_ids(assignment, cohort)),
            ),
        )
        .where(
            AssignmentNotebook.assignment_id == assignment.id,
            GradedCell.kind == CellKind.AUTOGRADED,
        )
        .group_by(GradedCell.id, AssignmentNotebook.name)
    )
    rows = [
        PassRate(cell, name, int(n_graded), int(n_passed))
        for cell, name, n_graded, n_passed in db.session.execute(query).tuples()
    ]
    return sorted(
        rows,
        key=lambda r: (r.percent is None, r.percent or 0.0, r.notebook, r.cell.position),
    )


def latest_count(assignment: Assignment, cohort: Cohort | None = None) -> int:
    """How many learners submitted (their latest attempts)."""
    query = sa.select(sa.func.count()).select_from(_latest_ids(assignment, cohort).subquery())
    return int(db.session.scalar(query) or 0)


# --- Deadlines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionRow:
    extension: Extension
    learner: User
    granted_by: User | None


def extensions(scheduled: CohortAssignment) -> list[ExtensionRow]:
    """The extensions granted on the assignment in the cohort, by learner email."""
    granter = aliased(User)
    query = (
        sa.select(Extension, User, granter)
        .join(User, User.id == Extension.user_id)
        .outerjoin(granter, granter.id == Extension.granted_by_id)
        .where(Extension.cohort_assignment_id == scheduled.id)
        .order_by(User.email)
    )
    return [ExtensionRow(e, u, g) for e, u, g in db.session.execute(query).tuples()]


def cohort_learners(cohort: Cohort) -> Sequence[User]:
    """The cohort's learners who have not withdrawn, by name then email."""
    return db.session.scalars(
        sa.select(User)
        .join(Enrolment, Enrolment.user_id == User.id)
        .where(Enrolment.cohort_id == cohort.id, Enrolment.status != EnrolmentStatus.WITHDRAWN)
        .order_by(User.name, User.email)
    ).all()

"""Read-only queries for the instructor's insight pages: test pass rates, similar submissions,
and what the deadlines page lists. Nothing here writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased, selectinload

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
    Release,
    Submission,
    User,
)
from lms.queries import marking, similarity
from lms.storage import blobs, storage

# A score this close to the cell's points counts as full points (scores are floats).
EPSILON = 1e-9
# The most flagged pairs a page lists.
MAX_FLAGS = 200


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


# --- Similarity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """Two latest submissions whose code is near-identical."""

    a: Submission
    b: Submission
    score: float


@dataclass(frozen=True)
class CellPair:
    """One answer cell of two submissions, side by side (None where one has no such cell)."""

    notebook: str
    key: str  # the grade_id, or "" for a cell without nbgrader marks
    a: str | None
    b: str | None


def _notebooks(submission: Submission) -> dict[str, dict[str, Any]]:
    """The submission's notebooks by name (without .ipynb), parsed; unreadable ones left out."""
    out = {}
    for filename, digest in submission.files.items():
        if not filename.endswith(".ipynb"):
            continue
        try:
            parsed = json.loads(blobs.get(digest))
        except (OSError, ValueError):
            continue
        if isinstance(parsed, dict):
            out[filename.removesuffix(".ipynb")] = parsed
    return out


def _release_notebooks(release: Release | None) -> dict[str, dict[str, Any]]:
    if release is None:
        return {}
    out = {}
    for name in storage().list(release.path):
        if "/" in name or not name.endswith(".ipynb"):
            continue
        try:
            parsed = json.loads(storage().read(f"{release.path}/{name}"))
        except (OSError, ValueError):
            continue
        if isinstance(parsed, dict):
            out[name.removesuffix(".ipynb")] = parsed
    return out


class _Releases:
    """The release notebooks of each version of one assignment, read once."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self.loaded: dict[int, dict[str, dict[str, Any]]] = {}

    def of(self, version: int) -> dict[str, dict[str, Any]]:
        if version not in self.loaded:
            release = next(
                (r for r in self.assignment.releases if r.version == version),
                self.assignment.current_release,
            )
            self.loaded[version] = _release_notebooks(release)
        return self.loaded[version]


def similarity_flags(
    assignment: Assignment, cohort: Cohort | None = None, limit: int = MAX_FLAGS
) -> list[Flag]:
    """Pairs of latest submissions (of the cohort, if given) whose code is near-identical after
    normalisation, most alike first (see lms.queries.similarity)."""
    subs = list(
        db.session.scalars(
            sa.select(Submission)
            .where(Submission.id.in_(_latest_ids(assignment, cohort)))
            .options(selectinload(Submission.user))
        )
    )
    releases = _Releases(assignment)
    prints = [similarity.fingerprint(s.id, _notebooks(s), releases.of(s.version)) for s in subs]
    by_id = {s.id: s for s in subs}
    return [Flag(by_id[m.a], by_id[m.b], m.score) for m in similarity.flag(prints)[:limit]]


def pair_score(a: Submission, b: Submission) -> float:
    """How alike two submissions' code is (0..1), as the flags measure it."""
    releases = _Releases(a.assignment)
    return similarity.similarity(
        similarity.fingerprint(a.id, _notebooks(a), releases.of(a.version)),
        similarity.fingerprint(b.id, _notebooks(b), releases.of(b.version)),
    )


def side_by_side(a: Submission, b: Submission) -> list[CellPair]:
    """The learners' answer cells, paired by notebook and grade_id (cells without nbgrader
    marks by their order), in a's order with b's other cells after."""
    left, right = _answers(a), _answers(b)
    keys = list(left) + [k for k in right if k not in left]
    return [CellPair(k[0], k[1], left.get(k), right.get(k)) for k in keys]


def _answers(sub: Submission) -> dict[tuple[str, str, int], str]:
    """(notebook, grade_id, n) -> source of the submission's answer cells; n numbers the cells
    without nbgrader marks (0 for marked ones)."""
    out: dict[tuple[str, str, int], str] = {}
    for name, nb in sorted(_notebooks(sub).items()):
        unmarked = 0
        for cell in similarity.answer_cells(name, nb):
            if not cell.key:
                unmarked += 1
            out[(name, cell.key, 0 if cell.key else unmarked)] = cell.source
    return out


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

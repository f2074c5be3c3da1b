"""A course's assignments as their instructors see them: the list with releases and
submission counts, one assignment in full, its change history and its graded cells."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentChange,
    AssignmentNotebook,
    Course,
    GradedCell,
    Submission,
)


def course_assignments(course_id: int) -> list[Assignment]:
    """The course's assignments with their releases, active ones first, in course order."""
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.course_id == course_id)
            .options(selectinload(Assignment.releases))
            .order_by(Assignment.active.desc(), Assignment.position)
        )
    )


def course_assignment(course_id: int, slug: str) -> Assignment | None:
    """The course's assignment with that slug, if any."""
    return db.session.scalar(
        sa.select(Assignment).where(Assignment.course_id == course_id, Assignment.slug == slug)
    )


def course_assignment_in_full(course_id: int, slug: str) -> Assignment | None:
    """The course's assignment with that slug, its notebooks, their cells and its releases."""
    return db.session.scalar(
        sa.select(Assignment)
        .where(Assignment.course_id == course_id, Assignment.slug == slug)
        .options(
            selectinload(Assignment.notebooks).selectinload(AssignmentNotebook.cells),
            selectinload(Assignment.releases),
        )
    )


def assignment_changes(assignment_id: int) -> list[AssignmentChange]:
    """Every recorded change to the assignment, newest first."""
    return list(
        db.session.scalars(
            sa.select(AssignmentChange)
            .where(AssignmentChange.assignment_id == assignment_id)
            .order_by(AssignmentChange.changed_at.desc())
        )
    )


def graded_cell(assignment_id: int, grade_id: str, notebook: str | None) -> GradedCell | None:
    """The assignment's graded cell with that grade id, in the named notebook (any notebook
    when None: the first by notebook name)."""
    query = (
        sa.select(GradedCell)
        .join(AssignmentNotebook, AssignmentNotebook.id == GradedCell.notebook_id)
        .where(AssignmentNotebook.assignment_id == assignment_id, GradedCell.grade_id == grade_id)
    )
    if notebook:
        query = query.where(AssignmentNotebook.name == notebook)
    return db.session.scalar(query.order_by(AssignmentNotebook.name).limit(1))


def submission_counts(course_ids: set[int] | None) -> list[tuple[Assignment, int]]:
    """The assignments of the given courses (all when None), each with its course loaded and
    its number of submissions, by course slug then position."""
    counts = (
        sa.select(Submission.assignment_id, sa.func.count(Submission.id).label("n"))
        .group_by(Submission.assignment_id)
        .subquery()
    )
    query = (
        sa.select(Assignment, sa.func.coalesce(counts.c.n, 0))
        .join(Assignment.course)
        .outerjoin(counts, counts.c.assignment_id == Assignment.id)
        .options(contains_eager(Assignment.course))
        .order_by(Course.slug, Assignment.position, Assignment.id)
    )
    if course_ids is not None:
        query = query.where(Assignment.course_id.in_(course_ids))
    return [(a, int(count)) for a, count in db.session.execute(query).tuples()]

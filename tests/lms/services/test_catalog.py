"""sync-courses: courses/ into the database, versioned by content hash, released work protected."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentChange,
    CellKind,
    CohortAssignment,
    Course,
    GradedCell,
    Release,
)
from lms.services import catalog, programs
from tests import factories
from tests.course_builder import notebook, write_assignment, write_course


def problems_of(root: Path) -> list[str]:
    return catalog.load(root)[1]


def test_a_valid_course_loads_without_problems(courses_dir: Path) -> None:
    write_course(
        courses_dir, assignments={"first": {}, "second": {"gpu": True, "preload": ["numpy"]}}
    )
    [course], problems = catalog.load(courses_dir)
    assert problems == []
    assert [a.slug for a in course.assignments] == ["first", "second"]
    assert course.assignments[1].gpu and course.assignments[1].preload == ("numpy",)


def course_without_manual_answer(root: Path) -> None:
    write_assignment(root / "doubling-101" / "a", notebook(manual_points=0))
    write_course(root, assignments={"a": {"points": 2.0}})


def course_with_broken_notebook(root: Path) -> None:
    (root / "doubling-101" / "a").mkdir(parents=True)
    (root / "doubling-101" / "a" / "a.ipynb").write_text("{oops")
    write_course(root, assignments={"a": {}})


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda root: (root / "c1").mkdir(), "c1: no course.toml"),
        (
            lambda root: (root / "c1").mkdir() or (root / "c1" / "course.toml").write_text("x ="),
            "course.toml is not valid TOML",
        ),
        (lambda root: write_course(root, extra_toml='colour = "red"'), "unknown key 'colour'"),
        (
            lambda root: write_course(root, assignments={"a": {"points": 5.0}}),
            "course.toml says 5 points, the notebooks 3",
        ),
        (
            lambda root: write_course(root, assignments={"a": {"pass_mark": 9.0}}),
            "pass_mark 9.0 must be between 0 and points 3.0",
        ),
        (
            lambda root: write_course(root, assignments={"a": {"due_days": "soon"}}),
            "'due_days' must be a whole number",
        ),
        (
            lambda root: write_assignment(write_course(root) / "stray"),
            "stray: folder is not in the 'assignments' list",
        ),
        (lambda root: course_without_manual_answer(root), "no manually graded written answer"),
        (lambda root: course_with_broken_notebook(root), "invalid JSON"),
    ],
)
def test_problems_are_named(courses_dir: Path, setup: Any, expected: str) -> None:
    setup(courses_dir)
    problems = problems_of(courses_dir)
    assert any(expected in p for p in problems), problems


def test_sync_creates_courses_assignments_and_cells_once(app: Flask, courses_dir: Path) -> None:
    write_course(courses_dir, assignments={"first": {}, "second": {"due_days": 28}})
    report = catalog.sync(courses_dir)
    assert report.created == ["doubling-101/first", "doubling-101/second"]
    course = db.session.scalar(sa.select(Course).where(Course.slug == "doubling-101"))
    assert course is not None and course.title == "Doubling 101"
    first, second = course.assignments
    assert (first.points, first.pass_mark, first.version, second.due_days) == (3.0, 2.0, 1, 28)
    kinds = {c.grade_id: c.kind for nb in first.notebooks for c in nb.cells}
    assert kinds == {"test-double": CellKind.AUTOGRADED, "why-linear": CellKind.MANUAL}
    again = catalog.sync(courses_dir)
    assert again.created == [] and again.unchanged == ["doubling-101/first", "doubling-101/second"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GradedCell)) == 4


def test_unreleased_changes_update_in_place(app: Flask, courses_dir: Path) -> None:
    write_course(courses_dir)
    catalog.sync(courses_dir)
    write_course(courses_dir, assignments={"double-it": {"title": "Renamed"}})
    report = catalog.sync(courses_dir)
    assert report.updated == ["doubling-101/double-it"]
    assignment = db.session.scalar(sa.select(Assignment))
    assert assignment is not None and (assignment.title, assignment.version) == ("Renamed", 1)


def release_current(assignment: Assignment) -> None:
    db.session.add(
        Release(
            assignment=assignment,
            version=assignment.version,
            content_hash=assignment.content_hash,
            path="x",
        )
    )
    db.session.commit()


def test_changing_a_released_assignment_needs_force_and_is_recorded(
    app: Flask, courses_dir: Path
) -> None:
    write_course(courses_dir)
    catalog.sync(courses_dir)
    assignment = db.session.scalar(sa.select(Assignment))
    assert assignment is not None
    old_hash = assignment.content_hash
    release_current(assignment)
    write_assignment(courses_dir / "doubling-101" / "double-it", notebook(test_points=3.0))
    write_course(courses_dir, assignments={"double-it": {"points": 4.0}})

    with pytest.raises(catalog.CatalogError, match="released and its content changed"):
        catalog.sync(courses_dir)
    db.session.expire_all()
    assert assignment.content_hash == old_hash and assignment.points == 3.0

    report = catalog.sync(courses_dir, force=True, actor="instructor@example.org")
    assert report.new_versions == ["doubling-101/double-it"]
    db.session.expire_all()
    assert (assignment.version, assignment.points) == (2, 4.0)
    change = db.session.scalar(sa.select(AssignmentChange))
    assert change is not None
    assert (change.changed_by, change.old_hash, change.new_hash) == (
        "instructor@example.org",
        old_hash,
        assignment.content_hash,
    )
    assert (change.old_version, change.new_version) == (1, 2)
    assert change.details["points_changed"] == ["double-it:test-double"]
    assert change.details["points"] == [3.0, 4.0]


def test_removed_assignment_is_deactivated_not_deleted(app: Flask, courses_dir: Path) -> None:
    write_course(courses_dir, assignments={"first": {}, "second": {}})
    catalog.sync(courses_dir)
    import shutil

    shutil.rmtree(courses_dir / "doubling-101" / "second")
    write_course(courses_dir, assignments={"first": {}})
    report = catalog.sync(courses_dir)
    assert report.deactivated == ["doubling-101/second"]
    active = dict(db.session.execute(sa.select(Assignment.slug, Assignment.active)).tuples().all())
    assert active == {"first": True, "second": False}


def test_cohorts_taking_the_course_get_dates(app: Flask, courses_dir: Path) -> None:
    course = factories.course("doubling-101", "Doubling 101")
    cohort = programs.create_cohort(
        factories.program(), "Spring", date(2026, 3, 2), date(2026, 8, 31), courses=[course]
    )
    write_course(courses_dir, assignments={"first": {"due_days": 14}})
    assert catalog.sync(courses_dir).scheduled == 1
    row = db.session.scalar(
        sa.select(CohortAssignment).where(CohortAssignment.cohort_id == cohort.id)
    )
    assert row is not None
    assert row.opens_at == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert row.due_at == datetime(2026, 3, 16, 23, 59, tzinfo=UTC)
    assert catalog.sync(courses_dir).scheduled == 0


def test_a_cohort_created_after_sync_gets_dates(app: Flask, courses_dir: Path) -> None:
    write_course(courses_dir, assignments={"first": {"due_days": 3}})
    catalog.sync(courses_dir)
    course = db.session.scalar(sa.select(Course))
    assert course is not None
    cohort = programs.create_cohort(
        factories.program(), "Late", date(2027, 1, 4), date(2027, 6, 30), courses=[course]
    )
    [row] = db.session.scalars(
        sa.select(CohortAssignment).where(CohortAssignment.cohort_id == cohort.id)
    ).all()
    assert row.due_at == datetime(2027, 1, 7, 23, 59, tzinfo=UTC)


def test_sync_with_problems_writes_nothing(app: Flask, courses_dir: Path) -> None:
    write_course(courses_dir, extra_toml='colour = "red"')
    with pytest.raises(catalog.CatalogError):
        catalog.sync(courses_dir)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Assignment)) == 0


def test_sync_courses_cli(courses_dir: Path, app: Flask, runner: FlaskCliRunner) -> None:
    write_course(courses_dir)
    result = runner.invoke(args=["lms", "sync-courses"])
    assert result.exit_code == 0, result.output
    assert "new: doubling-101/double-it" in result.output
    (courses_dir / "doubling-101" / "course.toml").write_text("title = ")
    result = runner.invoke(args=["lms", "sync-courses"])
    assert result.exit_code == 1 and "not valid TOML" in result.output

"""Releasing assignments into LMS_DATA_DIR, and check-courses, with real nbgrader."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from lms.extensions import db
from lms.models import Assignment, Release
from lms.services import catalog, releases
from tests.course_builder import TEST, notebook, write_assignment, write_course


def test_release_writes_the_learner_version_once(courses_dir: Path, app: Flask) -> None:
    write_course(courses_dir)
    catalog.sync(courses_dir)
    assignment = db.session.scalar(sa.select(Assignment))
    assert assignment is not None
    row = releases.release(assignment)
    folder = Path(app.config["DATA_DIR"]) / row.path
    assert row.path == "releases/doubling-101/double-it/v1"
    text = (folder / "double-it.ipynb").read_text()
    assert "secret-solution-line" not in text and "secret-hidden-test" not in text
    assert releases.release(assignment).id == row.id
    assert releases.unreleased() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Release)) == 1


def test_release_refuses_content_changed_since_sync(courses_dir: Path, app: Flask) -> None:
    write_course(courses_dir)
    catalog.sync(courses_dir)
    write_assignment(courses_dir / "doubling-101" / "double-it", notebook(test_points=3.0))
    assignment = db.session.scalar(sa.select(Assignment))
    assert assignment is not None
    with pytest.raises(releases.ReleaseError, match="run sync-courses first"):
        releases.release(assignment)
    assert not (Path(app.config["DATA_DIR"]) / "releases").exists()


# Grading-heavy tests whose database work is already covered on both backends above.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@sqlite_only
def test_release_cli(courses_dir: Path, app: Flask, runner: FlaskCliRunner) -> None:
    write_course(courses_dir, assignments={"first": {}, "second": {}})
    runner.invoke(args=["lms", "sync-courses"])
    result = runner.invoke(args=["lms", "release"])
    assert result.exit_code == 0, result.output
    assert "Released 2 assignment version(s)." in result.output
    assert "Every assignment version is released." in runner.invoke(args=["lms", "release"]).output


@sqlite_only
def test_check_courses_passes_a_good_course(
    courses_dir: Path, app: Flask, runner: FlaskCliRunner
) -> None:
    write_course(courses_dir)
    result = runner.invoke(args=["lms", "check-courses"])
    assert result.exit_code == 0, result.output
    assert "doubling-101/double-it: source 2/2, release 0" in result.output
    assert "All 1 assignments pass" in result.output


@sqlite_only
def test_check_courses_names_each_problem(
    courses_dir: Path, app: Flask, runner: FlaskCliRunner
) -> None:
    # A test the solution fails, and a test the untouched release passes.
    wrong = TEST.replace("double(2) == 4", "double(2) == 5")
    write_assignment(courses_dir / "doubling-101" / "wrong-test", notebook(test=wrong))
    always = "assert True\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS\n"
    write_assignment(courses_dir / "doubling-101" / "free-points", notebook(test=always))
    write_course(
        courses_dir, assignments={"wrong-test": {}, "free-points": {}}, extra_toml='colour = "x"'
    )
    result = runner.invoke(args=["lms", "check-courses"])
    assert result.exit_code == 1
    assert "unknown key 'colour'" in result.output
    write_course(courses_dir, assignments={"wrong-test": {}, "free-points": {}})
    result = runner.invoke(args=["lms", "check-courses"])
    assert result.exit_code == 1
    assert (
        "doubling-101/wrong-test: the source scores 0 of 2 autograded points (failing: test-double)"
        in result.output
    )
    assert "doubling-101/free-points: the untouched release scores 2 (must be 0)" in result.output

"""Learners' lab workspaces: made from the release once, the learner's after that, reset with
the old copy kept, submitted through the upload rules, and never followed out by a link the
learner's code left there."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask, current_app

from lms.extensions import db
from lms.services import workspaces
from lms.services.submissions import SubmissionError
from tests import grading_world
from tests.conftest import needs
from tests.grading_world import NOTEBOOK, RIGHT, WRONG, World


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


def release_folder(world: World) -> Path:
    release = world.assignment.current_release
    assert release is not None
    return Path(current_app.config["DATA_DIR"]) / release.path


def save(path: Path, code: str, world: World) -> None:
    path.write_bytes(grading_world.answer(world.assignment, code).data)


def code_in(path: Path) -> str:
    """Every cell's source of the notebook at path, one after another."""
    return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])


def test_the_first_open_copies_the_release_and_later_ones_keep_the_work(world: World) -> None:
    given = release_folder(world)
    (given / "data").mkdir()
    (given / "data" / "vitals.csv").write_text("bpm\n72\n")
    learner, other = world.learners

    workspace = workspaces.open_workspace(learner, world.assignment)
    assert workspace.notebooks == [NOTEBOOK]
    assert workspace.relative == f"{world.assignment.course.slug}/{world.assignment.slug}"
    notebook = workspace.folder / NOTEBOOK
    assert notebook.read_bytes() == (given / NOTEBOOK).read_bytes()
    assert (workspace.folder / "data" / "vitals.csv").read_text() == "bpm\n72\n"

    save(notebook, RIGHT, world)
    (workspace.folder / "data" / "vitals.csv").write_text("mine")
    (given / "data" / "extra.csv").write_text("new in the release")
    again = workspaces.open_workspace(learner, world.assignment)
    assert RIGHT in code_in(notebook)  # the learner's work stays
    assert (again.folder / "data" / "vitals.csv").read_text() == "mine"
    assert (again.folder / "data" / "extra.csv").read_text() == "new in the release"

    theirs = workspaces.open_workspace(other, world.assignment)
    assert theirs.root != workspace.root and theirs.root.parent == workspace.root.parent
    assert RIGHT not in code_in(theirs.folder / NOTEBOOK)


def test_reset_puts_the_release_back_and_keeps_the_old_copy(world: World) -> None:
    learner = world.learners[0]
    workspace = workspaces.open_workspace(learner, world.assignment)
    notebook = workspace.folder / NOTEBOOK
    save(notebook, WRONG, world)
    kept = workspaces.reset(
        learner, world.assignment, NOTEBOOK, now=datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    )
    assert kept.name == "double-it.before-reset-20260501-123000.ipynb"
    assert WRONG in code_in(kept)
    assert notebook.read_bytes() == (release_folder(world) / NOTEBOOK).read_bytes()
    with pytest.raises(workspaces.WorkspaceError, match="not a notebook of this assignment"):
        workspaces.reset(learner, world.assignment, "../../other.ipynb")


def test_what_the_lms_writes_into_a_running_labs_workspace_belongs_to_the_labs_uid(
    world: World,
) -> None:
    """The lab hub hands a workspace to its lab server's uid; a reset or a file new in the
    release, written by the LMS (root), must stay writable by that lab."""
    needs(os.geteuid() == 0, "root")
    learner = world.learners[0]
    workspace = workspaces.open_workspace(learner, world.assignment)
    lab_uid = 61999
    for folder, _, files in os.walk(workspace.root):
        os.chown(folder, lab_uid, lab_uid)
        for name in files:
            os.chown(Path(folder) / name, lab_uid, lab_uid)

    given = release_folder(world)
    (given / "data").mkdir()
    (given / "data" / "new.csv").write_text("x\n1\n")
    again = workspaces.open_workspace(learner, world.assignment)
    kept = workspaces.reset(learner, world.assignment, NOTEBOOK)
    for path in (again.folder / "data", again.folder / "data" / "new.csv", again.folder / NOTEBOOK):
        assert path.stat().st_uid == lab_uid, f"{path} is not the lab's"
    assert kept.stat().st_uid == lab_uid


def test_submitting_the_workspace_goes_through_the_upload_rules(world: World) -> None:
    learner = world.learners[0]
    workspace = workspaces.open_workspace(learner, world.assignment)
    notebook = workspace.folder / NOTEBOOK
    save(notebook, RIGHT, world)
    first = workspaces.submit(learner, world.assignment, world.cohort, key="lab-submit-1")
    assert first.created and first.submission.via == "lab"
    assert first.submission.attempt == 1
    # A retry with the same key, or the same saved notebook again: no new attempt.
    assert (
        workspaces.submit(learner, world.assignment, world.cohort, key="lab-submit-1").created
        is False
    )
    assert workspaces.submit(learner, world.assignment, world.cohort).created is False

    notebook.write_text("{not json")
    with pytest.raises(SubmissionError):
        workspaces.submit(learner, world.assignment, world.cohort)
    notebook.unlink()
    with pytest.raises(workspaces.WorkspaceError, match="save it there first"):
        workspaces.submit(learner, world.assignment, world.cohort)


def test_links_and_huge_files_left_by_learner_code_are_refused(
    world: World, app: Flask, tmp_path: Path
) -> None:
    learner, other = world.learners
    theirs = workspaces.open_workspace(other, world.assignment)
    save(theirs.folder / NOTEBOOK, RIGHT, world)
    mine = workspaces.open_workspace(learner, world.assignment)
    notebook = mine.folder / NOTEBOOK

    # A link to another learner's notebook is never read for a submission ...
    notebook.unlink()
    os.symlink(theirs.folder / NOTEBOOK, notebook)
    with pytest.raises(workspaces.WorkspaceError, match="not a regular file"):
        workspaces.submit(learner, world.assignment, world.cohort)
    # ... and reset renames the link itself, writing the release beside it, not through it.
    kept = workspaces.reset(learner, world.assignment, NOTEBOOK)
    assert kept.is_symlink() and not notebook.is_symlink()
    assert RIGHT in code_in(theirs.folder / NOTEBOOK)  # untouched

    # A link where a release folder goes is in the way, not followed.
    outside = tmp_path / "outside"
    outside.mkdir()
    data = release_folder(world) / "data"
    data.mkdir()
    (data / "x.csv").write_text("1")
    os.symlink(outside, mine.folder / "data")
    with pytest.raises(workspaces.WorkspaceError, match="in the way"):
        workspaces.open_workspace(learner, world.assignment)
    assert list(outside.iterdir()) == []

    # A notebook larger than the upload limit is refused with the limit named.
    (mine.folder / "data").unlink()
    app.config["MAX_UPLOAD_MB"] = 1
    notebook.write_text(json.dumps({"cells": [], "padding": "x" * (1024 * 1024)}))
    with pytest.raises(workspaces.WorkspaceError, match="larger than 1 MB"):
        workspaces.submit(learner, world.assignment, world.cohort)


def test_an_unreleased_assignment_is_not_opened_and_nothing_is_generated(world: World) -> None:
    """Releases are made by `flask lms release`; the web process never runs nbgrader."""
    release = world.assignment.current_release
    assert release is not None
    db.session.delete(release)
    db.session.commit()
    learner = world.learners[0]
    with pytest.raises(workspaces.WorkspaceError, match="not released yet"):
        workspaces.open_workspace(learner, world.assignment)
    db.session.expire_all()
    assert world.assignment.current_release is None
    assert not workspaces.folder_of(learner, world.assignment).exists()

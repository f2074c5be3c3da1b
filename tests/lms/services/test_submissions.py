"""Submitting: every kind of bad upload is refused with a clear reason and leaves nothing
behind; retries and double clicks make one submission; lateness and penalties."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from lms.extensions import db
from lms.models import Grade, GradingJob, Submission, utcnow
from lms.queries import schedules
from lms.services import catalog, deadlines, grading, submissions
from lms.services.submissions import SubmissionError, Upload
from lms.storage import blobs
from tests import factories, grading_world
from tests.course_builder import notebook, write_assignment
from tests.grading_world import NOTEBOOK, RIGHT, WRONG, World


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


def nothing_stored(app: Flask) -> bool:
    no_rows = db.session.scalar(sa.select(sa.func.count(Submission.id))) == 0
    blob_dir = Path(app.config["DATA_DIR"]) / "blobs"
    return no_rows and (not blob_dir.exists() or not any(blob_dir.rglob("*")))


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (Upload("double-it.ipynb", b"\xff\xfe not text"), "not UTF-8"),
        (Upload("double-it.ipynb", b'{"cells": [}'), "broken JSON at line 1"),
        (Upload("double-it.ipynb", b'{"nbformat": 4}'), "no list of cells"),
        (Upload("double-it.ipynb", b'{"nbformat": 3, "cells": []}'), "notebook format 4"),
        (
            Upload(
                "double-it.ipynb",
                json.dumps(
                    {"nbformat": 4, "cells": [{"cell_type": "code", "source": "1"}]}
                ).encode(),
            ),
            "no nbgrader cells",
        ),
        (Upload("notes.txt", b"hello"), "upload .ipynb files"),
        (Upload("", b""), "Choose the notebook"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    world: World, app: Flask, upload: Upload, message: str
) -> None:
    with pytest.raises(SubmissionError, match=message):
        submissions.submit(world.learners[0], world.assignment, world.cohort, [upload])
    assert nothing_stored(app)
    assert db.session.scalar(sa.select(sa.func.count(GradingJob.id))) == 0


def test_a_second_notebook_name_is_refused_for_a_two_file_upload(world: World, app: Flask) -> None:
    good = grading_world.answer(world.assignment, RIGHT)
    with pytest.raises(SubmissionError, match="not a notebook of this assignment"):
        submissions.submit(
            world.learners[0],
            world.assignment,
            world.cohort,
            [good, Upload("other.ipynb", good.data)],
        )
    assert nothing_stored(app)


def test_a_renamed_download_is_taken_for_the_only_notebook(world: World) -> None:
    good = grading_world.answer(world.assignment, RIGHT)
    outcome = submissions.submit(
        world.learners[0],
        world.assignment,
        world.cohort,
        [Upload("double-it (1).ipynb", good.data)],
    )
    assert list(outcome.submission.files) == [NOTEBOOK]
    assert blobs.get(outcome.submission.files[NOTEBOOK]) == good.data


def test_retries_and_identical_uploads_make_one_submission(world: World) -> None:
    learner = world.learners[0]
    first = submissions.submit(
        learner,
        world.assignment,
        world.cohort,
        [grading_world.answer(world.assignment, WRONG)],
        key="form-key-0001",
    )
    retry = submissions.submit(
        learner,
        world.assignment,
        world.cohort,
        [grading_world.answer(world.assignment, WRONG)],
        key="form-key-0001",
    )
    same = submissions.submit(
        learner,
        world.assignment,
        world.cohort,
        [grading_world.answer(world.assignment, WRONG)],
        key="form-key-0002",
    )
    assert first.created and not retry.created and not same.created
    assert retry.submission.id == first.submission.id == same.submission.id
    changed = submissions.submit(
        learner, world.assignment, world.cohort, [grading_world.answer(world.assignment, RIGHT)]
    )
    assert changed.created and changed.submission.attempt == 2
    assert db.session.scalar(sa.select(sa.func.count(Submission.id))) == 2


def test_only_enrolled_learners_submit_to_open_assignments(world: World) -> None:
    outsider = factories.user("outsider@test.org")
    upload = grading_world.answer(world.assignment, RIGHT)
    with pytest.raises(SubmissionError, match="cannot submit"):
        submissions.submit(outsider, world.assignment, world.cohort, [upload])
    world.scheduled.opens_at = utcnow() + timedelta(days=1)
    db.session.commit()
    with pytest.raises(SubmissionError, match="not open yet"):
        submissions.submit(world.learners[0], world.assignment, world.cohort, [upload])


def test_late_penalty_per_day_with_a_cap_a_cut_off_and_an_extension(world: World) -> None:
    now = utcnow()
    world.scheduled.opens_at = now - timedelta(days=10)
    due = now - timedelta(days=2, hours=1)  # submitting now is 3 started days late
    deadlines.set_policy(
        world.scheduled, due_at=due, penalty_per_day=10, penalty_cap=25, cutoff_at=None
    )
    first, second = world.learners
    late = submissions.submit(
        first, world.assignment, world.cohort, [grading_world.answer(world.assignment, RIGHT)]
    )
    assert late.submission.late_seconds == pytest.approx(2 * 86400 + 3600, abs=5)
    deadline = schedules.deadline_for(world.scheduled, first.id)
    assert deadline.penalty_percent(now) == 25  # 30 % by the day, capped at 25
    assert deadline.penalty_percent(due + timedelta(hours=1)) == 10

    deadlines.set_policy(
        world.scheduled,
        due_at=due,
        penalty_per_day=10,
        penalty_cap=25,
        cutoff_at=due + timedelta(days=1),
    )
    assert schedules.deadline_for(world.scheduled, first.id).penalty_percent(now) == 100

    deadlines.grant_extension(
        world.scheduled, second, now + timedelta(days=1), world.instructor, "ill"
    )
    extended = schedules.deadline_for(world.scheduled, second.id)
    assert extended.extended and extended.penalty_percent(now) == 0
    on_time = submissions.submit(
        second, world.assignment, world.cohort, [grading_world.answer(world.assignment, RIGHT)]
    )
    assert on_time.submission.late_seconds == 0
    with pytest.raises(deadlines.DeadlineError):
        deadlines.grant_extension(
            world.scheduled, second, due - timedelta(days=1), world.instructor
        )


def test_manual_grades_stay_within_points_and_every_change_is_an_event(
    world: World, graders: None
) -> None:
    outcome = submissions.submit(
        world.learners[0],
        world.assignment,
        world.cohort,
        [grading_world.answer(world.assignment, WRONG)],
    )
    grading.create_batch(world.assignment, world.instructor)
    assert grading_world.grade_queued() == 1
    cells = grading.graded_cells(world.assignment.id)
    manual = cells[("double-it", "why-linear")]
    test = cells[("double-it", "test-double")]
    with pytest.raises(grading.GradingError, match="between 0 and 1"):
        grading.grade_by_hand(outcome.submission, manual, world.instructor, 1.5, "")
    grading.grade_by_hand(outcome.submission, manual, world.instructor, 0.5, "Half right.")
    grading.grade_by_hand(
        outcome.submission, test, world.instructor, 1.0, "", reason="typo in test"
    )
    grades = {g.cell_id: g for g in db.session.scalars(sa.select(Grade))}
    assert grades[manual.id].score == 0.5 and grades[manual.id].comment == "Half right."
    assert grades[test.id].auto_score == 0.0 and grades[test.id].score == 1.0
    history = [(e.source, e.old_score, e.new_score, e.actor_id) for e in grades[test.id].events]
    assert history == [
        ("autograde", None, 0.0, None),
        ("override", 0.0, 1.0, world.instructor.id),
    ]
    assert grades[test.id].events[1].reason == "typo in test"


def test_a_forced_change_may_not_remove_a_cell_that_has_grades(
    world: World, courses_dir: Path, graders: None
) -> None:
    submissions.submit(
        world.learners[0],
        world.assignment,
        world.cohort,
        [grading_world.answer(world.assignment, RIGHT)],
    )
    grading.create_batch(world.assignment, world.instructor)
    grading_world.grade_queued()
    grades = db.session.scalar(sa.select(sa.func.count(Grade.id)))
    assert grades == 2
    renamed = notebook()
    renamed.cells[2].metadata.nbgrader.grade_id = "test-double-v2"  # drops "test-double"
    write_assignment(courses_dir / "doubling-101" / "double-it", renamed)
    with pytest.raises(catalog.CatalogError, match="grades for double-it:test-double,"):
        catalog.sync(courses_dir, force=True)
    assert db.session.scalar(sa.select(sa.func.count(Grade.id))) == grades
    assert world.assignment.version == 1

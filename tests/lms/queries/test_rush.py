"""The rush before a deadline, planned: the assignments due soon with their learners and
submissions, the modelled peak, the lane; the admin's page; and the worker warming its
graders ahead of the due time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms import worker
from lms.extensions import db
from lms.models import Course, utcnow
from lms.queries import rush
from lms.services import submissions
from tests import factories, grading_world
from tests.conftest import Auth
from tests.grading_world import RIGHT, World

HOUR = timedelta(hours=1)


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    app_config.update(COURSES_DIR=str(tmp_path / "courses"), KERNEL_POOL_SIZE=1)
    (tmp_path / "courses").mkdir()
    return app_config


@pytest.fixture
def world(app: Flask) -> World:
    built = grading_world.build(Path(app.config["COURSES_DIR"]), learners=10)
    built.scheduled.due_at = utcnow() + timedelta(minutes=30)
    db.session.commit()
    for learner in built.learners[:2]:
        submissions.submit(
            learner, built.assignment, built.cohort, [grading_world.answer(built.assignment, RIGHT)]
        )
    return built


def test_the_plan_counts_who_has_yet_to_submit_and_models_the_peak(world: World) -> None:
    now = utcnow()
    [item] = rush.upcoming(now, within=2 * HOUR, prewarm=HOUR)
    assert (item.learners, item.submitted, item.to_come) == (10, 2, 8)
    assert item.lane == "cpu" and item.instant_feedback
    # Half of the 8 in the last hour, at the due time 4.07 times the hour's average.
    assert item.peak_per_minute == pytest.approx(8 * 0.5 / 60 * 4.0746, rel=1e-3)
    assert item.processes_needed(20.0) == 1
    assert item.warm(now) and not item.warm(now - HOUR)
    assert rush.upcoming(now, within=timedelta(minutes=10), prewarm=HOUR) == []


def test_gpu_work_plans_on_the_gpu_lane_unless_the_course_may_use_the_cpu(world: World) -> None:
    world.assignment.gpu = True
    db.session.commit()
    now = utcnow()
    assert [i.lane for i in rush.upcoming(now, 2 * HOUR, HOUR, gpu_lane=False)] == ["gpu"]
    course = db.session.scalar(sa.select(Course))
    assert course is not None
    course.gpu_on_cpu = True
    db.session.commit()
    assert [i.lane for i in rush.upcoming(now, 2 * HOUR, HOUR, gpu_lane=False)] == ["cpu"]
    assert [i.lane for i in rush.upcoming(now, 2 * HOUR, HOUR, gpu_lane=True)] == ["gpu"]


@pytest.mark.usefixtures("graders")
def test_a_worker_warms_its_grader_ahead_of_the_deadline_once(app: Flask, world: World) -> None:
    assert worker.prewarm(app, "gpu") == []  # not this lane's
    assert worker.prewarm(app, "cpu") == ["doubling-101/double-it"]
    assert len(worker.GRADERS.warm_keys()) == 1
    assert worker.prewarm(app, "cpu") == []  # warm already
    world.scheduled.due_at = utcnow() + 3 * HOUR  # outside the warm window now
    db.session.commit()
    worker.GRADERS.close()
    assert worker.prewarm(app, "cpu") == []


def test_the_admin_sees_the_plan(world: World, client: FlaskClient, auth: Auth) -> None:
    factories.admin()
    auth.login("admin@test.org")
    page = client.get("/admin/rush").get_data(as_text=True)
    assert "Deadlines ahead" in page
    assert world.assignment.title in page and world.cohort.name in page
    assert "warmed now" in page
    auth.logout()
    factories.learner(world.cohort, "nosy@test.org")
    auth.login("nosy@test.org")
    assert client.get("/admin/rush").status_code in (302, 403, 404)

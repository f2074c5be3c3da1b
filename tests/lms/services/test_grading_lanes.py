"""GPU-aware routing: GPU assignments wait on the "gpu" lane, taken only by workers with GPU
slots (real `flask lms worker` processes on PostgreSQL and Redis); while none is alive the
instructor is told, and they run on the CPU only where the course allows it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms import queue, worker
from lms.extensions import db
from lms.models import BatchState, Course, GradingJob, JobState, WorkerProcess, utcnow
from lms.services import catalog, grading, workers
from tests import grading_world
from tests.autograder.conftest import fake_gpus
from tests.conftest import Auth
from tests.course_builder import write_course
from tests.grading_world import RIGHT, WRONG, World
from tests.lms.services.test_grading_queue import (
    Worker,
    batch_state,
    cell_score,
    submit_all,
    wait_for,
)
from tests.lms.services.test_grading_queue import (  # noqa: F401 - the fixtures
    app_config as app_config,
)
from tests.lms.services.test_grading_queue import (
    start_worker as start_worker,
)

ON_POSTGRES_AND_REDIS = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def queue_kind() -> str:
    return "redis"  # the scale-out queue: lanes are separate Redis queues


@pytest.fixture
def world(app: Flask) -> World:
    for lane in queue.LANES:
        queue.queue().lane(lane).flush()
    return grading_world.build(Path(app.config["COURSES_DIR"]), learners=2, gpu=True)


def alive_taking(lane: str) -> bool:
    db.session.rollback()
    return workers.taking(lane) > 0


@ON_POSTGRES_AND_REDIS
def test_gpu_work_waits_for_a_gpu_worker_and_the_instructor_is_told(
    world: World, start_worker: Worker, client: FlaskClient, auth: Auth, tmp_path: Path
) -> None:
    subs = submit_all(world, [RIGHT, WRONG])
    batch = grading.create_batch(world.assignment, world.instructor)
    lanes = set(db.session.scalars(sa.select(GradingJob.lane)))
    assert lanes == {"gpu"}
    assert queue.queue().lane("gpu").pending_count() == 2
    assert queue.queue().lane("cpu").pending_count() == 0

    start_worker(lanes="cpu")
    wait_for(lambda: alive_taking("cpu"), what="the CPU worker to say it is alive")
    # A few reaper rounds later, nothing was taken: the CPU worker never sees the GPU lane.
    wait_for(lambda: queue.queue().lane("gpu").pending_count() == 2, what="the GPU lane")
    db.session.rollback()
    assert {j.state for j in db.session.scalars(sa.select(GradingJob))} == {JobState.QUEUED}
    assert grading.progress(batch).waiting_for_gpu
    assert grading.waiting_for_gpu(world.assignment)

    auth.login(world.instructor.email)
    page = client.get(f"/teach/batches/{batch.id}").get_data(as_text=True)
    assert "no grading worker with GPU slots is running" in page
    assert "data-waiting-for-gpu" in page and "data-waiting-for-gpu hidden" not in page
    progress = client.get(f"/teach/batches/{batch.id}/progress.json").get_json()
    assert progress["waiting_for_gpu"] is True
    listing = client.get(
        f"/teach/courses/{world.assignment.course.slug}/assignments/{world.assignment.slug}"
        "/submissions"
    ).get_data(as_text=True)
    assert "wait for a GPU" in listing

    # A host with GPU slots takes both lanes: a consumer per lane, the GPU one in a child.
    start_worker(
        lanes="cpu,gpu",
        LMS_GPU_SLOTS="0",
        LMS_GPU_DEVICE_ROOT=str(fake_gpus(tmp_path / "gpu-host", 1)),
    )
    wait_for(lambda: batch_state(batch.id) == BatchState.DONE, what="the GPU worker's grading")
    assert [cell_score(s) for s in subs] == [2.0, 0.0]
    assert not grading.progress(batch).waiting_for_gpu
    db.session.rollback()
    gpu_workers = [w for w in workers.alive() if w.lanes == "gpu"]
    assert gpu_workers and all(w.gpu_slots == 1 for w in gpu_workers)
    assert workers.taking("cpu") >= 2  # the CPU-only worker and the GPU host's CPU lane


@ON_POSTGRES_AND_REDIS
def test_a_course_that_allows_the_cpu_has_its_gpu_work_graded_there(
    world: World, start_worker: Worker
) -> None:
    course = db.session.scalar(sa.select(Course))
    assert course is not None
    course.gpu_on_cpu = True
    db.session.commit()
    subs = submit_all(world, [RIGHT, WRONG])
    batch = grading.create_batch(world.assignment, world.instructor)
    assert set(db.session.scalars(sa.select(GradingJob.lane))) == {"cpu"}
    assert not grading.progress(batch).waiting_for_gpu
    start_worker(lanes="cpu")
    wait_for(lambda: batch_state(batch.id) == BatchState.DONE, what="the CPU worker's grading")
    assert [cell_score(s) for s in subs] == [2.0, 0.0]


@ON_POSTGRES_AND_REDIS
def test_gpu_work_left_by_a_dead_gpu_worker_moves_to_the_cpu_only_where_allowed(
    world: World,
) -> None:
    """Queued on the GPU lane while a GPU worker lived; it died: the reaper moves the jobs of
    a course that allows the CPU, and leaves the others waiting (and shown as waiting)."""
    now = utcnow()
    gpu_worker = WorkerProcess(
        id="gpu-host:1", host="gpu-host", lanes="gpu", gpu_slots=2, started_at=now, seen_at=now
    )
    db.session.add(gpu_worker)
    db.session.commit()
    submit_all(world, [RIGHT, WRONG])
    batch = grading.create_batch(world.assignment, world.instructor)
    assert set(db.session.scalars(sa.select(GradingJob.lane))) == {"gpu"}
    assert not grading.progress(batch).waiting_for_gpu  # a GPU worker is alive

    gpu_worker.seen_at = now - workers.ALIVE_WITHIN - timedelta(seconds=1)
    for job in db.session.scalars(sa.select(GradingJob)):
        job.queued_at = now - timedelta(minutes=5)
    db.session.commit()
    assert grading.requeue_stale() == []  # the course does not allow the CPU: they wait
    assert grading.progress(batch).waiting_for_gpu

    course = db.session.scalar(sa.select(Course))
    assert course is not None
    course.gpu_on_cpu = True
    db.session.commit()
    moved = grading.requeue_stale()
    assert len(moved) == 2
    assert set(db.session.scalars(sa.select(GradingJob.lane))) == {"cpu"}
    assert queue.queue().lane("cpu").pending_count() == 2
    assert not grading.progress(batch).waiting_for_gpu


def test_a_worker_takes_the_gpu_lane_only_where_it_has_gpu_slots(app: Flask) -> None:
    assert worker.lanes_of(app) == ("cpu",)
    assert worker.lanes_of(app, "gpu") == ("gpu",)
    assert worker.lanes_of(app, "cpu, gpu,cpu") == ("cpu", "gpu")
    app.config["GPU_SLOTS"] = "0,1"
    assert worker.lanes_of(app) == ("cpu", "gpu")
    with pytest.raises(ValueError, match="unknown lane"):
        worker.lanes_of(app, "tpu")
    result = app.test_cli_runner().invoke(args=["lms", "worker", "--lanes", "tpu"])
    assert result.exit_code != 0 and "unknown lane(s) tpu" in result.output


def test_course_toml_says_whether_gpu_work_may_run_on_the_cpu(app: Flask, tmp_path: Path) -> None:
    root = tmp_path / "courses"
    write_course(root, extra_toml="gpu_on_cpu = true")
    catalog.sync(root)
    course = db.session.scalar(sa.select(Course))
    assert course is not None and course.gpu_on_cpu is True
    write_course(tmp_path / "bad", extra_toml='gpu_on_cpu = "yes"')
    _, problems = catalog.load(tmp_path / "bad")
    assert "doubling-101: 'gpu_on_cpu' must be true or false" in problems

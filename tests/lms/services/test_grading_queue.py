"""The real queue (Huey on SQLite and on Redis) and real `flask lms worker` processes grading
with the real autograder: batches, regrades, a killed worker, cancelling, priorities."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from autograder.results import GradeResult, InfrastructureFailure
from lms import queue, worker
from lms.extensions import db
from lms.models import (
    BatchState,
    Grade,
    GradeEvent,
    GradingBatch,
    GradingJob,
    JobKind,
    JobState,
    Submission,
)
from lms.services import grading, submissions
from tests import grading_world
from tests.conftest import REDIS_URL
from tests.grading_world import CRASHING, RIGHT, WRONG, World

ROOT = Path(__file__).resolve().parents[3]
# SQLite database with the SQLite queue; PostgreSQL with Redis: both queues, both databases.
BACKENDS = pytest.mark.parametrize(
    ("database_url", "queue_kind"),
    [("sqlite", "sqlite"), ("postgresql", "redis")],
    indirect=["database_url"],
)


@pytest.fixture
def queue_kind() -> str:
    return "sqlite"


@pytest.fixture
def app_config(app_config: dict[str, Any], queue_kind: str, tmp_path: Path) -> dict[str, Any]:
    if queue_kind == "redis":
        app_config["QUEUE_URL"] = REDIS_URL
    app_config.update(
        COURSES_DIR=str(tmp_path / "courses"),
        GRADING_LEASE_SECONDS=3,
        KERNEL_POOL_SIZE=1,
        CELL_TIMEOUT=10,
        NOTEBOOK_TIMEOUT=60,
    )
    (tmp_path / "courses").mkdir()
    return app_config


@pytest.fixture
def world(app: Flask) -> World:
    queue.queue().huey.flush()  # Redis db 15 may hold an earlier run's messages
    return grading_world.build(Path(app.config["COURSES_DIR"]), learners=4)


Worker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(app: Flask, tmp_path: Path) -> Iterator[Worker]:
    """Start `flask lms worker` on the test's database and queue (stopped at the end)."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    for key in ("DATABASE_URL", "QUEUE_URL", "DATA_DIR", "COURSES_DIR", "SECRET_KEY"):
        env[f"LMS_{key}"] = str(app.config[key])
    env.update(
        LMS_INSTANCE_PATH=str(tmp_path / "worker-instance"),
        LMS_GRADING_LEASE_SECONDS="3",
        LMS_KERNEL_POOL_SIZE="1",
        LMS_CELL_TIMEOUT="10",
        LMS_NOTEBOOK_TIMEOUT="60",
        FLASK_APP="wsgi",
    )

    def start(workers: int = 1, lanes: str = "", **more_env: str) -> subprocess.Popen[bytes]:
        lane_option = ["--lanes", lanes] if lanes else []
        with (tmp_path / f"worker{len(started)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "lms", "worker", "--workers", str(workers)]
                + lane_option,
                cwd=ROOT,
                env={**env, **more_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Shown by pytest only when the test failed: what each worker said.
    for log in sorted(tmp_path.glob("worker*.log")):
        print(f"--- {log.name} (last 60 lines)")
        print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))


def submit_all(world: World, codes: list[str]) -> list[Submission]:
    return [
        submissions.submit(
            learner, world.assignment, world.cohort, [grading_world.answer(world.assignment, code)]
        ).submission
        for learner, code in zip(world.learners, codes, strict=False)
    ]


def wait_for(check: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        db.session.rollback()  # see the worker's commits
        if time.monotonic() > deadline:
            jobs = db.session.execute(
                sa.select(
                    GradingJob.id,
                    GradingJob.batch_id,
                    GradingJob.state,
                    GradingJob.attempts,
                    GradingJob.error,
                ).order_by(GradingJob.id)
            ).all()
            pytest.fail(f"timed out waiting for {what}; jobs: {[tuple(j) for j in jobs]}")
        time.sleep(0.2)


def batch_state(batch_id: int) -> BatchState:
    db.session.rollback()
    batch = db.session.get(GradingBatch, batch_id)
    assert batch is not None
    db.session.refresh(batch)
    return batch.state


def cell_score(submission: Submission, grade_id: str = "test-double") -> float | None:
    for grade in db.session.scalars(sa.select(Grade).where(Grade.submission_id == submission.id)):
        if grade.cell.grade_id == grade_id:
            return grade.score
    return None


@BACKENDS
def test_batch_grades_every_latest_submission_and_a_regrade_adds_nothing(
    world: World, start_worker: Worker
) -> None:
    subs = submit_all(world, [RIGHT, WRONG, CRASHING, RIGHT])
    batch = grading.create_batch(world.assignment, world.instructor)
    assert batch.total == 4
    start_worker(workers=2)
    wait_for(lambda: batch_state(batch.id) == BatchState.DONE, what="the batch")
    assert [cell_score(s) for s in subs] == [2.0, 0.0, 0.0, 2.0]
    progress = grading.progress(batch)
    assert (progress.done, progress.failed, progress.state) == (4, 0, "done")
    grades = db.session.scalar(sa.select(sa.func.count(Grade.id)))
    events = db.session.scalar(sa.select(sa.func.count(GradeEvent.id)))
    assert grades == 4 * 2  # the test cell and the written answer, per submission

    again = grading.create_batch(
        world.assignment, world.instructor, submission_ids=[subs[0].id, subs[1].id]
    )
    wait_for(lambda: batch_state(again.id) == BatchState.DONE, what="the regrade")
    assert db.session.scalar(sa.select(sa.func.count(Grade.id))) == grades
    assert db.session.scalar(sa.select(sa.func.count(GradeEvent.id))) == events
    job = db.session.scalar(sa.select(GradingJob).where(GradingJob.batch_id == again.id))
    assert job is not None and job.feedback and job.result is not None


@BACKENDS
def test_a_worker_killed_mid_batch_loses_nothing_and_grades_once(
    world: World, start_worker: Worker
) -> None:
    subs = submit_all(world, [RIGHT, WRONG, RIGHT, CRASHING])
    batch = grading.create_batch(world.assignment, world.instructor)
    first = start_worker()

    def grading_started() -> bool:
        return (
            db.session.scalar(
                sa.select(sa.func.count(GradingJob.id)).where(
                    GradingJob.batch_id == batch.id, GradingJob.state == JobState.DONE
                )
            )
            or 0
        ) >= 1 and db.session.scalar(
            sa.select(GradingJob.id).where(
                GradingJob.batch_id == batch.id, GradingJob.state == JobState.RUNNING
            )
        ) is not None

    wait_for(grading_started, what="a job being graded after one finished")
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its sandboxes, mid-job
    first.wait()
    assert batch_state(batch.id) == BatchState.RUNNING
    start_worker()
    wait_for(lambda: batch_state(batch.id) == BatchState.DONE, what="the batch after the kill")
    jobs = list(db.session.scalars(sa.select(GradingJob).where(GradingJob.batch_id == batch.id)))
    assert {j.state for j in jobs} == {JobState.DONE}
    assert max(j.attempts for j in jobs) == 2  # the killed job was graded again
    assert [cell_score(s) for s in subs] == [2.0, 0.0, 2.0, 0.0]
    per_cell = db.session.execute(
        sa.select(Grade.submission_id, Grade.cell_id, sa.func.count(GradeEvent.id))
        .join(GradeEvent, GradeEvent.grade_id == Grade.id)
        .group_by(Grade.submission_id, Grade.cell_id)
    ).all()
    assert len(per_cell) == 8 and {count for *_, count in per_cell} == {1}


@pytest.mark.parametrize(
    ("database_url", "queue_kind"),
    [("sqlite", "sqlite"), ("sqlite", "redis")],
    indirect=["database_url"],
)
def test_instant_feedback_goes_ahead_of_a_waiting_batch(world: World, start_worker: Worker) -> None:
    subs = submit_all(world, [RIGHT, WRONG, RIGHT])
    batch = grading.create_batch(world.assignment, world.instructor)
    late = submissions.submit(
        world.learners[3],
        world.assignment,
        world.cohort,
        [grading_world.answer(world.assignment, RIGHT)],
    ).submission
    instant = grading.request_instant_feedback(late)
    assert instant is not None and instant.kind == JobKind.INSTANT
    start_worker()
    wait_for(lambda: batch_state(batch.id) == BatchState.DONE, what="the batch")
    db.session.refresh(instant)
    assert instant.state == JobState.DONE
    batch_starts = [
        j.started_at
        for j in db.session.scalars(sa.select(GradingJob).where(GradingJob.batch_id == batch.id))
        if j.started_at is not None
    ]
    assert len(batch_starts) == 3
    assert instant.started_at is not None and instant.started_at < min(batch_starts)
    assert len(subs) == 3


def test_a_cancelled_batch_grades_nothing_more(world: World, start_worker: Worker) -> None:
    subs = submit_all(world, [RIGHT, WRONG, RIGHT, WRONG])
    batch = grading.create_batch(world.assignment, world.instructor)
    assert grading.cancel_batch(batch) == 4
    with pytest.raises(grading.GradingError):
        grading.cancel_batch(batch)
    assert grading.claim(batch.id, "nobody") is None
    follow_up = grading.create_batch(
        world.assignment, world.instructor, submission_ids=[subs[0].id]
    )
    start_worker()
    wait_for(lambda: batch_state(follow_up.id) == BatchState.DONE, what="the follow-up batch")
    assert batch_state(batch.id) == BatchState.CANCELLED
    states = db.session.scalars(sa.select(GradingJob.state).where(GradingJob.batch_id == batch.id))
    assert set(states) == {JobState.CANCELLED}
    assert [cell_score(s) for s in subs] == [2.0, None, None, None]


def test_grade_cli_follows_the_batch_to_the_end(
    world: World, start_worker: Worker, app: Flask
) -> None:
    subs = submit_all(world, [RIGHT, WRONG])
    start_worker()
    result = app.test_cli_runner().invoke(
        args=["lms", "grade", "--assignment", "doubling-101/double-it", "--wait"]
    )
    assert result.exit_code == 0, result.output
    assert "2 submission(s) queued" in result.output
    assert "done: 2 graded, 0 failed" in result.output
    assert [cell_score(s) for s in subs] == [2.0, 0.0]
    unknown = app.test_cli_runner().invoke(args=["lms", "grade", "--assignment", "nope"])
    assert unknown.exit_code != 0 and "No assignment 'nope'" in unknown.output


def test_a_grader_that_could_not_start_a_kernel_requeues_the_job_and_records_no_score(
    app: Flask, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker tells the grader's failure from the learner's by its type, not its words."""
    (submission,) = submit_all(world, [RIGHT])
    batch = grading.create_batch(world.assignment, world.instructor, submission_ids=[submission.id])
    (job,) = db.session.scalars(sa.select(GradingJob).where(GradingJob.batch_id == batch.id))
    broken = GradeResult(
        score=0.0,
        max_score=2.0,
        notebooks={},
        errors=("double-it.ipynb: no kernel",),
        infrastructure=(InfrastructureFailure("double-it", "no kernel"),),
    )
    monkeypatch.setattr(worker, "grade_submission", lambda job: (broken, {}))
    worker.run_job(job.id)
    db.session.expire_all()
    again = db.session.get(GradingJob, job.id)
    assert again is not None
    assert (again.state, again.error) == (JobState.QUEUED, "double-it.ipynb: no kernel")
    assert cell_score(submission) is None  # nothing was recorded as the learner's score


@BACKENDS
def test_two_workers_ending_a_batchs_last_jobs_at_once_close_it(app: Flask, world: World) -> None:
    """Each worker ends its job and counts the batch's open jobs before committing: without a
    lock on the batch, each counts the other's job as running and the batch never ends."""
    subs = submit_all(world, [RIGHT, WRONG])
    batch = grading.create_batch(world.assignment, world.instructor)
    jobs = list(db.session.scalars(sa.select(GradingJob.id).where(GradingJob.batch_id == batch.id)))
    for job_id in jobs:
        assert grading.claim(job_id, f"token-{job_id}") is not None
    result = {"score": 0.0, "max_score": 2.0, "notebooks": {}}
    counted = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with app.app_context():
            try:

                def hold(_session: object) -> None:  # counted, not yet committed
                    counted.set()
                    time.sleep(1.0)

                sa.event.listen(db.session(), "before_commit", hold, once=True)
                assert grading.record_result(jobs[0], f"token-{jobs[0]}", result, {})
            except BaseException as e:  # noqa: BLE001 - reported by the test below
                errors.append(e)
            finally:
                counted.set()
                db.session.remove()

    def second() -> None:
        counted.wait(30)
        with app.app_context():
            try:
                assert grading.record_result(jobs[1], f"token-{jobs[1]}", result, {})
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(subs) == 2 and batch_state(batch.id) == BatchState.DONE


def test_the_reaper_closes_a_running_batch_whose_jobs_have_all_ended(world: World) -> None:
    submit_all(world, [RIGHT])
    batch = grading.create_batch(world.assignment, world.instructor)
    db.session.execute(
        sa.update(GradingJob).where(GradingJob.batch_id == batch.id).values(state=JobState.DONE)
    )
    db.session.commit()
    assert batch_state(batch.id) == BatchState.RUNNING  # as left by a lost close
    grading.requeue_stale()
    assert batch_state(batch.id) == BatchState.DONE

"""Grading across hosts: three worker hosts, each a network namespace of its own reaching
PostgreSQL and Redis over a veth link (tests.netns) and the files through the storage
interface on a shared folder, grade a batch of 300 submissions with the real autograder. One
host is killed with everything in it while it grades: every submission is graded exactly
once, none is lost, and the batch's progress adds up at every moment it is read."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from lms import queue
from lms.extensions import db
from lms.models import BatchState, Grade, GradeEvent, GradingBatch, GradingJob, JobState
from lms.services import grading, programs, submissions, users
from tests import grading_world, netns
from tests.conftest import REDIS_URL, needs
from tests.grading_world import CRASHING, RIGHT, WRONG, World

ROOT = Path(__file__).resolve().parents[3]
SUBMISSIONS = 300
LEASE_SECONDS = 5


@pytest.fixture
def app_config(app_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    app_config.update(
        QUEUE_URL=REDIS_URL,
        COURSES_DIR=str(tmp_path / "courses"),
        GRADING_LEASE_SECONDS=LEASE_SECONDS,
    )
    (tmp_path / "courses").mkdir()
    return app_config


@pytest.fixture
def world(app: Flask) -> World:
    queue.queue().huey.flush()
    built = grading_world.build(Path(app.config["COURSES_DIR"]), learners=1)
    # The rest without passwords: hashing 300 would take longer than grading them.
    for i in range(1, SUBMISSIONS):
        learner = users.create_user(f"host-learner{i}@test.org", f"Learner {i}", None)
        programs.enrol(learner, built.cohort)
        built.learners.append(learner)
    return built


def through(host: netns.Host, url: str) -> str:
    """The URL with its 127.0.0.1 server replaced by the host's relay to it."""
    parts = urlsplit(url)
    port = parts.port or {"redis": 6379}.get(parts.scheme, 5432)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{host.gateway}:{host.reach(port)}"))


def start_worker_host(app: Flask, host: netns.Host, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(
        LMS_DATABASE_URL=through(host, str(app.config["DATABASE_URL"])),
        LMS_QUEUE_URL=through(host, str(app.config["QUEUE_URL"])),
        LMS_DATA_DIR=str(app.config["DATA_DIR"]),  # the shared folder
        LMS_COURSES_DIR=str(app.config["COURSES_DIR"]),
        LMS_SECRET_KEY=str(app.config["SECRET_KEY"]),
        LMS_INSTANCE_PATH=str(tmp_path / f"{host.name}-instance"),
        LMS_GRADING_LEASE_SECONDS=str(LEASE_SECONDS),
        # The killed host may die inside a transaction holding the batch's lock: PostgreSQL
        # ends its session after this (production: 120 s), and the others go on.
        LMS_DATABASE_IDLE_TRANSACTION_SECONDS="10",
        LMS_KERNEL_POOL_SIZE="1",
        LMS_CELL_TIMEOUT="20",
        LMS_NOTEBOOK_TIMEOUT="60",
        FLASK_APP="wsgi",
    )
    host.start(
        [sys.executable, "-m", "flask", "lms", "worker", "--workers", "1"],
        tmp_path / f"{host.name}.log",
        cwd=ROOT,
        env=env,
    )


class ProgressWatch:
    """Reads the batch's progress as the instructor's page does, every 0.2 s, on a session of
    its own, and keeps every reading that does not add up."""

    def __init__(self, app: Flask, batch_id: int) -> None:
        self.app, self.batch_id = app, batch_id
        self.readings = 0
        self.wrong: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        last_finished = 0
        with self.app.app_context():
            while not self.stop.wait(0.2):
                batch = db.session.get(GradingBatch, self.batch_id)
                assert batch is not None
                seen = grading.progress(batch)
                db.session.rollback()
                self.readings += 1
                finished = seen.done + seen.failed
                counted = finished + seen.running + seen.queued + seen.cancelled
                if counted != seen.total or finished < last_finished or seen.failed:
                    self.wrong.append(f"{seen}")
                if seen.running > 3:  # three hosts, one grading process each
                    self.wrong.append(f"more running than workers: {seen}")
                last_finished = finished
            db.session.remove()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        db.session.rollback()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def count_jobs(batch_id: int, state: JobState) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.count(GradingJob.id)).where(
                GradingJob.batch_id == batch_id, GradingJob.state == state
            )
        )
        or 0
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_worker_hosts_one_killed_mid_batch_grade_every_submission_once(
    app: Flask, world: World, tmp_path: Path
) -> None:
    needs(netns.can_make_hosts(), "root and iproute2 to make network namespaces")
    codes = [RIGHT, WRONG, RIGHT, CRASHING]
    subs = [
        submissions.submit(
            learner,
            world.assignment,
            world.cohort,
            [grading_world.answer(world.assignment, codes[i % len(codes)])],
        ).submission
        for i, learner in enumerate(world.learners)
    ]
    batch = grading.create_batch(world.assignment, world.instructor)
    assert batch.total == SUBMISSIONS
    watch = ProgressWatch(app, batch.id)
    with netns.hosts(3) as (first, doomed, third):
        try:
            for host in (first, doomed, third):
                start_worker_host(app, host, tmp_path)

            def doomed_is_grading() -> bool:
                if count_jobs(batch.id, JobState.DONE) < SUBMISSIONS // 4:
                    return False
                pids = doomed.pids()
                tokens = db.session.scalars(
                    sa.select(GradingJob.leased_by).where(
                        GradingJob.batch_id == batch.id, GradingJob.state == JobState.RUNNING
                    )
                )
                return any(int(token.split(":")[1]) in pids for token in tokens if token)

            wait_for(doomed_is_grading, 240, "a quarter graded and the second host grading")
            killed_mid_job = {
                job_id: token
                for job_id, token in db.session.execute(
                    sa.select(GradingJob.id, GradingJob.leased_by).where(
                        GradingJob.batch_id == batch.id, GradingJob.state == JobState.RUNNING
                    )
                ).tuples()
                if token and int(token.split(":")[1]) in doomed.pids()
            }
            doomed.kill()
            assert doomed.pids() == set()  # nothing of it runs on
            done_at_kill = count_jobs(batch.id, JobState.DONE)
            assert done_at_kill < SUBMISSIONS

            def batch_done() -> bool:
                found = db.session.get(GradingBatch, batch.id)
                assert found is not None
                db.session.refresh(found)
                return found.state == BatchState.DONE

            wait_for(batch_done, 420, "the batch to end on the two hosts left")
        finally:
            watch.finish()
            for log in sorted(tmp_path.glob("host*.log")):
                print(f"--- {log.name} (last 40 lines)")
                print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))

    assert watch.readings > 10 and watch.wrong == []
    jobs = list(db.session.scalars(sa.select(GradingJob).where(GradingJob.batch_id == batch.id)))
    assert len(jobs) == SUBMISSIONS and {j.state for j in jobs} == {JobState.DONE}
    assert sorted(j.submission_id for j in jobs) == sorted(s.id for s in subs)
    # The jobs the killed host was grading were graded again by another host, once.
    assert killed_mid_job
    by_id = {j.id: j for j in jobs}
    for job_id, token in killed_mid_job.items():
        assert by_id[job_id].attempts == 2 and by_id[job_id].leased_by != token
    # Exactly once: each graded cell of each submission has one grade and one grade event.
    per_cell = db.session.execute(
        sa.select(Grade.submission_id, Grade.cell_id, sa.func.count(GradeEvent.id))
        .join(GradeEvent, GradeEvent.grade_id == Grade.id)
        .group_by(Grade.submission_id, Grade.cell_id)
    ).all()
    assert len(per_cell) == SUBMISSIONS * 2
    assert {count for *_, count in per_cell} == {1}
    scores = {
        grade.submission_id: grade.score
        for grade in db.session.scalars(sa.select(Grade))
        if grade.cell.grade_id == "test-double"
    }
    expected = {RIGHT: 2.0, WRONG: 0.0, CRASHING: 0.0}
    assert [scores[s.id] for s in subs] == [
        expected[codes[i % len(codes)]] for i in range(SUBMISSIONS)
    ]

"""The completion rule, the forecast of a program's target and the active learner count, on
small cohorts whose numbers are worked out by hand."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentNotebook,
    CellKind,
    Cohort,
    CohortAssignment,
    Course,
    Enrolment,
    EnrolmentStatus,
    Grade,
    GradedCell,
    Program,
    Submission,
    User,
)
from lms.queries import progress
from lms.services import completion, deadlines, grading, programs
from tests import factories

# A Friday; its ISO week starts on Monday 2026-04-27.
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)
HOUR = timedelta(hours=1)


@dataclass
class World:
    program: Program
    cohort: Cohort
    course: Course
    # (assignment, its one graded cell, its schedule in the cohort)
    parts: list[tuple[Assignment, GradedCell, CohortAssignment]]


def make_assignment(course: Course, slug: str, pass_mark: float, active: bool = True) -> Assignment:
    assignment = Assignment(
        course_id=course.id,
        slug=slug,
        title=slug.title(),
        points=10.0,
        pass_mark=pass_mark,
        content_hash=slug,
        active=active,
    )
    notebook = AssignmentNotebook(name=slug)
    notebook.cells.append(
        GradedCell(grade_id="answer", points=10.0, kind=CellKind.MANUAL, position=0)
    )
    assignment.notebooks.append(notebook)
    db.session.add(assignment)
    db.session.commit()
    return assignment


def build(target: int = 30, target_date: date = date(2026, 12, 31)) -> World:
    course = factories.course()
    # lab-1: pass mark 6 of 10, due 10 days ago; lab-2: pass mark 5, due 5 days ago, 10% off
    # per started day late; retired: no longer in courses/, so it does not count.
    first = make_assignment(course, "lab-1", 6.0)
    second = make_assignment(course, "lab-2", 5.0)
    make_assignment(course, "retired", 10.0, active=False)
    program = programs.create_program("Progress School", target, target_date)
    cohort = factories.cohort(program, courses=[course])
    parts = []
    for assignment, due, per_day in ((first, NOW - 10 * DAY, 0.0), (second, NOW - 5 * DAY, 10.0)):
        scheduled = db.session.scalar(
            sa.select(CohortAssignment).where(CohortAssignment.assignment_id == assignment.id)
        )
        assert scheduled is not None
        scheduled.opens_at = NOW - 30 * DAY
        scheduled.due_at = due
        scheduled.late_penalty_per_day = per_day
        parts.append((assignment, assignment.notebooks[0].cells[0], scheduled))
    db.session.commit()
    return World(program, cohort, course, parts)


def learner(cohort: Cohort, email: str, status: EnrolmentStatus = EnrolmentStatus.ENROLLED) -> User:
    user = factories.user(email, password=None)
    enrolment = programs.enrol(user, cohort)
    enrolment.status = status
    db.session.commit()
    return user


def submit(
    world: World, user: User, part: int, at: datetime, score: float | None, attempt: int = 1
) -> Submission:
    assignment, cell, _ = world.parts[part]
    submission = Submission(
        user_id=user.id,
        assignment_id=assignment.id,
        cohort_id=world.cohort.id,
        attempt=attempt,
        submitted_at=at,
        version=1,
        files={},
        content_hash=f"{user.id}-{part}-{attempt}",
    )
    db.session.add(submission)
    db.session.flush()
    db.session.add(
        Grade(
            submission_id=submission.id,
            cell_id=cell.id,
            max_score=cell.points,
            manual_score=score,
            status="graded" if score is not None else "needs_grading",
        )
    )
    db.session.commit()
    return submission


def enrolment(user: User) -> Enrolment:
    found = db.session.scalar(sa.select(Enrolment).where(Enrolment.user_id == user.id))
    assert found is not None
    return found


@pytest.fixture
def world(app: Flask) -> World:
    return build()


@dataclass
class Learners:
    a: User  # passes both (the first at the second attempt): completed
    b: User  # passes one: enrolled
    c: User  # passes on raw scores, but late: enrolled
    d: User  # withdrawn, passes both: untouched
    e: User  # certified, passes nothing: untouched
    f: User  # completed by hand, but one answer is not graded yet: enrolled again


@pytest.fixture
def learners(world: World) -> Learners:
    return make_learners(world)


def make_learners(world: World) -> Learners:
    a = learner(world.cohort, "a@test.org")
    submit(world, a, 0, NOW - 20 * DAY, 4.0)  # first attempt fails ...
    submit(world, a, 0, NOW - 12 * DAY, 8.0, attempt=2)  # ... the latest counts
    submit(world, a, 1, NOW - 6 * DAY, 7.0)
    b = learner(world.cohort, "b@test.org")
    submit(world, b, 0, NOW - 12 * DAY, 9.0)
    submit(world, b, 1, NOW - 6 * DAY, 3.0)
    c = learner(world.cohort, "c@test.org")
    submit(world, c, 0, NOW - 12 * DAY, 9.0)
    # Two started days late: 20% off 6 = 4.8, below the pass mark of 5.
    submit(world, c, 1, NOW - 5 * DAY + 36 * HOUR, 6.0)
    d = learner(world.cohort, "d@test.org", EnrolmentStatus.WITHDRAWN)
    submit(world, d, 0, NOW - 12 * DAY, 10.0)
    submit(world, d, 1, NOW - 6 * DAY, 10.0)
    e = learner(world.cohort, "e@test.org", EnrolmentStatus.CERTIFIED)
    submit(world, e, 0, NOW - 12 * DAY, 1.0)
    f = learner(world.cohort, "f@test.org", EnrolmentStatus.COMPLETED)
    enrolment(f).completed_at = NOW - 7 * DAY
    db.session.commit()
    submit(world, f, 0, NOW - 12 * DAY, 9.0)
    submit(world, f, 1, NOW - 6 * DAY, None)
    return Learners(a, b, c, d, e, f)


def states(people: Learners) -> dict[str, tuple[EnrolmentStatus, datetime | None]]:
    return {
        name: (enrolment(u).status, enrolment(u).completed_at) for name, u in vars(people).items()
    }


def test_the_rule_on_a_hand_computed_cohort(world: World, learners: Learners) -> None:
    # Only the learners asked for are looked at.
    assert completion.refresh(world.cohort.id, [learners.b.id, learners.c.id]) == 0
    assert enrolment(learners.a).status == EnrolmentStatus.ENROLLED

    assert completion.refresh(world.cohort.id) == 2  # a completes, f goes back
    assert states(learners) == {
        "a": (EnrolmentStatus.COMPLETED, NOW - 6 * DAY),  # the later passing submission
        "b": (EnrolmentStatus.ENROLLED, None),
        "c": (EnrolmentStatus.ENROLLED, None),
        "d": (EnrolmentStatus.WITHDRAWN, None),
        "e": (EnrolmentStatus.CERTIFIED, None),
        "f": (EnrolmentStatus.ENROLLED, None),
    }
    assert completion.refresh(world.cohort.id) == 0  # nothing changes the second time


def test_an_extension_lifts_the_late_penalty(world: World, learners: Learners) -> None:
    instructor = factories.instructor(world.course)
    deadlines.grant_extension(world.parts[1][2], learners.c, NOW, instructor)
    assert completion.refresh(world.cohort.id, [learners.c.id]) == 1
    c = enrolment(learners.c)
    assert c.status == EnrolmentStatus.COMPLETED
    assert c.completed_at == NOW - 5 * DAY + 36 * HOUR


def test_grading_by_hand_completes_and_a_lowered_grade_reverts(
    world: World, learners: Learners
) -> None:
    instructor = factories.instructor(world.course)
    _, cell, _ = world.parts[1]
    b_second = db.session.scalar(
        sa.select(Submission).where(
            Submission.user_id == learners.b.id,
            Submission.assignment_id == world.parts[1][0].id,
        )
    )
    assert b_second is not None
    grading.grade_by_hand(b_second, cell, instructor, 5.0, "Enough.")
    assert enrolment(learners.b).status == EnrolmentStatus.COMPLETED
    assert enrolment(learners.b).completed_at == NOW - 6 * DAY

    grading.grade_by_hand(b_second, cell, instructor, 4.5, "Regraded: one step was wrong.")
    assert enrolment(learners.b).status == EnrolmentStatus.ENROLLED
    assert enrolment(learners.b).completed_at is None
    # Nobody else was looked at: a is still waiting for a refresh of the whole cohort.
    assert enrolment(learners.a).status == EnrolmentStatus.ENROLLED


def test_cli_refreshes_every_cohort_or_one(
    world: World, learners: Learners, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(args=["lms", "refresh-completions", "--cohort", world.cohort.slug])
    assert result.exit_code == 0, result.output
    assert "2 enrolment(s) changed in 1 cohort(s)." in result.output
    assert enrolment(learners.a).status == EnrolmentStatus.COMPLETED

    factories.cohort(world.program, "Autumn", courses=[world.course])
    result = runner.invoke(args=["lms", "refresh-completions"])
    assert result.exit_code == 0, result.output
    assert "0 enrolment(s) changed in 2 cohort(s)." in result.output

    result = runner.invoke(args=["lms", "refresh-completions", "--cohort", "nope"])
    assert result.exit_code == 1 and "No cohort with slug 'nope'" in result.output


# --- Progress toward the target -----------------------------------------------------------


def completions(world: World, moments: list[datetime], status: EnrolmentStatus) -> None:
    start = db.session.scalar(sa.select(sa.func.count(User.id))) or 0
    for n, moment in enumerate(moments):
        user = learner(world.cohort, f"done{start + n}@test.org", status)
        enrolment(user).completed_at = moment
    db.session.commit()


@pytest.fixture
def finishers(world: World) -> World:
    """3 completions 9 weeks ago (outside the rate's window), 12 in the last 4 weeks (10
    completed, 2 certified): 15 of 30, 1.5 a week. Enrolled and withdrawn ones do not count."""
    completions(world, [NOW - 9 * WEEK] * 3, EnrolmentStatus.COMPLETED)
    recent = [NOW - (n % 4 + 1) * WEEK for n in range(12)]
    completions(world, recent[:10], EnrolmentStatus.COMPLETED)
    completions(world, recent[10:], EnrolmentStatus.CERTIFIED)
    learner(world.cohort, "enrolled@test.org")
    learner(world.cohort, "left@test.org", EnrolmentStatus.WITHDRAWN)
    return world


def test_forecast_at_the_trailing_rate(finishers: World) -> None:
    program = finishers.program
    program.target_date = (NOW + 20 * WEEK).date()
    db.session.commit()
    f = progress.forecast(program, now=NOW)
    assert progress.RATE_WEEKS == 8
    assert (f.target, f.completed, f.remaining) == (30, 15, 15)
    assert f.rate_per_week == 1.5
    assert f.forecast_date == (NOW + 10 * WEEK).date()  # 15 remaining / 1.5 a week
    assert f.weekly_needed == pytest.approx(0.75)  # 15 remaining / 20 weeks left
    assert f.on_track and not f.reached

    program.target_date = (NOW + 5 * WEEK).date()
    db.session.commit()
    late = progress.forecast(program, now=NOW)
    assert late.weekly_needed == pytest.approx(3.0)
    assert not late.on_track


def test_forecast_reached_and_stalled(finishers: World) -> None:
    program = finishers.program
    program.target_learners = 12
    db.session.commit()
    reached = progress.forecast(program, now=NOW)
    assert reached.reached and reached.on_track
    assert reached.forecast_date is None and reached.weekly_needed == 0.0

    program.target_learners = 30
    db.session.commit()
    stalled = progress.forecast(program, now=NOW + 20 * WEEK)  # nothing in the last 8 weeks
    assert stalled.rate_per_week == 0.0 and stalled.forecast_date is None
    assert not stalled.on_track and not stalled.reached


def test_completions_by_week_is_cumulative_without_gaps(finishers: World) -> None:
    monday = date(2026, 2, 23)  # the week of NOW - 9 weeks
    expected = [3, 3, 3, 3, 3, 6, 9, 12, 15]
    assert progress.completions_by_week(finishers.program.id) == [
        (monday + n * WEEK, total) for n, total in enumerate(expected)
    ]
    assert progress.completions_by_week(finishers.program.id + 1) == []


def test_active_learners_in_the_window(app: Flask, world: World) -> None:
    for email, status, days_ago in (
        ("now@test.org", EnrolmentStatus.ENROLLED, 3),
        ("done@test.org", EnrolmentStatus.COMPLETED, 13),
        ("stale@test.org", EnrolmentStatus.ENROLLED, 15),
        ("left@test.org", EnrolmentStatus.WITHDRAWN, 1),
        ("certified@test.org", EnrolmentStatus.CERTIFIED, 1),
    ):
        user = learner(world.cohort, email, status)
        submit(world, user, 0, NOW - days_ago * DAY, 5.0)
        submit(world, user, 1, NOW - 40 * DAY, 5.0)
    learner(world.cohort, "idle@test.org")
    program_id = world.program.id

    def funnel() -> progress.Funnel:
        [cohort], [organisation] = progress.breakdowns(program_id, "none", now=NOW)
        assert organisation == progress.Funnel("none", *astuple(cohort)[1:7])
        return cohort

    # now (3 days) and done (13 days) are active; stale and idle are stalled; certified and
    # withdrawn learners are neither.
    assert (funnel().active, funnel().stalled) == (2, 2)
    assert (funnel().enrolled, funnel().completed, funnel().certified) == (5, 2, 1)
    assert funnel().withdrawn == 1
    app.config["ACTIVE_DAYS"] = 30
    assert (funnel().active, funnel().stalled) == (3, 1)
    app.config["ACTIVE_DAYS"] = 5
    assert (funnel().active, funnel().stalled) == (1, 2)  # done is completed, not stalled


def test_passing_is_reaching_the_pass_mark_with_the_final_score() -> None:
    """The one rule completions, gradebooks, dashboards and reports all ask."""
    assignment = Assignment(points=10, pass_mark=6)
    assert assignment.passed_by(6.0) and assignment.passed_by(10.0)
    assert not assignment.passed_by(5.99)
    assert not assignment.passed_by(None)  # nothing graded yet

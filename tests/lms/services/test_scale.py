"""seed-scale: a national program of realistic shape, in bulk, once (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from lms.extensions import db
from lms.models import (
    Assignment,
    Cohort,
    CohortAssignment,
    Course,
    Enrolment,
    EnrolmentStatus,
    Grade,
    Program,
    Submission,
    User,
)
from lms.services import completion, scale, users

LEARNERS = 300
ASSIGNMENTS = 6


def count(query: sa.Select[tuple[int]]) -> int:
    return int(db.session.scalar(query) or 0)


def table_counts() -> dict[str, int]:
    return {
        model.__tablename__: count(sa.select(sa.func.count()).select_from(model))
        for model in (User, Program, Cohort, Course, Assignment, Enrolment, Submission, Grade)
    }


def test_seed_makes_what_it_reports(app: Flask) -> None:
    report = scale.seed(LEARNERS, ASSIGNMENTS)

    program = db.session.scalars(sa.select(Program).where(Program.slug == "national-50k")).one()
    assert program.target_learners == 50_000
    assert program.name == "National AI Engineers 50k"
    cohort_ids = [c.id for c in program.cohorts]
    assert len(cohort_ids) == report.cohorts >= 2
    assert report.organisations == 30
    assert count(sa.select(sa.func.count(Course.id)).where(Course.slug.like("scale-course-%"))) == (
        report.courses
    )
    assert count(sa.select(sa.func.count(Assignment.id))) == report.assignments == ASSIGNMENTS
    assert count(sa.select(sa.func.count(CohortAssignment.id))) == report.cohort_assignments
    assert report.cohort_assignments == report.cohorts * ASSIGNMENTS

    learners = sa.select(User.id).where(User.email.like("%@scale.example.org"))
    assert count(sa.select(sa.func.count()).select_from(learners.subquery())) == LEARNERS
    assert report.learners == report.enrolments == LEARNERS
    assert count(sa.select(sa.func.count(Submission.id))) == report.submissions > 0
    assert count(sa.select(sa.func.count(Grade.id))) == report.grades == report.submissions
    assert sum(report.statuses.values()) == LEARNERS

    # Every learner enrolled exactly once, in the program's cohorts.
    per_user = (
        db.session.execute(
            sa.select(Enrolment.user_id, sa.func.count())
            .where(Enrolment.cohort_id.in_(cohort_ids))
            .group_by(Enrolment.user_id)
        )
        .tuples()
        .all()
    )
    assert len(per_user) == LEARNERS
    assert {n for _, n in per_user} == {1}

    # Grades only for existing submissions: one per submission, attempt 1.
    orphans = sa.select(sa.func.count(Grade.id)).where(
        Grade.submission_id.not_in(sa.select(Submission.id))
    )
    assert count(orphans) == 0
    assert count(sa.select(sa.func.count(sa.distinct(Grade.submission_id)))) == report.grades
    assert count(sa.select(sa.func.count(Submission.id)).where(Submission.attempt != 1)) == 0

    # Realistic shape: some of every state, with their dates; imported learners have no password.
    statuses = dict(
        db.session.execute(sa.select(Enrolment.status, sa.func.count()).group_by(Enrolment.status))
        .tuples()
        .all()
    )
    assert {str(s): n for s, n in statuses.items()} == {
        s: n for s, n in report.statuses.items() if n
    }
    for status in EnrolmentStatus:
        assert statuses.get(status, 0) > 0, status
    missing_dates = sa.select(sa.func.count(Enrolment.id)).where(
        sa.or_(
            sa.and_(
                Enrolment.status.in_([EnrolmentStatus.COMPLETED, EnrolmentStatus.CERTIFIED]),
                Enrolment.completed_at.is_(None),
            ),
            sa.and_(
                Enrolment.status == EnrolmentStatus.CERTIFIED, Enrolment.certified_at.is_(None)
            ),
            sa.and_(
                Enrolment.status == EnrolmentStatus.WITHDRAWN, Enrolment.withdrawn_at.is_(None)
            ),
        )
    )
    assert count(missing_dates) == 0
    assert count(sa.select(sa.func.count(User.id)).where(User.password_hash.is_not(None))) == 0
    scores = db.session.execute(sa.select(Grade.auto_score, Grade.status)).tuples().all()
    assert all(s is not None and 0 <= s <= 10 for s, _ in scores)
    assert all(
        status == ("passed" if s is not None and s >= 6 else "failed") for s, status in scores
    )

    # Formula-injection cases for later exports: about 1% of the names.
    risky = db.session.scalars(
        sa.select(User.name).where(
            sa.or_(*(User.name.startswith(c, autoescape=True) for c in "=+-@"))
        )
    ).all()
    assert len(risky) == LEARNERS // 100

    # The data agrees with the completion rule: refreshing it changes nothing.
    for cohort_id in cohort_ids:
        assert completion.refresh(cohort_id) == 0

    # Ids handed out later (PostgreSQL sequences) come after the seeded ones.
    users.create_user("after-seed@example.org", "After Seed")


def test_recent_cohorts_reached_fewer_assignments(app: Flask) -> None:
    scale.seed(LEARNERS, ASSIGNMENTS)
    per_cohort = (
        db.session.execute(
            sa.select(Cohort.starts_on, sa.func.count(Submission.id))
            .join(Submission, Submission.cohort_id == Cohort.id)
            .group_by(Cohort.id, Cohort.starts_on)
            .order_by(Cohort.starts_on)
        )
        .tuples()
        .all()
    )
    sizes = dict(
        db.session.execute(
            sa.select(Cohort.starts_on, sa.func.count(Enrolment.id))
            .join(Enrolment)
            .group_by(Cohort.id, Cohort.starts_on)
        )
        .tuples()
        .all()
    )
    per_learner = [n / sizes[starts] for starts, n in per_cohort]
    assert per_learner[0] > ASSIGNMENTS / 2
    newest = max(sizes)
    newest_subs = dict(per_cohort).get(newest, 0)
    assert newest_subs / sizes[newest] < per_learner[0]


def test_second_run_refuses_and_changes_nothing(app: Flask) -> None:
    scale.seed(50, 3)
    before = table_counts()
    with pytest.raises(scale.ScaleExists, match="already there"):
        scale.seed(50, 3)
    assert table_counts() == before


def test_cli_seeds_once(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["lms", "seed-scale", "--learners", "120", "--assignments", "4"])
    assert result.exit_code == 0, result.output
    assert "Created program national-50k" in result.output
    assert "120 users, 120 enrolments" in result.output
    submissions = count(sa.select(sa.func.count(Submission.id)))
    assert f"{submissions:,} submissions, {submissions:,} grades" in result.output

    again = runner.invoke(args=["lms", "seed-scale", "--learners", "120", "--assignments", "4"])
    assert again.exit_code == 0, again.output
    assert "already there" in again.output
    assert count(sa.select(sa.func.count(Submission.id))) == submissions


def test_cli_rejects_zero(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["lms", "seed-scale", "--learners", "0"])
    assert result.exit_code != 0
    assert count(sa.select(sa.func.count(Program.id))) == 0

"""One world with a row of every kind a URL of the app names, for walking every route as every
role (tests/lms/views/test_route_roles.py).

Two sides: what the signed-in roles own or govern (program, cohort, course with an assignment,
the learner's own submission, certificate and lab...) and someone else's (another program with
its cohort and course, a classmate's submission and certificate, a stranger's export). Built
through the services where they exist; nothing is graded for real: the one finished grading
(for the feedback pages) and the export files are written as the worker would leave them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentNotebook,
    CellKind,
    Enrolment,
    EnrolmentStatus,
    ExportJob,
    ExportState,
    GradedCell,
    GradingBatch,
    GradingJob,
    JobKind,
    JobState,
    Submission,
    User,
    utcnow,
)
from lms.services import accounts, api_tokens, certificates, grading, programs, submissions
from lms.storage import blobs
from tests import factories, grading_world
from tests.grading_world import RIGHT, WRONG

ROLES = ("anonymous", "learner", "instructor", "coordinator", "admin")

# What a URL argument names, by the argument's name...
PARAM_KINDS = {
    "cohort_slug": "cohort",
    "course_slug": "course",
    "assignment_slug": "assignment",
    "assignment_id": "assignment_id",
    "submission_id": "submission",
    "sub_a": "submission",
    "sub_b": "submission_b",
    "batch_id": "batch",
    "job_id": "job",
    "grant_id": "grant",
    "user_id": "user",
    "code": "code",
    "owner": "owner",
    "cell_id": "cell",
    "grade_id": "grade_id",
    "notebook": "notebook",
    "file_name": "file",
    "rest": "rest",
    "token": "token",
    "invitation_id": "invitation",
    "enrolment_id": "enrolment",
}
# ...and a bare <slug> by the path segment before it.
SLUG_KINDS = {"programs": "program", "cohorts": "cohort", "courses": "course"}

Args = dict[str, str]


@dataclass
class RouteWorld:
    """Per role: the URL arguments naming what it owns or governs, and someone else's."""

    mine: dict[str, Args]
    theirs: dict[str, Args]
    tokens: dict[str, str]  # role -> API token of its user
    emails: dict[str, str]  # signed-in role -> email


def build(courses_dir: Path) -> RouteWorld:
    world = grading_world.build(courses_dir)
    assignment, cohort = world.assignment, world.cohort
    course, program = assignment.course, cohort.program
    learner, classmate = world.learners
    instructor = world.instructor
    coordinator = factories.coordinator(program)
    admin = factories.admin()
    # Grants only there to be revoked by the admin's walk of the revoke route.
    spare = factories.instructor(course, "spare-instructor@test.org")
    other_spare = factories.instructor(course, "other-spare-instructor@test.org")

    own = submissions.submit(learner, assignment, cohort, [grading_world.answer(assignment, RIGHT)])
    peer = submissions.submit(
        classmate, assignment, cohort, [grading_world.answer(assignment, WRONG)]
    )
    _finished_grading(own.submission, Path(grading_world.NOTEBOOK).stem)
    grading.release_feedback(world.scheduled)
    batch = grading.create_batch(assignment, instructor)  # queued only: no worker runs here
    manual = _cell(assignment, CellKind.MANUAL)
    certificate = _certificate(learner, cohort.id)

    # Someone else's: a program, cohort and course outside every grant above. The classmate is
    # enrolled there too: their submission, certificate and lab are nobody else's to see.
    other_program = factories.program("Elsewhere Academy", 50)
    other_course = factories.course("elsewhere-course", "Elsewhere course")
    other_assignment = _assignment(other_course.id, "elsewhere-work")
    other_cohort = factories.cohort(other_program, "Elsewhere", courses=[other_course])
    programs.enrol(classmate, other_cohort)
    other_submission = Submission(
        user_id=classmate.id,
        assignment_id=other_assignment.id,
        cohort_id=other_cohort.id,
        attempt=1,
        version=1,
        files={},
        content_hash="elsewhere",
    )
    other_batch = GradingBatch(assignment_id=other_assignment.id, scope="all", total=1)
    db.session.add_all([other_submission, other_batch])
    db.session.commit()
    _finished_grading(other_submission, other_assignment.slug)
    other_certificate = _certificate(classmate, other_cohort.id)
    stranger = factories.coordinator(other_program, "elsewhere-coordinator@test.org")
    other_cell = _cell(other_assignment, CellKind.MANUAL)

    users = {
        "learner": learner,
        "instructor": instructor,
        "coordinator": coordinator,
        "admin": admin,
    }
    jobs = {
        "instructor": _export(instructor, "course", course.id),
        "coordinator": _export(coordinator, "program", program.id),
        "admin": _export(admin, "program", program.id),
    }
    base: Args = {
        "program": program.slug,
        "cohort": cohort.slug,
        "course": course.slug,
        "assignment": assignment.slug,
        "assignment_id": str(assignment.id),
        "submission": str(own.submission.id),
        "submission_b": str(peer.submission.id),
        "batch": str(batch.id),
        "job": jobs["coordinator"],
        "grant": str(spare.grants[0].id),
        "user": str(learner.id),
        "code": certificate,
        "owner": str(learner.id),
        "cell": str(manual.id),
        "grade_id": manual.grade_id,
        "notebook": Path(grading_world.NOTEBOOK).stem,
        "file": grading_world.NOTEBOOK,
        "rest": "tree",
        "token": "not-a-real-token",
        "invitation": str(accounts.start_batch(cohort, admin, enqueue=False).id),
        "enrolment": str(programs.enrol(factories.user("spare-learner@test.org"), cohort).id),
    }
    elsewhere: Args = {
        "program": other_program.slug,
        "cohort": other_cohort.slug,
        "course": other_course.slug,
        "assignment": other_assignment.slug,
        "assignment_id": str(other_assignment.id),
        "submission": str(other_submission.id),
        "submission_b": str(other_submission.id),
        "batch": str(other_batch.id),
        "job": _export(stranger, "program", other_program.id),
        "grant": str(other_spare.grants[0].id),
        "user": str(classmate.id),
        "code": other_certificate,
        "owner": str(classmate.id),
        "cell": str(other_cell.id),
        "grade_id": other_cell.grade_id,
        "notebook": other_assignment.slug,
        "file": f"{other_assignment.slug}.ipynb",
        "rest": "tree",
        "token": "not-a-real-token",
        "invitation": str(accounts.start_batch(other_cohort, stranger, enqueue=False).id),
        "enrolment": str(
            programs.enrol(factories.user("other-spare-learner@test.org"), other_cohort).id
        ),
    }
    mine = {"anonymous": dict(base)}
    theirs = {"anonymous": dict(elsewhere)}
    for role, user in users.items():
        mine[role] = {**base, "owner": str(user.id), "job": jobs.get(role, base["job"])}
        theirs[role] = dict(elsewhere)
    # A learner's "someone else's submission" is a classmate's, of the same assignment.
    theirs["learner"]["submission"] = str(peer.submission.id)
    return RouteWorld(
        mine=mine,
        theirs=theirs,
        tokens={role: api_tokens.create(user, "routes") for role, user in users.items()},
        emails={role: user.email for role, user in users.items()},
    )


def _finished_grading(submission: Submission, notebook: str) -> None:
    """A done autograding with the notebook's feedback page, as the worker leaves one."""
    page = blobs.put(b"<html><body><p>Feedback</p></body></html>")
    now = utcnow()
    db.session.add(
        GradingJob(
            submission_id=submission.id,
            kind=JobKind.BATCH,
            state=JobState.DONE,
            started_at=now - timedelta(seconds=5),
            finished_at=now,
            result={"notebooks": {}},
            feedback={notebook: page},
        )
    )
    db.session.commit()


def _cell(assignment: Assignment, kind: CellKind) -> GradedCell:
    found = db.session.scalar(
        sa.select(GradedCell)
        .join(AssignmentNotebook, AssignmentNotebook.id == GradedCell.notebook_id)
        .where(AssignmentNotebook.assignment_id == assignment.id, GradedCell.kind == kind)
    )
    assert found is not None
    return found


def _assignment(course_id: int, slug: str) -> Assignment:
    assignment = Assignment(
        course_id=course_id,
        slug=slug,
        title=slug.title(),
        points=1.0,
        pass_mark=0.5,
        content_hash=slug,
    )
    notebook = AssignmentNotebook(name=slug)
    notebook.cells.append(GradedCell(grade_id="answer", points=1.0, kind=CellKind.MANUAL))
    assignment.notebooks.append(notebook)
    db.session.add(assignment)
    db.session.commit()
    return assignment


def _certificate(user: User, cohort_id: int) -> str:
    """The learner completes the cohort and gets a certificate; its verification code."""
    enrolment = db.session.scalar(
        sa.select(Enrolment).where(Enrolment.user_id == user.id, Enrolment.cohort_id == cohort_id)
    )
    assert enrolment is not None
    enrolment.status = EnrolmentStatus.COMPLETED
    enrolment.completed_at = utcnow()
    db.session.commit()
    [issued] = certificates.issue([enrolment], None)
    return issued.code


def _export(user: User, scope: str, scope_id: int) -> str:
    """A finished export of the user's, its file on disk; its id."""
    job = ExportJob(requested_by_id=user.id, scope=scope, scope_id=scope_id, format="csv")
    db.session.add(job)
    db.session.commit()
    relative = f"exports/routes-{job.id}.csv"
    path = Path(current_app.config["DATA_DIR"]) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("email,name\n")
    job.state = ExportState.DONE
    job.done = job.total = 1
    job.path = relative
    job.file_name = f"routes-{job.id}.csv"
    job.finished_at = utcnow()
    db.session.commit()
    return str(job.id)


CONVERTER = re.compile(r"<(?:[^:<>]+:)?(\w+)>")


def fill(rule: str, args: Args) -> str:
    """The rule's path with each <argument> replaced by the world's value of its kind; a
    KeyError names an argument this module has no value for (a new kind of route)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        kind = PARAM_KINDS.get(name)
        if name == "slug":
            kind = SLUG_KINDS.get(rule[: match.start()].rstrip("/").rsplit("/", 1)[-1])
        if kind is None or kind not in args:
            raise KeyError(f"no value for <{name}> of {rule}: add one to tests/route_world.py")
        return args[kind]

    return CONVERTER.sub(value, rule)

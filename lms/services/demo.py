"""Demo data for `make run`: two programs, three cohorts, a few hundred learners, a user per role.

Loaded once: a second run finds the demo programs and changes nothing.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from lms.extensions import db
from lms.models import (
    CellKind,
    Cohort,
    CohortAssignment,
    Course,
    Enrolment,
    EnrolmentStatus,
    Grade,
    GradeEvent,
    GradeSource,
    Organisation,
    OrganisationKind,
    Program,
    Role,
    Submission,
    User,
    utcnow,
)
from lms.services import catalog, learner_import, programs, users
from lms.services.submissions import content_hash_of
from lms.storage import storage

DEMO_PASSWORD = "demo-password"
DEMO_USERS = {
    "admin": "admin@example.org",
    "coordinator": "coordinator@example.org",
    "instructor": "instructor@example.org",
    "learner": "learner@example.org",
}
# Imported without a password, and invited: the demo of an invitation (its mail lands in
# instance/mail/ under `make run`).
DEMO_NEWCOMER = "newcomer@example.org"

ORGANISATIONS = [
    ("Gwangju Metropolitan City", OrganisationKind.CITY),
    ("Chonnam Institute of Technology", OrganisationKind.UNIVERSITY),
    ("Mokpo Offshore Wind Co.", OrganisationKind.COMPANY),
    ("Honam Smart Factory Alliance", OrganisationKind.COMPANY),
    ("Da Nang Digital Hub", OrganisationKind.CITY),
    ("Hanoi Polytechnic School", OrganisationKind.SCHOOL),
]

# Slugs equal the course folders under courses/.
COURSES = [
    ("python-numpy-for-ai", "Python and NumPy for AI"),
    ("data-prep-classical-ml", "Data preparation and classical ML"),
    ("forecasting-energy-mobility", "Forecasting for energy and urban mobility"),
    ("deep-learning-pytorch", "Deep learning with PyTorch"),
]

FAMILY_NAMES = ["Kim", "Lee", "Park", "Choi", "Jung", "Nguyen", "Tran", "Le", "Pham", "Hoang"]
GIVEN_NAMES = ["Minji", "Jiwoo", "Seojun", "Hana", "Dohyun", "An", "Binh", "Chi", "Duc", "Linh"]


def load(courses_dir: Path | None = None) -> bool:
    """Load the demo data; False when it was all there already.

    With courses_dir, the course catalogue is synced first, so the demo cohorts take the real
    track and get its assignment dates. Every step finds what an earlier (perhaps interrupted)
    run made before creating anything, so running it again completes a partial load and
    otherwise changes nothing.
    """
    if courses_dir is not None:
        catalog.sync(courses_dir)
    if users.find_by_email(DEMO_USERS["learner"]) is not None:
        return False
    today = date.today()
    orgs = [_organisation(name, kind) for name, kind in ORGANISATIONS]
    courses = [_course(slug, title) for slug, title in COURSES]
    gwangju = _program(
        "Gwangju AI School",
        1200,
        date(today.year + 1, 12, 31),
        "The city's AI engineering school: vertical AI for healthcare, energy, manufacturing "
        "and mobility.",
    )
    national = _program(
        "National AI Engineers",
        50000,
        date(today.year + 4, 12, 31),
        "The national strategy's program to train AI engineers across regions.",
    )
    spring = _cohort(gwangju, "Spring", today - timedelta(days=200), 180, orgs[0], courses)
    autumn = _cohort(gwangju, "Autumn", today - timedelta(days=40), 180, orgs[0], courses)
    pilot = _cohort(national, "Pilot", today - timedelta(days=60), 180, orgs[4], courses[:2])

    rng = random.Random(2026)
    first_number = 1
    for cohort, size in ((spring, 140), (autumn, 120), (pilot, 90)):
        learner_import.import_learners(cohort, _learner_csv(rng, first_number, size, orgs))
        first_number += size
    _finish_spring(spring, rng)

    admin = _user(DEMO_USERS["admin"], "Ada Admin")
    users.grant_role(admin, Role.ADMIN)
    coordinator = _user(DEMO_USERS["coordinator"], "Cho Coordinator")
    users.grant_role(coordinator, Role.COORDINATOR, program=gwangju)
    instructor = _user(DEMO_USERS["instructor"], "Ivan Instructor")
    for course in courses[:2]:
        users.grant_role(instructor, Role.INSTRUCTOR, course=course)
    learner = _user(DEMO_USERS["learner"], "Linh Learner", organisation=orgs[1])
    programs.enrol(learner, autumn)
    learner_import.import_learners(autumn, f"email,name\n{DEMO_NEWCOMER},Nam Newcomer\n".encode())
    return True


def invite_newcomer() -> bool:
    """Mail the demo newcomer their invitation, once; False when it was sent before."""
    from lms.services import accounts

    newcomer = users.find_by_email(DEMO_NEWCOMER)
    if newcomer is None or accounts.states([newcomer.id])[newcomer.id].state != "not-invited":
        return False
    accounts.invite_now(newcomer, None)
    return True


def _organisation(name: str, kind: OrganisationKind) -> Organisation:
    found = db.session.scalar(sa.select(Organisation).where(Organisation.name == name))
    return found or programs.create_organisation(name, kind)


def _course(slug: str, title: str) -> Course:
    found = db.session.scalar(sa.select(Course).where(Course.slug == slug))
    return found or programs.create_course(slug, title)


def _program(name: str, target: int, target_date: date, description: str) -> Program:
    found = db.session.scalar(sa.select(Program).where(Program.name == name))
    return found or programs.create_program(name, target, target_date, description=description)


def _cohort(
    program: Program,
    name: str,
    starts_on: date,
    days: int,
    organisation: Organisation,
    courses: list[Course],
) -> Cohort:
    slug = programs.slugify(f"{program.slug}-{name}")
    found = db.session.scalar(sa.select(Cohort).where(Cohort.slug == slug))
    return found or programs.create_cohort(
        program,
        name,
        starts_on,
        starts_on + timedelta(days=days),
        slug=slug,
        organisation=organisation,
        courses=courses,
    )


def _user(email: str, name: str, organisation: Organisation | None = None) -> User:
    found = users.find_by_email(email)
    return found or users.create_user(email, name, DEMO_PASSWORD, organisation=organisation)


def _learner_csv(rng: random.Random, first: int, count: int, orgs: list[Organisation]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)  # every text field quoted
    writer.writerow(["email", "name", "organisation"])
    for n in range(first, first + count):
        name = f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}"
        writer.writerow([f"learner{n:04d}@demo.example.org", name, rng.choice(orgs).name])
    return out.getvalue().encode()


def _finish_spring(cohort: Cohort, rng: random.Random) -> None:
    """The spring cohort has ended and a few withdrew. Who completed follows from their work
    (load_spring_work), by the completion rule, as it would for real learners."""
    enrolments = db.session.scalars(
        sa.select(Enrolment)
        .where(Enrolment.cohort_id == cohort.id, Enrolment.status == EnrolmentStatus.ENROLLED)
        .order_by(Enrolment.id)
    ).all()
    now = utcnow()
    for enrolment in enrolments:
        if rng.random() > 0.95:
            enrolment.status = EnrolmentStatus.WITHDRAWN
            enrolment.withdrawn_at = now - timedelta(days=rng.randint(60, 150))
    db.session.commit()


SPRING = "gwangju-ai-school-spring"
SPRING_FINISHERS = 0.78  # of those who stayed: passed every assignment
SPRING_CERTIFIED = 0.7  # of the finishers: already hold their certificate


def load_spring_work(courses_dir: Path) -> int:
    """The ended spring cohort's work: finishers handed in a right notebook for every
    assignment before it was due, the others stopped part of the way. Grades are recorded
    with full events (autograded cells as the autograder, written answers by the demo
    instructor), then the completion rule decides who completed and most finishers get
    their certificate. Returns how many submissions were added (0 when they are there).

    The notebooks are real (made from each assignment's source and release, stored once per
    assignment); their grades are not run through the autograder here, which would take
    minutes at every first `make run`: a right notebook scores full marks (check-courses
    proves it for every assignment)."""
    from autograder.variants import learner_notebook
    from lms.queries import gradebook
    from lms.services import certificates, completion, releases
    from lms.storage import blobs

    cohort = db.session.scalar(sa.select(Cohort).where(Cohort.slug == SPRING))
    instructor = users.find_by_email(DEMO_USERS["instructor"])
    coordinator = users.find_by_email(DEMO_USERS["coordinator"])
    if cohort is None or instructor is None:
        return 0
    if db.session.scalar(sa.select(Submission.id).where(Submission.cohort_id == cohort.id)):
        return 0
    assignments = gradebook.required_assignments(cohort.id)
    schedule = {
        ca.assignment_id: ca
        for ca in db.session.scalars(
            sa.select(CohortAssignment).where(CohortAssignment.cohort_id == cohort.id)
        )
    }
    work = []
    for assignment in assignments:
        if assignment.id not in schedule:
            continue
        release = releases.release(assignment)
        source = courses_dir / assignment.course.slug / assignment.slug
        files = {
            path.name: learner_notebook(
                "right", path, storage().read(f"{release.path}/{path.name}")
            )
            for path in sorted(source.glob("*.ipynb"))
        }
        digests = {name: blobs.put(data) for name, data in files.items()}
        cells = [cell for notebook in assignment.notebooks for cell in notebook.cells]
        work.append((assignment, digests, content_hash_of(files), cells))

    rng = random.Random(2025)
    enrolments = db.session.scalars(
        sa.select(Enrolment)
        .where(Enrolment.cohort_id == cohort.id, Enrolment.status == EnrolmentStatus.ENROLLED)
        .order_by(Enrolment.id)
    ).all()
    # Some keep pace, others fall behind and catch up before the cohort ends (no late
    # penalty is set): completions spread over the weeks, as the dashboard's chart shows.
    last_due = max((schedule[a.id].due_at for a, *_ in work), default=utcnow())
    slack = max(0.0, (utcnow() - last_due).total_seconds() - 3600)
    added = 0
    for enrolment in enrolments:
        reached = len(work) if rng.random() < SPRING_FINISHERS else rng.randint(0, len(work) - 1)
        behind = 0.0 if rng.random() < 0.4 else rng.uniform(0, slack)
        for n, (assignment, digests, content_hash, cells) in enumerate(work[:reached], 1):
            due_at = schedule[assignment.id].due_at
            submitted_at = due_at - timedelta(hours=rng.randint(2, 96))
            submitted_at += timedelta(seconds=behind * n / len(work))
            submitted_at = min(submitted_at, utcnow() - timedelta(hours=1))
            submission = Submission(
                user_id=enrolment.user_id,
                assignment_id=assignment.id,
                cohort_id=cohort.id,
                attempt=1,
                submitted_at=submitted_at,
                version=assignment.version,
                files=digests,
                content_hash=content_hash,
                due_at=due_at,
                late_seconds=max(0, int((submitted_at - due_at).total_seconds())),
                via="demo",
            )
            db.session.add(submission)
            for cell in cells:
                manual = cell.kind == CellKind.MANUAL
                grade = Grade(
                    submission=submission,
                    cell_id=cell.id,
                    max_score=cell.points,
                    auto_score=None if manual else cell.points,
                    manual_score=cell.points if manual else None,
                    status="needs_grading" if manual else "passed",
                    updated_at=submission.submitted_at + timedelta(hours=1),
                )
                db.session.add(grade)
                grade.events.append(
                    GradeEvent(
                        source=GradeSource.MANUAL if manual else GradeSource.AUTOGRADE,
                        actor_id=instructor.id if manual else None,
                        created_at=grade.updated_at,
                        new_score=cell.points,
                        reason="demo data",
                    )
                )
            added += 1
    db.session.commit()
    completion.refresh(cohort.id)
    finished = db.session.scalars(
        sa.select(Enrolment)
        .where(Enrolment.cohort_id == cohort.id, Enrolment.status == EnrolmentStatus.COMPLETED)
        .order_by(Enrolment.id)
    ).all()
    certificates.issue([e for e in finished if rng.random() < SPRING_CERTIFIED], actor=coordinator)
    return added


# The assignment that demo learners have submitted, so an instructor's batch shows real progress.
DEMO_SUBMITTED = ("python-numpy-for-ai", "vital-signs-arrays")
DEMO_SUBMITTERS = 36
KINDS = ("right", "partly", "wrong", "crashing")


def load_submissions(courses_dir: Path) -> int:
    """Demo learners of the autumn cohort submit the first assignment: right, partly right,
    wrong and crashing notebooks, made from the real source and release. Returns how many
    were added (0 when they are there already). Grading them is the instructor's batch."""
    from autograder.variants import learner_notebook
    from lms.services import releases, submissions

    course = db.session.scalar(sa.select(Course).where(Course.slug == DEMO_SUBMITTED[0]))
    cohort = db.session.scalar(sa.select(Cohort).where(Cohort.slug == "gwangju-ai-school-autumn"))
    if course is None or cohort is None:
        return 0
    assignment = next((a for a in course.assignments if a.slug == DEMO_SUBMITTED[1]), None)
    if assignment is None:
        return 0
    if db.session.scalar(
        sa.select(Submission.id).where(
            Submission.assignment_id == assignment.id, Submission.cohort_id == cohort.id
        )
    ):
        return 0
    release = releases.release(assignment)
    source = courses_dir / course.slug / assignment.slug
    learners = db.session.scalars(
        sa.select(User)
        .join(Enrolment, Enrolment.user_id == User.id)
        .where(Enrolment.cohort_id == cohort.id, User.email.like("%@demo.example.org"))
        .order_by(User.id)
        .limit(DEMO_SUBMITTERS)
    ).all()
    now = utcnow()
    for n, learner in enumerate(learners):
        uploads = [
            submissions.Upload(
                path.name,
                learner_notebook(
                    KINDS[n % 4], path, storage().read(f"{release.path}/{path.name}"), n
                ),
            )
            for path in sorted(source.glob("*.ipynb"))
        ]
        submissions.submit(
            learner,
            assignment,
            cohort,
            uploads,
            via="demo",
            now=now - timedelta(hours=len(learners) - n),
        )
    return len(learners)

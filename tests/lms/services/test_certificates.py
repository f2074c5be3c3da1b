"""Certificates: issuing to completed learners with their frozen scores, the PDF, the public
verification page (which states what the certificate states and nothing else), revoking, and
who may do what."""

from __future__ import annotations

import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string
from flask.testing import FlaskClient, FlaskCliRunner

from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentNotebook,
    CellKind,
    Certificate,
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
from lms.reporting import certificate_pdf, pdf_fonts
from lms.services import ServiceError, certificates, programs
from tests import factories
from tests.conftest import Auth, csrf_token

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")
VIETNAMESE = "Nguyễn Thị Ánh Dương"


# --- A small hand-computed cohort ---------------------------------------------------------


def make_assignment(
    course: Course, slug: str, points: float, position: int, active: bool = True
) -> Assignment:
    assignment = Assignment(
        course_id=course.id,
        slug=slug,
        title=slug.title(),
        position=position,
        points=points,
        pass_mark=points / 2,
        content_hash=slug,
        active=active,
    )
    notebook = AssignmentNotebook(name=slug)
    notebook.cells.append(
        GradedCell(grade_id="answer", points=points, kind=CellKind.MANUAL, position=0)
    )
    assignment.notebooks.append(notebook)
    db.session.add(assignment)
    db.session.commit()
    return assignment


def submit(
    cohort: Cohort,
    user: User,
    assignment: Assignment,
    at: datetime,
    score: float | None,
    attempt: int = 1,
) -> Submission:
    submission = Submission(
        user_id=user.id,
        assignment_id=assignment.id,
        cohort_id=cohort.id,
        attempt=attempt,
        submitted_at=at,
        version=1,
        files={},
        content_hash=f"{user.id}-{assignment.id}-{cohort.id}-{attempt}",
    )
    submission.grades.append(
        Grade(
            cell_id=assignment.notebooks[0].cells[0].id,
            max_score=assignment.points,
            auto_score=score,
            status="graded" if score is not None else "needs_grading",
        )
    )
    db.session.add(submission)
    db.session.commit()
    return submission


def learner(
    cohort: Cohort, email: str, name: str, status: EnrolmentStatus = EnrolmentStatus.ENROLLED
) -> User:
    user = factories.user(email, name=name)
    enrolment = programs.enrol(user, cohort)
    enrolment.status = status
    if status == EnrolmentStatus.COMPLETED:
        enrolment.completed_at = NOW - 2 * DAY
    db.session.commit()
    return user


def enrolment_of(user: User, cohort: Cohort) -> Enrolment:
    found = db.session.scalar(
        sa.select(Enrolment).where(Enrolment.user_id == user.id, Enrolment.cohort_id == cohort.id)
    )
    assert found is not None
    return found


@dataclass
class World:
    program: Program
    cohort: Cohort
    python: Course
    dl: Course
    ana: User  # completed, scores worked out below
    bob: User  # enrolled: not certified
    cat: User  # withdrawn: not certified
    dan: User  # completed without any submission: zero scores


@pytest.fixture
def world(app: Flask) -> World:
    python = factories.course("python-numpy-for-ai", "Python and NumPy for AI")
    dl = factories.course("deep-learning", "Deep learning with PyTorch")
    lab1 = make_assignment(python, "lab-1", 10.0, 0)
    lab2 = make_assignment(python, "lab-2", 10.0, 1)
    retired = make_assignment(python, "retired", 10.0, 2, active=False)
    project = make_assignment(dl, "project", 20.0, 0)
    program = factories.program()
    cohort = factories.cohort(program, "Spring", courses=[python, dl])
    other = factories.cohort(program, "Autumn", courses=[python])
    # lab-2: 10% off per started day late.
    scheduled = db.session.scalar(
        sa.select(CohortAssignment).where(
            CohortAssignment.cohort_id == cohort.id, CohortAssignment.assignment_id == lab2.id
        )
    )
    assert scheduled is not None
    scheduled.opens_at = NOW - 30 * DAY
    scheduled.due_at = NOW - 10 * DAY
    scheduled.late_penalty_per_day = 10.0
    db.session.commit()

    ana = learner(cohort, "ana@test.org", VIETNAMESE, EnrolmentStatus.COMPLETED)
    submit(cohort, ana, lab1, NOW - 20 * DAY, 4.0)
    submit(cohort, ana, lab1, NOW - 15 * DAY, 8.0, attempt=2)  # the latest counts: 8
    submit(cohort, ana, lab2, NOW - 10 * DAY + 2 * HOUR, 7.0)  # a day late: 6.3
    submit(cohort, ana, retired, NOW - 10 * DAY, 10.0)  # not an active assignment
    submit(cohort, ana, project, NOW - 3 * DAY, 15.0)
    programs.enrol(ana, other)
    submit(other, ana, lab1, NOW - 3 * DAY, 10.0, attempt=3)  # another cohort's attempt
    bob = learner(cohort, "bob@test.org", "Bob Baker")
    submit(cohort, bob, lab1, NOW - 15 * DAY, 9.0)
    cat = learner(cohort, "cat@test.org", "Cat Cole", EnrolmentStatus.WITHDRAWN)
    dan = learner(cohort, "dan@test.org", "Dan Dare", EnrolmentStatus.COMPLETED)
    return World(program, cohort, python, dl, ana, bob, cat, dan)


ANA_COURSES = [
    # Cohort courses in their order (by title).
    {"title": "Deep learning with PyTorch", "score": 15.0, "max_score": 20.0},
    {"title": "Python and NumPy for AI", "score": 14.3, "max_score": 20.0},
]


def certificate_of(user: User, cohort: Cohort) -> Certificate:
    found = db.session.scalar(
        sa.select(Certificate).where(Certificate.enrolment_id == enrolment_of(user, cohort).id)
    )
    assert found is not None
    return found


# --- Issuing ------------------------------------------------------------------------------


def test_issue_certifies_only_completed_learners_with_their_scores(world: World) -> None:
    admin = factories.admin()
    assert certificates.uncertified_completed_count(world.cohort.id) == 2
    issued = certificates.issue(world.cohort, admin)
    assert sorted(c.learner_name for c in issued) == ["Dan Dare", VIETNAMESE]

    db.session.expire_all()
    ana = certificate_of(world.ana, world.cohort)
    assert CODE.match(ana.code)
    assert ana.program_name == "Gwangju AI School"
    assert ana.cohort_name == "Spring"
    assert ana.completed_on == (NOW - 2 * DAY).date()
    assert ana.issued_by_id == admin.id
    assert ana.revoked_at is None
    assert ana.courses == ANA_COURSES
    dan = certificate_of(world.dan, world.cohort)
    assert dan.courses == [
        {"title": "Deep learning with PyTorch", "score": 0.0, "max_score": 20.0},
        {"title": "Python and NumPy for AI", "score": 0.0, "max_score": 20.0},
    ]
    assert ana.code != dan.code

    statuses = {
        u.name: enrolment_of(u, world.cohort).status
        for u in (world.ana, world.bob, world.cat, world.dan)
    }
    assert statuses == {
        VIETNAMESE: EnrolmentStatus.CERTIFIED,
        "Bob Baker": EnrolmentStatus.ENROLLED,
        "Cat Cole": EnrolmentStatus.WITHDRAWN,
        "Dan Dare": EnrolmentStatus.CERTIFIED,
    }
    assert enrolment_of(world.ana, world.cohort).certified_at is not None
    assert enrolment_of(world.bob, world.cohort).certified_at is None
    assert certificates.uncertified_completed_count(world.cohort.id) == 0


def test_issuing_again_issues_nothing_twice(world: World) -> None:
    first = certificates.issue(world.cohort, None)
    assert len(first) == 2
    assert certificates.issue(world.cohort, None) == []
    assert certificates.issue([enrolment_of(world.ana, world.cohort)], None) == []
    # Bob completes later: only he gets one the next time.
    enrolment = enrolment_of(world.bob, world.cohort)
    enrolment.status = EnrolmentStatus.COMPLETED
    enrolment.completed_at = NOW
    db.session.commit()
    assert certificates.uncertified_completed_count(world.cohort.id) == 1
    [bob] = certificates.issue(world.cohort, None)
    assert bob.learner_name == "Bob Baker" and bob.completed_on == NOW.date()
    assert db.session.scalar(sa.select(sa.func.count(Certificate.id))) == 3


def test_issue_to_chosen_enrolments_skips_the_others(world: World) -> None:
    chosen = [enrolment_of(u, world.cohort) for u in (world.ana, world.bob, world.cat)]
    [issued] = certificates.issue(chosen, None)
    assert issued.learner_name == VIETNAMESE and issued.courses == ANA_COURSES
    assert enrolment_of(world.dan, world.cohort).status == EnrolmentStatus.COMPLETED


def test_the_statement_is_frozen(world: World, client: FlaskClient) -> None:
    certificates.issue(world.cohort, None)
    ana = certificate_of(world.ana, world.cohort)
    code = ana.code
    world.ana.name = "Renamed Learner"
    world.program.name = "Renamed Program"
    world.cohort.name = "Renamed Cohort"
    world.python.title = "Renamed Course"
    for grade in db.session.scalars(sa.select(Grade)):
        grade.manual_score = 0.0
    db.session.commit()
    db.session.expire_all()

    again = certificates.find(code)
    assert again is not None
    assert (again.learner_name, again.program_name, again.cohort_name) == (
        VIETNAMESE,
        "Gwangju AI School",
        "Spring",
    )
    assert again.courses == ANA_COURSES
    html = client.get(f"/verify/{code}").get_data(as_text=True)
    assert VIETNAMESE in html and "Python and NumPy for AI" in html and "14.3 / 20" in html
    assert "Renamed" not in html


def test_codes_are_random_and_found_in_any_spelling(world: World) -> None:
    codes = {certificates.new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(CODE.match(c) for c in codes)
    certificates.issue(world.cohort, None)
    code = certificate_of(world.ana, world.cohort).code
    bare = code.replace("-", "")
    for spelling in (code, code.lower(), bare, bare.lower(), f"  {code[:8]} {code[8:]} "):
        found = certificates.find(spelling)
        assert found is not None and found.code == code, spelling
    # Crockford: O reads as 0, I and L as 1.
    assert certificates.normalise_code("0o1il-00000-11111") == "00111-00000-11111"
    for bad in ("", "ABCDE-ABCDE-ABCD", "ABCDE-ABCDE-ABCDEF", "ABCDE-ABCDE-ABCDU", "x" * 500):
        assert certificates.normalise_code(bad) is None
        assert certificates.find(bad) is None
    assert certificates.find("00000-00000-00000") is None


def test_revoking(world: World, client: FlaskClient) -> None:
    certificates.issue(world.cohort, None)
    ana = certificate_of(world.ana, world.cohort)
    with pytest.raises(ServiceError):
        certificates.revoke(ana, "  ", None)
    certificates.revoke(ana, "Plagiarism found after issue.", factories.admin())
    db.session.expire_all()
    ana = certificate_of(world.ana, world.cohort)
    assert ana.revoked_at is not None and ana.revoked_reason == "Plagiarism found after issue."
    revoked_at = ana.revoked_at
    # No longer counted as certified, and not issued again.
    assert enrolment_of(world.ana, world.cohort).status == EnrolmentStatus.COMPLETED
    assert enrolment_of(world.ana, world.cohort).certified_at is None
    assert certificates.uncertified_completed_count(world.cohort.id) == 0
    assert certificates.issue(world.cohort, None) == []
    certificates.revoke(ana, "again", None)  # revoking twice changes nothing
    assert ana.revoked_at == revoked_at and ana.revoked_reason == "Plagiarism found after issue."

    html = client.get(f"/verify/{ana.code}").get_data(as_text=True)
    assert "Revoked." in html and "no longer valid" in html
    assert revoked_at.strftime("%Y") in html
    assert "Plagiarism" not in html  # the reason is kept, not published
    assert "Valid." not in html


# --- The verification page ----------------------------------------------------------------


def test_verification_page_states_the_certificate_and_nothing_else(
    world: World, client: FlaskClient
) -> None:
    certificates.issue(world.cohort, None)
    ana = certificate_of(world.ana, world.cohort)
    response = client.get(f"/verify/{ana.code}")
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex"
    html = response.get_data(as_text=True)
    for stated in (
        VIETNAMESE,
        "Gwangju AI School",
        "Spring",
        "April 29, 2026",  # completed on
        ana.issued_at.strftime("%B %-d, %Y"),
        "Deep learning with PyTorch",
        "15 / 20",
        "Python and NumPy for AI",
        "14.3 / 20",
        ana.code,
        "Valid.",
    ):
        assert stated in html, stated
    for secret in ("ana@test.org", "@test.org", "Dan Dare", "Bob Baker", "Cat Cole", "Autumn"):
        assert secret not in html, secret
    assert f"/certificates/{ana.code}.pdf" not in html
    assert not re.search(r"/(?:admin|coordinate|learn)/", html)


def test_unknown_codes_get_a_plain_404(world: World, client: FlaskClient) -> None:
    certificates.issue(world.cohort, None)
    for path in ("/verify/00000-00000-00000", "/verify/not-a-code", "/verify?code=nonsense"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["X-Robots-Tag"] == "noindex"
        html = response.get_data(as_text=True)
        assert "No certificate has this code." in html
        assert VIETNAMESE not in html


def test_the_form_leads_to_the_page_of_the_code(world: World, client: FlaskClient) -> None:
    certificates.issue(world.cohort, None)
    code = certificate_of(world.ana, world.cohort).code
    form = client.get("/verify")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert '<label for="code">' in html and 'id="code" name="code"' in html
    assert 'method="get"' in html
    response = client.get("/verify", query_string={"code": code.replace("-", "").lower()})
    assert response.status_code == 302 and response.headers["Location"] == f"/verify/{code}"
    assert client.get(f"/verify/{code.lower()}").status_code == 200


@pytest.fixture
def low_verify_limit(app_config: dict[str, Any]) -> None:
    app_config["VERIFY_LIMIT"] = "3 per minute"


@pytest.mark.usefixtures("low_verify_limit")
def test_verification_is_rate_limited(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        assert client.get("/verify/00000-00000-00000").status_code == 404
    response = client.get("/verify")
    assert response.status_code == 429
    assert response.headers["X-Robots-Tag"] == "noindex"
    other = app.test_client()
    assert other.get("/verify", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


# --- The PDF ------------------------------------------------------------------------------


PDF_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "(": "(", ")": ")"}


def _shown_strings(stream: str) -> Iterator[tuple[str, bytes]]:
    """(font resource, bytes) of each literal string a content stream shows."""
    font, i = "", 0
    while i < len(stream):
        selected = re.match(r"/(F\d+) [\d.]+ Tf", stream[i:])
        if selected:
            font, i = selected.group(1), i + selected.end()
            continue
        if stream[i] == "(":
            chars, i = [], i + 1
            while stream[i] != ")":
                if stream[i] != "\\":
                    chars.append(stream[i])
                    i += 1
                elif stream[i + 1] in PDF_ESCAPES or stream[i + 1] == "\\":
                    chars.append(PDF_ESCAPES.get(stream[i + 1], "\\"))
                    i += 2
                else:
                    octal = re.match(r"[0-7]{1,3}", stream[i + 1 :])
                    assert octal
                    chars.append(chr(int(octal.group(0), 8)))
                    i += 1 + octal.end()
            yield font, "".join(chars).encode("latin1")
        i += 1


def pdf_text(data: bytes) -> str:
    """The text fpdf2 wrote, line by line: two-byte glyph codes read through each font's
    ToUnicode map (enough for our own PDFs; no PDF library needed)."""
    objects = {
        int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj(.*?)endobj", data, re.S)
    }
    to_unicode: dict[int, dict[int, str]] = {}
    for number, body in objects.items():
        ref = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if ref:
            pairs = re.findall(rb"<([0-9A-F]{4})> <([0-9A-F]{4,8})>", objects[int(ref.group(1))])
            to_unicode[number] = {
                int(code, 16): bytes.fromhex(text.decode()).decode("utf-16-be")
                for code, text in pairs
            }
    fonts = {
        name.decode(): to_unicode.get(int(number), {})
        for name, number in re.findall(rb"/(F\d+) (\d+) 0 R", data)
    }
    lines = []
    for number in re.findall(rb"/Contents (\d+) 0 R", data):
        stream = re.search(rb"stream\r?\n(.*)\r?\nendstream", objects[int(number)], re.S)
        assert stream
        for font, raw in _shown_strings(zlib.decompress(stream.group(1)).decode("latin1")):
            glyphs = fonts.get(font, {})
            lines.append(
                "".join(
                    glyphs.get(int.from_bytes(raw[i : i + 2], "big"), "\ufffd")
                    for i in range(0, len(raw), 2)
                )
            )
    return "\n".join(lines)


def test_the_learner_downloads_a_real_pdf(world: World, client: FlaskClient, auth: Auth) -> None:
    certificates.issue(world.cohort, None)
    code = certificate_of(world.ana, world.cohort).code
    auth.login("ana@test.org")
    response = client.get(f"/certificates/{code}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=certificate-{code}.pdf"
    )
    data = response.get_data()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"/FontFile2" in data and b"DejaVuSans" in data  # the Unicode font, embedded
    text = pdf_text(data)
    for stated in (
        VIETNAMESE,
        "Certificate of completion",
        "Gwangju AI School",
        "Cohort Spring, completed on April 29, 2026",
        "Deep learning with PyTorch",
        "15 / 20",
        "Python and NumPy for AI",
        "14.3 / 20",
        f"Verification code: {code}",
        f"http://localhost/verify/{code}",
    ):
        assert stated in text, (stated, text)
    assert "Issued on " in text


@pytest.mark.parametrize("system_font", [True, False])
def test_korean_names_use_a_system_cjk_font_when_there_is_one(
    app: Flask, monkeypatch: pytest.MonkeyPatch, system_font: bool
) -> None:
    if not system_font:
        monkeypatch.setattr(pdf_fonts, "cjk_font", lambda: None)
    certificate = Certificate(
        code="7K3QX-ABCDE-12345",
        learner_name="김민준 (Kim Min-jun)",
        program_name="광주 AI 학교",
        cohort_name="Spring",
        completed_on=date(2026, 5, 1),
        issued_at=NOW,
        courses=[{"title": "딥러닝", "score": 9.5, "max_score": 10.0}],
    )
    with app.test_request_context():
        data = certificate_pdf.render(certificate, "http://localhost/verify/7K3QX-ABCDE-12345")
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    assert "(Kim Min-jun)" in text and "9.5 / 10" in text and "AI" in text
    korean = ("김민준", "광주", "학교", "딥러닝")
    if pdf_fonts.cjk_font() is None:
        # No CJK font here: DejaVu has no Hangul, so those glyphs are left out.
        assert not any(word in text for word in korean)
    else:
        assert all(word in text for word in korean), text


def test_only_the_learner_and_the_programs_staff_get_the_pdf(world: World, app: Flask) -> None:
    certificates.issue(world.cohort, None)
    code = certificate_of(world.ana, world.cohort).code
    factories.coordinator(world.program, "coord@test.org")
    other_program = factories.program("National AI Engineers", 50000)
    factories.coordinator(other_program, "elsewhere@test.org")
    factories.admin("boss@test.org")
    factories.instructor(world.python, "teacher@test.org")
    path = f"/certificates/{code}.pdf"

    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    for email, status in (
        ("ana@test.org", 200),
        ("dan@test.org", 404),  # another learner of the cohort
        ("coord@test.org", 200),
        ("boss@test.org", 200),
        ("elsewhere@test.org", 404),
        ("teacher@test.org", 404),
    ):
        client = app.test_client()
        assert Auth(client).login(email).status_code == 302
        assert client.get(path).status_code == status, email
        assert client.get("/certificates/00000-00000-00000.pdf").status_code == 404

    certificates.revoke(certificate_of(world.ana, world.cohort), "Issued by mistake.", None)
    client = app.test_client()
    Auth(client).login("ana@test.org")
    assert client.get(path).status_code == 404


def test_learner_home_lists_my_certificates(world: World, client: FlaskClient, auth: Auth) -> None:
    auth.login("ana@test.org")
    assert "Your certificates" not in client.get("/learn/").get_data(as_text=True)
    certificates.issue(world.cohort, None)
    code = certificate_of(world.ana, world.cohort).code
    html = client.get("/learn/").get_data(as_text=True)
    assert "Your certificates" in html
    assert f'href="/certificates/{code}.pdf"' in html
    assert f'href="/verify/{code}"' in html
    # Dan's certificate is not on Ana's page.
    dan = certificate_of(world.dan, world.cohort).code
    assert dan not in html


# --- Issuing from the pages and the CLI ----------------------------------------------------


def issue_url(cohort: Cohort) -> str:
    return f"/certificates/cohorts/{cohort.slug}/issue"


def flashes(client: FlaskClient) -> list[str]:
    with client.session_transaction() as session:
        return [message for _, message in session.get("_flashes", [])]


def test_a_coordinator_issues_a_cohorts_certificates(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.coordinator(world.program, "coord@test.org")
    auth.login("coord@test.org")
    token = csrf_token(client, "/coordinate/")
    # The box the form shows (and its number) confirm the act; test_certificate_pages
    # checks the refusals without them.
    response = client.post(
        issue_url(world.cohort),
        data={"csrf_token": token, "next": "/coordinate/?tab=x", "confirm": "y", "expected": "2"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/coordinate/?tab=x"
    assert flashes(client) == ["2 certificates issued."]
    assert certificate_of(world.ana, world.cohort).issued_by_id is not None
    # Again: nothing more; an outside `next` is not followed.
    response = client.post(
        issue_url(world.cohort),
        data={"csrf_token": token, "next": "https://evil.example/", "confirm": "y"},
    )
    assert response.headers["Location"] == f"/coordinate/programs/{world.program.slug}"
    assert flashes(client)[-1] == "No completed learner is waiting for a certificate."
    assert db.session.scalar(sa.select(sa.func.count(Certificate.id))) == 2


def test_issuing_needs_the_form_token(world: World, client: FlaskClient, auth: Auth) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    assert client.post(issue_url(world.cohort)).status_code == 400
    assert client.post(issue_url(world.cohort), data={"csrf_token": "forged"}).status_code == 400
    assert certificates.uncertified_completed_count(world.cohort.id) == 2


def test_who_may_issue(world: World, app: Flask) -> None:
    other_program = factories.program("National AI Engineers", 50000)
    factories.coordinator(other_program, "elsewhere@test.org")
    factories.instructor(world.python, "teacher@test.org")
    for email, home, status in (
        ("elsewhere@test.org", "/coordinate/", 404),
        ("teacher@test.org", "/teach/", 403),
        ("bob@test.org", "/learn/", 403),
    ):
        client = app.test_client()
        Auth(client).login(email)
        token = csrf_token(client, home)
        response = client.post(issue_url(world.cohort), data={"csrf_token": token})
        assert response.status_code == status, email
    anonymous = app.test_client()
    token = csrf_token(anonymous, "/verify")
    response = anonymous.post(issue_url(world.cohort), data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert certificates.uncertified_completed_count(world.cohort.id) == 2

    factories.admin("boss@test.org")
    client = app.test_client()
    Auth(client).login("boss@test.org")
    token = csrf_token(client, "/admin/")
    assert (
        client.post("/certificates/cohorts/no-such-cohort/issue", data={"csrf_token": token})
    ).status_code == 404
    client.post(issue_url(world.cohort), data={"csrf_token": token, "confirm": "y"})
    assert certificates.uncertified_completed_count(world.cohort.id) == 0


def test_the_issue_form_partial(world: World, app: Flask) -> None:
    page = '{% include "certificates/_issue_form.html" %}'
    with app.test_request_context("/coordinate/cohorts/x"):
        html = render_template_string(page, cohort=world.cohort, completed_without_certificate=2)
        assert f'action="{issue_url(world.cohort)}"' in html
        assert 'name="csrf_token"' in html and 'value="/coordinate/cohorts/x?"' in html
        assert "Issue certificates to 2 completed learners" in html and "disabled" not in html
        assert "Yes, issue certificates to the 2 completed learners of" in html
        html = render_template_string(page, cohort=world.cohort, completed_without_certificate=0)
        assert "disabled" in html and "Every completed learner has a certificate." in html


def test_cli_issues_a_cohorts_certificates(world: World, runner: FlaskCliRunner) -> None:
    args = ["lms", "issue-certificates", "--cohort", world.cohort.slug]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "2 certificate(s) issued for cohort gwangju-ai-school-spring." in result.output
    result = runner.invoke(args=args)
    assert "0 certificate(s) issued" in result.output
    result = runner.invoke(args=["lms", "issue-certificates", "--cohort", "nope"])
    assert result.exit_code == 1 and "No cohort with slug 'nope'" in result.output

    code = certificate_of(world.ana, world.cohort).code
    result = runner.invoke(args=["lms", "revoke-certificate", code.lower(), "--reason", "Fraud"])
    assert result.exit_code == 0 and f"Certificate {code} revoked." in result.output
    result = runner.invoke(args=["lms", "revoke-certificate", "nope", "--reason", "x"])
    assert result.exit_code == 1 and "No certificate has the code nope." in result.output


# --- Scale --------------------------------------------------------------------------------


def test_issuing_to_500_learners_takes_a_few_queries(app: Flask) -> None:
    courses = [factories.course(f"course-{n}", f"Course {n}") for n in range(2)]
    assignments = [make_assignment(c, f"lab-{n}", 10.0, n) for c in courses for n in range(3)]
    cohort = factories.cohort(factories.program(), "Big", courses=courses)
    users = [User(email=f"l{n}@test.org", name=f"Learner {n}") for n in range(500)]
    db.session.add_all(users)
    db.session.flush()
    db.session.add_all(
        Enrolment(
            user_id=u.id,
            cohort_id=cohort.id,
            status=EnrolmentStatus.COMPLETED,
            completed_at=NOW,
        )
        for u in users
    )
    for a in assignments:
        for n, u in enumerate(users):
            db.session.add(
                Submission(
                    user_id=u.id,
                    assignment_id=a.id,
                    cohort_id=cohort.id,
                    attempt=1,
                    submitted_at=NOW - DAY,
                    version=1,
                    files={},
                    content_hash="x",
                    grades=[
                        Grade(
                            cell_id=a.notebooks[0].cells[0].id,
                            max_score=10.0,
                            auto_score=float(n % 11),
                        )
                    ],
                )
            )
    cohort_id = cohort.id
    db.session.commit()
    db.session.expunge_all()

    statements = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    cohort = db.session.get_one(Cohort, cohort_id)
    sa.event.listen(db.engine, "before_cursor_execute", count)
    started = time.perf_counter()
    try:
        issued = certificates.issue(cohort, None)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    seconds = time.perf_counter() - started
    assert len(issued) == 500
    # A dozen statements whatever the cohort's size (0.3 s here on either database).
    assert len(statements) <= 15, Counter(s[:60] for s in statements)
    assert seconds < 3, seconds
    by_name = {c.learner_name: c.courses for c in issued}
    assert by_name["Learner 7"] == [
        {"title": "Course 0", "score": 21.0, "max_score": 30.0},
        {"title": "Course 1", "score": 21.0, "max_score": 30.0},
    ]

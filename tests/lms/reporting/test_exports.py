"""Progress exports: the CSV, XLSX and PDF writers (formula injection, file shape), real
reports of a program, a cohort and a course, the command line, the download buttons and the
background export jobs with their permissions."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from lms import queue
from lms.extensions import db
from lms.models import (
    Cohort,
    Course,
    Enrolment,
    EnrolmentStatus,
    ExportJob,
    ExportState,
    OrganisationKind,
    Program,
    Role,
    User,
    utcnow,
)
from lms.queries.progress import Forecast
from lms.reporting import exports, pdf_export, xlsx_export
from lms.reporting.report import Column, Report, Scope, Table
from lms.services import export_jobs, programs, users
from lms.storage import storage
from tests import factories
from tests.conftest import Auth, csrf_token

RISKY = ["=", "+", "-", "@", "\t", "\r"]
# Learner names a spreadsheet would run as formulas, and other text that must come back as
# it went in.
EVIL = [f"{prefix}cmd|' /C calc'!A0" for prefix in RISKY] + [
    '=HYPERLINK("http://evil.example","click")',
    "-2+3",
    "<r><t>markup</t></r>",
    "_x0041_ stays literal",
    "  leading and trailing  ",
    "Nguyễn Thị Minh Khai",
    "김민준",
]
GENERATED = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)


def excel_text(value: str) -> str:
    """openpyxl leaves Excel's _xHHHH_ escapes (control characters) as they are: undo them."""
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def hand_built(
    names: Sequence[str] = EVIL,
    scope: Scope = "program",
    count: int | None = None,
    forecast: bool = True,
) -> Report:
    columns = [
        Column("Learner", "text", 24),
        Column("Organisation", "text", 24),
        Column("Cohort", "text", 24),
        Column("Enrolled on", "date", 11),
        Column("Last seen", "datetime", 16),
        Column("Assignments passed", "int", 10),
        Column("Score", "float", 8),
        Column("Completed of required", "percent", 10),
    ]

    def rows() -> list[list[Any]]:
        return [
            [
                name,
                f"={index} Org",
                "+Spring cohort",
                date(2026, 3, 1),
                datetime(2026, 5, 1, 12, 30, tzinfo=UTC),
                index,
                7.25,
                0.5,
            ]
            for index, name in enumerate(names)
        ] + [["Nobody", None, None, None, None, None, None, None]]

    learners = Table("Learners", columns, rows, count if count is not None else len(names) + 1)
    cohorts = Table(
        "Cohorts: [by] name?",
        [Column("Cohort", "text", 28), Column("Enrolled", "int", 10)],
        lambda: [["@Autumn", 3], ["-Spring", 4]],
        2,
    )
    return Report(
        scope=scope,
        slug="gwangju-ai-school",
        title="Gwangju AI School — Korea",
        generated_at=GENERATED,
        summary=[("Target", 1200), ("Target date", date(2027, 12, 31)), ("Rate", 12.5)],
        funnel=[("Target", 1200), ("Enrolled", 900), ("Completed", 120)],
        forecast=Forecast(
            target=1200,
            target_date=date(2027, 12, 31),
            completed=120,
            rate_per_week=12.5,
            forecast_date=date(2028, 3, 1),
            weekly_needed=14.0,
        )
        if forecast
        else None,
        weekly=[(date(2026, 3, 2) + timedelta(weeks=w), 10 * w) for w in range(1, 13)],
        start=date(2026, 3, 1),
        tables=[cohorts],
        learners=learners,
    )


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def pdf_title(data: bytes) -> str:
    """The document title from the PDF's info dictionary (fpdf2 writes ASCII titles as a
    literal string, others as UTF-16 hex)."""
    match = re.search(rb"/Title (?:\((.*?)\)|<feff([0-9a-f]*)>)", data)
    assert match, "no title"
    if match.group(1) is not None:
        return match.group(1).decode("latin-1")
    return bytes.fromhex(match.group(2).decode()).decode("utf-16-be")


def pdf_pages(data: bytes) -> int:
    match = re.search(rb"/Count (\d+)", data)
    assert match
    return int(match.group(1))


# --- The writers ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", RISKY)
def test_safe_text_neutralises_every_risky_prefix(prefix: str) -> None:
    assert exports.safe_text(f"{prefix}SUM(A1)") == f"'{prefix}SUM(A1)"


@pytest.mark.parametrize("text", ["", "Kim", "a=b", " =x", "'=quoted", "2026", "김민준"])
def test_safe_text_leaves_other_text_alone(text: str) -> None:
    assert exports.safe_text(text) == text


def test_csv_is_the_learner_table_with_every_text_cell_neutralised() -> None:
    out = io.BytesIO()
    done: list[int] = []
    exports.write_csv(hand_built(), out, on_progress=done.append)
    rows = csv_rows(out.getvalue())
    assert rows[0] == [
        "Learner",
        "Organisation",
        "Cohort",
        "Enrolled on",
        "Last seen",
        "Assignments passed",
        "Score",
        "Completed of required",
    ]
    body = rows[1:]
    assert len(body) == len(EVIL) + 1
    for row, name in zip(body, EVIL, strict=False):
        expected = f"'{name}" if name[0] in RISKY else name
        assert row[0] == expected
        assert row[1].startswith("'=") and row[2] == "'+Spring cohort"
        assert row[3:] == ["2026-03-01", "2026-05-01 12:30:00", row[5], "7.25", "0.5"]
        assert row[5].isdigit()  # numbers are not touched
    assert body[-1] == ["Nobody", "", "", "", "", "", "", ""]
    assert done[-1] == len(EVIL) + 1
    assert not out.closed  # the caller's stream


def test_csv_keeps_writing_fast_on_many_rows() -> None:
    names = [f"{RISKY[i % 6]}Learner {i}" if i % 50 == 0 else f"Learner {i}" for i in range(5000)]
    out = io.BytesIO()
    calls: list[int] = []
    exports.write_csv(hand_built(names), out, on_progress=calls.append)
    assert calls == [2000, 4000, 5001]
    rows = csv_rows(out.getvalue())
    assert rows[1][0] == "'=Learner 0" and rows[2][0] == "Learner 1"


def test_xlsx_has_summary_tables_learners_and_native_charts(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    done: list[int] = []
    xlsx_export.write_xlsx(hand_built(), path, on_progress=done.append)
    assert done[-1] == len(EVIL) + 1
    with zipfile.ZipFile(path) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 2  # the funnel (bars) and the weekly completions (lines)

    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Summary", "Cohorts by name", "Learners"]
    summary = book["Summary"]
    assert summary["A1"].value == "Gwangju AI School — Korea"
    values = {row[0]: row[1] for row in summary.iter_rows(values_only=True) if row[0]}
    assert values["Target"] == 1200 and values["Rate"] == 12.5
    assert values["Target date"] == datetime(2027, 12, 31)
    assert values["Generated at (UTC)"] == datetime(2026, 5, 20, 9, 30)
    header = [c for c in summary.iter_rows(values_only=True) if c[0] == "Week (starting Monday)"]
    assert header == [
        ("Week (starting Monday)", "Completed (cumulative)", "Straight line to the target")
    ]
    assert len(summary._charts) == 2

    learners = book["Learners"]
    assert learners.freeze_panes == "A2"
    assert learners.auto_filter.ref == f"A1:H{len(EVIL) + 2}"
    assert learners["A1"].font.b
    assert learners.column_dimensions["A"].width > 20
    for row, name in zip(learners.iter_rows(min_row=2), EVIL, strict=False):
        cell = row[0]
        assert cell.data_type == "s", name  # a string, never a formula
        assert excel_text(cell.value) == name  # the original characters
        assert row[1].data_type == "s" and row[1].value.startswith("=")
        assert row[2].value == "+Spring cohort"
        assert row[3].value == datetime(2026, 3, 1) and row[3].number_format == "yyyy-mm-dd"
        assert row[4].value == datetime(2026, 5, 1, 12, 30)
        assert row[5].data_type == "n" and row[6].value == 7.25
        assert row[7].value == 0.5 and row[7].number_format == "0.0%"
    last = [c.value for c in list(learners.iter_rows(min_row=len(EVIL) + 2))[0]]
    assert last == ["Nobody", None, None, None, None, None, None, None]
    cohorts = book["Cohorts by name"]
    assert [[c.value for c in r] for r in cohorts.iter_rows()] == [
        ["Cohort", "Enrolled"],
        ["@Autumn", 3],
        ["-Spring", 4],
    ]
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)


def test_xlsx_text_in_summary_is_never_a_formula_either(tmp_path: Path) -> None:
    built = hand_built(forecast=False)
    evil = replace(
        built,
        title="=cmd|' /C calc'!A0",
        summary=[("+label", "-value"), ("<r>x</r>", "@x")],
        funnel=[("=Stage", 3)],
    )
    out = io.BytesIO()
    xlsx_export.write_xlsx(evil, out)
    summary = openpyxl.load_workbook(io.BytesIO(out.getvalue()))["Summary"]
    texts = [c for row in summary.iter_rows() for c in row if isinstance(c.value, str)]
    assert {c.value for c in texts} >= {
        "=cmd|' /C calc'!A0",
        "+label",
        "-value",
        "<r>x</r>",
        "=Stage",
    }
    assert all(c.data_type == "s" for c in texts)


def test_the_fast_xlsx_rows_fit_the_pinned_xlsxwriter() -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(io.BytesIO(), {"constant_memory": True})
    assert xlsx_export._XlsxRows.fits(book.add_worksheet())
    book.close()


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Per cohort", "Per cohort"),
        ("a/b\\c[d]e:f*g?h", "a b c d e f g h"),
        ("'quoted'", "quoted"),
        ("x" * 40, "x" * 31),
        ("", "Sheet"),
    ],
)
def test_sheet_names_are_valid(title: str, expected: str) -> None:
    assert xlsx_export.sheet_name(title, set()) == expected


def test_sheet_names_are_unique() -> None:
    taken: set[str] = set()
    names = [xlsx_export.sheet_name("y" * 40, taken) for _ in range(3)]
    assert names == ["y" * 31, "y" * 27 + " (2)", "y" * 27 + " (3)"]
    assert xlsx_export.sheet_name("History", taken) == "History (2)"  # reserved by Excel


def test_pdf_of_a_program_has_the_title_and_says_where_the_learners_are() -> None:
    out = io.BytesIO()
    done: list[int] = []
    pdf_export.write_pdf(hand_built(count=3000), out, on_progress=done.append)
    data = out.getvalue()
    assert data.startswith(b"%PDF-")
    assert pdf_title(data) == "Gwangju AI School — Korea"
    assert data.count(b"/Subtype /Image") == 2  # the funnel and the completions chart
    assert done == [3000]


def test_pdf_of_a_cohort_lists_its_learners_across_pages() -> None:
    names = [f"Learner {i}" for i in range(150)]
    out = io.BytesIO()
    done: list[int] = []
    pdf_export.write_pdf(hand_built(names, scope="cohort", forecast=False), out, done.append)
    data = out.getvalue()
    assert data.startswith(b"%PDF-")
    assert pdf_pages(data) >= 4  # the header row is repeated on each
    assert data.count(b"/Subtype /Image") == 1  # the funnel; the weeks are a table
    assert done[-1] == 151


def test_write_dispatches_and_refuses_unknown_formats() -> None:
    for fmt, (mimetype, extension) in exports.FORMATS.items():
        out = io.BytesIO()
        exports.write(hand_built(), fmt, out)
        assert out.getvalue()[:4] in (b'\xef\xbb\xbf"', b"PK\x03\x04", b"%PDF")
        assert extension == fmt and "/" in mimetype
    with pytest.raises(ValueError, match="unknown export format"):
        exports.write(hand_built(), "docx", io.BytesIO())


# --- Real reports -----------------------------------------------------------------------


@dataclass
class World:
    program: Program
    cohort: Cohort
    course: Course
    other_program: Program
    other_cohort: Cohort
    names: list[str]


def enrol(cohort: Cohort, email: str, name: str, organisation: Any = None) -> User:
    user = users.create_user(email, "placeholder", None, organisation=organisation)
    user.name = name  # set directly: the service trims the tab and CR prefixes
    db.session.commit()
    programs.enrol(user, cohort)
    return user


@pytest.fixture
def world(app: Flask) -> World:
    course = factories.course()
    program = factories.program()
    organisation = programs.create_organisation("=Org Formula", OrganisationKind.CITY)
    cohort = programs.create_cohort(
        program,
        "+Spring cohort",
        date(2026, 3, 1),
        date(2026, 8, 31),
        courses=[course],
        organisation=organisation,
        slug="spring",
    )
    names = [f"{prefix}Evil {i}" for i, prefix in enumerate(RISKY)]
    for i, name in enumerate(names):
        enrol(cohort, f"learner{i}@test.org", name, organisation)
    other_program = factories.program("Busan AI School", 500)
    other_cohort = factories.cohort(other_program, "Busan", [course], slug="busan")
    enrol(other_cohort, "busan@test.org", "Busan Learner")
    return World(program, cohort, course, other_program, other_cohort, names)


def build(scope: str, slug: str) -> Report:
    target = export_jobs.find(None, scope, slug)
    assert target is not None
    return export_jobs.build(target)


@pytest.mark.parametrize("scope", ["program", "cohort", "course"])
def test_real_reports_export_in_every_format(world: World, scope: str, tmp_path: Path) -> None:
    slug = {"program": world.program.slug, "cohort": "spring", "course": world.course.slug}
    built = build(scope, slug[scope])
    out = io.BytesIO()
    exports.write_csv(built, out)
    text = out.getvalue().decode("utf-8-sig")
    for name in world.names:
        assert f"'{name}" in text
    assert ",+Spring" not in text and ",=Org" not in text
    if scope != "cohort":  # a cohort's learner rows do not name the cohort
        assert "'+Spring cohort" in text
    if scope != "course":  # a course's learner rows do not name organisations
        assert "'=Org Formula" in text

    path = tmp_path / f"{scope}.xlsx"
    xlsx_export.write_xlsx(built, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "Summary" and book.sheetnames[-1] == "Learners"
    cells = [c for row in book["Learners"].iter_rows(min_row=2) for c in row if c.value]
    for name in world.names:
        [found] = [c for c in cells if isinstance(c.value, str) and excel_text(c.value) == name]
        assert found.data_type == "s"

    pdf = io.BytesIO()
    pdf_export.write_pdf(built, pdf)
    assert pdf.getvalue().startswith(b"%PDF-")
    assert pdf_title(pdf.getvalue()) == built.title


def test_the_learner_rows_are_counted_without_building_the_report(world: World) -> None:
    coordinator = factories.coordinator(world.other_program)
    enrolment = db.session.scalars(db.select(Enrolment)).first()
    assert enrolment is not None
    enrolment.status = EnrolmentStatus.WITHDRAWN  # still a row of every report
    enrolment.withdrawn_at = utcnow()
    db.session.commit()
    for user, scope, slug, expected in (
        (None, "program", world.program.slug, 6),
        (None, "cohort", "spring", 6),
        (None, "course", world.course.slug, 7),
        (coordinator, "course", world.course.slug, 1),
    ):
        target = export_jobs.find(user, scope, slug)
        assert target is not None
        assert export_jobs.learner_count(target) == expected
        assert export_jobs.learner_rows(export_jobs.build(target)) == expected


def test_a_course_report_is_limited_to_the_cohorts_given(world: World) -> None:
    coordinator = factories.coordinator(world.program)
    target = export_jobs.allowed(coordinator, "course", world.course)
    assert target is not None and target.cohort_ids == {world.cohort.id}
    out = io.BytesIO()
    exports.write_csv(export_jobs.build(target), out)
    assert "Busan Learner" not in out.getvalue().decode("utf-8-sig")
    everything = io.BytesIO()
    exports.write_csv(build("course", world.course.slug), everything)
    assert "Busan Learner" in everything.getvalue().decode("utf-8-sig")


# --- The command line -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
def test_cli_exports_a_program(
    world: World, runner: FlaskCliRunner, tmp_path: Path, fmt: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / f"out.{fmt}"
    args = ["lms", "export", "progress", "--program", world.program.slug, "--output", output]
    result = runner.invoke(args=[*map(str, args), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert f"Wrote {output} ({fmt}, 6 learner rows)." in result.output
    data = output.read_bytes()
    assert data[:4] in (b'\xef\xbb\xbf"', b"PK\x03\x04", b"%PDF")
    assert [p.name for p in folder.iterdir()] == [output.name]  # no partial file left


def test_cli_takes_the_format_from_the_file_name(
    world: World, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    output = tmp_path / "cohort.xlsx"
    result = runner.invoke(
        args=["lms", "export", "progress", "--cohort", "spring", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert openpyxl.load_workbook(output).sheetnames[-1] == "Learners"


def test_cli_fails_clearly(world: World, runner: FlaskCliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    output = str(folder / "x.csv")
    unknown = runner.invoke(
        args=["lms", "export", "progress", "--program", "nope", "--output", output]
    )
    assert unknown.exit_code == 1
    assert "No program with slug 'nope'." in unknown.output
    bad = runner.invoke(
        args=["lms", "export", "progress", "--course", "x", "--format", "doc", "--output", output]
    )
    assert bad.exit_code == 2 and "Invalid value for '--format'" in bad.output
    both = runner.invoke(
        args=["lms", "export", "progress", "--program", "a", "--cohort", "b", "--output", output]
    )
    assert both.exit_code == 2 and "exactly one of" in both.output
    guess = runner.invoke(
        args=["lms", "export", "progress", "--cohort", "spring", "--output", output + ".txt"]
    )
    assert guess.exit_code == 2 and "give --format" in guess.output
    nowhere = runner.invoke(
        args=["lms", "export", "progress", "--cohort", "spring", "--output", "/nonexistent/x.csv"]
    )
    assert nowhere.exit_code == 1 and "No folder" in nowhere.output
    assert list(folder.iterdir()) == []


# --- The web: buttons, inline downloads, background jobs, permissions -------------------


def post_export(
    client: FlaskClient, scope: str, slug: str, fmt: str, prefix: str = "/coordinate"
) -> TestResponse:
    token = csrf_token(client, f"{prefix}/")
    data = {"scope": scope, "slug": slug, "format": fmt, "csrf_token": token}
    return client.post(f"{prefix}/exports", data=data)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
def test_a_coordinator_downloads_a_small_report_at_once(
    world: World, client: FlaskClient, auth: Auth, fmt: str
) -> None:
    factories.coordinator(world.program)
    auth.login("coordinator@test.org")
    response = post_export(client, "program", world.program.slug, fmt)
    assert response.status_code == 200
    today = utcnow().date().isoformat()
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=program-{world.program.slug}-progress-{today}.{fmt}"
    )
    assert response.mimetype == exports.FORMATS[fmt][0].split(";")[0]
    assert response.headers["Cache-Control"] == "no-store"  # personal data
    if fmt == "csv":
        assert "'=Evil 0" in response.get_data().decode("utf-8-sig")
    assert db.session.query(ExportJob).count() == 0


def test_the_cohort_of_a_coordinated_program_is_exported(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.coordinator(world.program)
    auth.login("coordinator@test.org")
    response = post_export(client, "cohort", "spring", "csv")
    assert response.status_code == 200
    assert "filename=cohort-spring-progress-" in response.headers["Content-Disposition"]
    assert post_export(client, "cohort", "busan", "csv").status_code == 404


@pytest.fixture
def one_row_inline(app_config: dict[str, Any]) -> None:
    app_config["EXPORT_INLINE_ROWS"] = 1


@pytest.mark.usefixtures("one_row_inline")
def test_a_large_report_is_written_in_the_background(
    world: World, client: FlaskClient, auth: Auth, app: Flask
) -> None:
    coordinator = factories.coordinator(world.program)
    auth.login("coordinator@test.org")
    response = post_export(client, "program", world.program.slug, "xlsx")
    assert response.status_code == 302
    job = db.session.scalars(db.select(ExportJob)).one()
    assert response.headers["Location"] == f"/coordinate/exports/{job.id}"
    assert (job.requested_by_id, job.scope, job.scope_id, job.format, job.state) == (
        coordinator.id,
        "program",
        world.program.id,
        "xlsx",
        ExportState.QUEUED,
    )
    page = client.get(f"/coordinate/exports/{job.id}").get_data(as_text=True)
    assert "Waiting for a worker" in page and 'data-state="queued"' in page
    assert f'href="/coordinate/exports/{job.id}"' in page  # the reload link, without JS
    assert "export.js" in page
    progress = client.get(f"/coordinate/exports/{job.id}/progress.json").get_json()
    assert progress["state"] == "queued" and "download_url" not in progress
    assert client.get(f"/coordinate/exports/{job.id}/download").status_code == 404
    # Asking again while it waits gives the same job.
    assert post_export(client, "program", world.program.slug, "xlsx").headers["Location"] == (
        f"/coordinate/exports/{job.id}"
    )

    export_jobs.run(job.id)

    db.session.expire_all()
    assert job.state == ExportState.DONE and job.done == job.total == 6
    assert job.path == f"exports/{job.id}.xlsx"
    assert (Path(app.config["DATA_DIR"]) / job.path).is_file()
    progress = client.get(f"/coordinate/exports/{job.id}/progress.json").get_json()
    assert progress["state"] == "done" and progress["done"] == 6
    assert progress["download_url"] == f"/coordinate/exports/{job.id}/download"
    page = client.get(f"/coordinate/exports/{job.id}").get_data(as_text=True)
    assert "Download the report" in page and job.file_name in page
    download = client.get(progress["download_url"])
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == f"attachment; filename={job.file_name}"
    assert job.file_name.startswith(f"program-{world.program.slug}-progress-")
    book = openpyxl.load_workbook(io.BytesIO(download.get_data()))
    assert book.sheetnames[-1] == "Learners"
    download.close()

    # Running it again changes nothing; another export of the same replaces the file.
    export_jobs.run(job.id)
    again = export_jobs.start(coordinator, "program", world.program.id, "xlsx")
    assert again.id != job.id
    export_jobs.run(again.id)
    db.session.expire_all()
    assert job.path == "" and export_jobs.open_file(job) is None
    stored = export_jobs.open_file(again)
    assert stored is not None
    stored.close()


@pytest.mark.usefixtures("one_row_inline")
def test_only_the_requester_or_an_admin_sees_an_export_job(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    owner = factories.coordinator(world.program)
    job = export_jobs.start(owner, "program", world.program.id, "csv")
    export_jobs.run(job.id)
    users.grant_role(factories.user("colleague@test.org"), Role.COORDINATOR, program=world.program)
    auth.login("colleague@test.org")
    for path in ("", "/progress.json", "/download"):
        assert client.get(f"/coordinate/exports/{job.id}{path}").status_code == 404
    auth.logout()
    factories.admin()
    auth.login("admin@test.org")
    download = client.get(f"/coordinate/exports/{job.id}/download")
    assert download.status_code == 200
    assert "'=Evil 0" in download.get_data().decode("utf-8-sig")
    download.close()


def test_a_coordinator_of_another_program_gets_404(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.coordinator(world.other_program)
    auth.login("coordinator@test.org")
    assert post_export(client, "program", world.program.slug, "csv").status_code == 404
    assert post_export(client, "cohort", "spring", "csv").status_code == 404
    assert post_export(client, "program", "no-such-program", "csv").status_code == 404
    # A course taken by one of their cohorts: only that cohort's learners.
    response = post_export(client, "course", world.course.slug, "csv")
    assert response.status_code == 200
    text = response.get_data().decode("utf-8-sig")
    assert "Busan Learner" in text and "Evil" not in text


def test_bad_forms_and_missing_tokens_are_refused(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.coordinator(world.program)
    auth.login("coordinator@test.org")
    data = {"scope": "program", "slug": world.program.slug, "format": "csv"}
    assert client.post("/coordinate/exports", data=data).status_code == 400  # no CSRF token
    assert post_export(client, "program", world.program.slug, "docx").status_code == 400
    assert post_export(client, "school", world.program.slug, "csv").status_code == 400


def test_anonymous_visitors_are_sent_to_sign_in(world: World, client: FlaskClient) -> None:
    token = csrf_token(client, "/login")
    data = {"scope": "program", "slug": world.program.slug, "format": "csv", "csrf_token": token}
    for response in (
        client.post("/coordinate/exports", data=data),
        client.post("/teach/exports", data=data),
        client.get("/coordinate/exports/1"),
        client.get("/coordinate/exports/1/download"),
    ):
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_instructors_export_their_courses_from_the_course_page(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.instructor(world.course)
    other = factories.course("other-course", "Other course")
    auth.login("instructor@test.org")
    page = client.get(f"/teach/courses/{world.course.slug}").get_data(as_text=True)
    assert page.count('action="/teach/exports"') == 3
    assert page.count('name="csrf_token"') >= 3
    for label in ("CSV", "Excel (XLSX)", "PDF"):
        assert f'<button type="submit">{label}</button>' in page
    assert 'role="group" aria-labelledby="export-course-' in page

    response = post_export(client, "course", world.course.slug, "csv", prefix="/teach")
    assert response.status_code == 200
    text = response.get_data().decode("utf-8-sig")
    assert "Busan Learner" in text and "'=Evil 0" in text  # every cohort of the course
    assert post_export(client, "course", other.slug, "csv", prefix="/teach").status_code == 404
    assert post_export(client, "program", world.program.slug, "csv", "/teach").status_code == 404
    # The coordinator's routes stay closed to instructors.
    assert client.get("/coordinate/exports/1").status_code == 403


@pytest.mark.usefixtures("one_row_inline")
def test_an_instructors_background_export_stays_on_their_pages(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    factories.instructor(world.course)
    auth.login("instructor@test.org")
    response = post_export(client, "course", world.course.slug, "pdf", prefix="/teach")
    job = db.session.scalars(db.select(ExportJob)).one()
    assert response.headers["Location"] == f"/teach/exports/{job.id}"
    export_jobs.run(job.id)
    progress = client.get(f"/teach/exports/{job.id}/progress.json").get_json()
    assert progress["download_url"] == f"/teach/exports/{job.id}/download"
    download = client.get(progress["download_url"])
    assert download.get_data().startswith(b"%PDF-")
    download.close()


# --- Export jobs: failures and workers that died ----------------------------------------


def test_a_job_that_cannot_be_written_fails_with_a_one_line_reason(
    world: World, monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    owner = factories.admin()
    job = export_jobs.start(owner, "cohort", world.cohort.id, "csv")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full\nsecond line")

    monkeypatch.setattr(exports, "write", broken)
    export_jobs.run(job.id)
    db.session.expire_all()
    assert job.state == ExportState.FAILED
    assert job.error == "OSError: disk full second line"
    assert storage().list("exports") == []  # nothing half-written is left


def test_a_job_whose_subject_is_no_longer_theirs_fails(world: World) -> None:
    coordinator = factories.coordinator(world.program)
    job = export_jobs.start(coordinator, "program", world.program.id, "csv")
    for grant in list(coordinator.grants):
        db.session.delete(grant)
    db.session.commit()
    export_jobs.run(job.id)
    db.session.expire_all()
    assert job.state == ExportState.FAILED
    assert "no longer yours" in job.error


def test_a_stale_job_can_be_started_again(world: World, client: FlaskClient, auth: Auth) -> None:
    owner = factories.coordinator(world.program)
    job = export_jobs.start(owner, "program", world.program.id, "pdf")
    # The worker took it, then died.
    job.state = ExportState.RUNNING
    job.started_at = utcnow() - export_jobs.STALE_AFTER - timedelta(minutes=1)
    db.session.commit()
    assert export_jobs.is_stale(job)
    auth.login("coordinator@test.org")
    page = client.get(f"/coordinate/exports/{job.id}").get_data(as_text=True)
    assert "the worker writing it may have stopped" in page
    assert "Start the export again" in page
    assert client.get(f"/coordinate/exports/{job.id}/progress.json").get_json()["stale"]

    again = export_jobs.start(owner, "program", world.program.id, "pdf")
    assert again.id != job.id and again.state == ExportState.QUEUED
    db.session.expire_all()
    assert job.state == ExportState.FAILED and "started again" in job.error
    export_jobs.run(job.id)  # the old message, delivered late: nothing happens
    export_jobs.run(again.id)
    db.session.expire_all()
    assert (job.state, again.state) == (ExportState.FAILED, ExportState.DONE)


def test_start_refuses_unknown_scopes_and_formats(world: World) -> None:
    owner = factories.admin()
    with pytest.raises(export_jobs.ExportError):
        export_jobs.start(owner, "school", 1, "csv")
    with pytest.raises(export_jobs.ExportError):
        export_jobs.start(owner, "program", world.program.id, "docx")


def test_the_worker_runs_queued_exports(
    world: World, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = export_jobs.start(factories.admin(), "cohort", world.cohort.id, "csv", total=6)
    assert (job.total, job.done) == (6, 0)  # shown while it waits
    huey = queue.queue().huey
    [message] = huey.pending()
    # The queue carries the task by name: the web process never imports what runs it.
    assert (message.name, message.args, message.priority) == (
        "lms.task",
        ("export_job", job.id),
        queue.PRIORITY_EXPORT,
    )
    monkeypatch.setattr(queue, "_worker_app", app)  # as `flask lms worker` binds it
    huey.execute(message)
    db.session.expire_all()
    assert job.state == ExportState.DONE
    stored = export_jobs.open_file(job)
    assert stored is not None
    with stored:
        assert stored.read().startswith(b'\xef\xbb\xbf"Learner"')


# --- The PDF in the reader's language and time zone ---------------------------------------


def test_pdf_cells_are_written_in_the_readers_language_and_zone(app: Flask) -> None:
    from flask_babel import force_locale

    from lms import formatting

    moment = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    with app.test_request_context(), force_locale("vi"), formatting.reading_in("Asia/Ho_Chi_Minh"):
        assert pdf_export._pdf_text(1234567) == "1.234.567"
        assert pdf_export._pdf_text(9.5, "float") == "9,5"
        assert pdf_export._pdf_text(0.125, "percent") == "12,5%"
        # 23:30 UTC is 06:30 the next morning in Ho Chi Minh City.
        assert pdf_export._pdf_text(moment) == "06:30 2/3/26"
        assert pdf_export._pdf_text(date(2026, 3, 1)) == "1 thg 3, 2026"
    with app.test_request_context(), force_locale("en"):
        assert pdf_export._pdf_text(1234567) == "1,234,567"
        assert pdf_export._pdf_text(moment) == "3/1/26, 11:30\u202fPM"


def test_chart_axes_are_written_in_the_readers_language(app: Flask) -> None:
    from flask_babel import force_locale
    from matplotlib import dates as mdates

    from lms.reporting import charts

    with app.test_request_context(), force_locale("vi"):
        assert charts._count_tick(1200.0) == "1.200"
        assert charts._date_tick(float(mdates.date2num(date(2027, 4, 1)))) == "thg 4 2027"
    with app.test_request_context(), force_locale("ko"):
        assert charts._date_tick(float(mdates.date2num(date(2027, 4, 1)))) == "2027년 4월"


@pytest.mark.usefixtures("one_row_inline")
def test_a_background_pdf_is_written_in_the_requesters_zone(
    world: World, client: FlaskClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker has no request: the zone the requester read pages in when they asked is
    kept with the job, and the PDF's moments are in it."""
    from lms import formatting

    factories.coordinator(world.program)
    auth.login("coordinator@test.org")
    client.set_cookie(formatting.TIMEZONE_COOKIE, "Asia/Seoul")
    assert post_export(client, "program", world.program.slug, "pdf").status_code == 302
    job = db.session.scalars(db.select(ExportJob)).one()
    assert job.time_zone == "Asia/Seoul"

    zones_written_in: list[str] = []
    real_when = formatting.when

    def when(moment: datetime | None, seconds: bool = False) -> str:
        zones_written_in.append(formatting.time_zone_name())
        return real_when(moment, seconds)

    monkeypatch.setattr(formatting, "when", when)
    export_jobs.run(job.id)
    db.session.expire_all()
    assert job.state == ExportState.DONE, job.error
    assert zones_written_in and set(zones_written_in) == {"Asia/Seoul"}
    assert formatting.time_zone_name() == "UTC"  # nothing of it stays behind

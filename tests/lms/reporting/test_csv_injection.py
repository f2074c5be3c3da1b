"""CSV exports against formula injection in spreadsheets that split on another character:
every text field is quoted, and no cell that a ";" (or tab, "|", line-break) reader makes
starts a formula."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.models import OrganisationKind
from lms.reporting import exports
from lms.services import export_jobs, programs, users
from tests import factories
from tests.conftest import Auth, csrf_token

FORMULA_START = tuple("=+-@\t\r")
EVIL_NAME = 'Ann;=HYPERLINK("http://x","y")'
# More text that another reader splits into a cell starting a formula (or a quote that would
# open one).
EVIL_TEXTS = [
    EVIL_NAME,
    "Bo; +1",
    'Cy;"=1+1"',
    "Di|=cmd",
    "Ed\t@SUM(A1)",
    "Fa\n=HYPERLINK(1)",
    "Gi\r\n-2+3",
]


def readings(data: bytes) -> dict[str, list[list[str]]]:
    text = data.decode("utf-8-sig")
    return {
        delimiter: list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        for delimiter in (",", ";", "\t", "|")
    }


def assert_no_formula(data: bytes) -> None:
    for delimiter, rows in readings(data).items():
        for row in rows:
            for field in row:
                assert not field.startswith(FORMULA_START), (delimiter, field, row)
    # Line by line too, as a reader that ignores quotes would split the records.
    for line in data.decode("utf-8-sig").splitlines():
        for separator in (",", ";", "\t", "|"):
            for piece in line.split(separator):
                assert not piece.lstrip(" ").startswith(FORMULA_START), (separator, piece)


def test_an_exported_learner_named_like_a_formula_is_inert(app: Flask) -> None:
    course = factories.course()
    program = factories.program()
    organisation = programs.create_organisation('Org;=HYPERLINK("http://x")', OrganisationKind.CITY)
    cohort = factories.cohort(program, "Spring", [course], slug="spring")
    for n, name in enumerate(EVIL_TEXTS):
        user = users.create_user(f"learner{n}@test.org", "placeholder", organisation=organisation)
        user.name = name  # directly: the forms and imports would trim some of these
        db.session.commit()
        programs.enrol(user, cohort)
    target = export_jobs.find(None, "program", program.slug)
    assert target is not None
    out = io.BytesIO()
    exports.write_csv(export_jobs.build(target), out)
    data = out.getvalue()
    assert_no_formula(data)
    # Read with the separator it was written with, every text field comes back whole, with
    # an apostrophe before what would start a formula after a ";".
    rows = readings(data)[","]
    fields = {field for row in rows[1:] for field in row}
    assert 'Ann;\'=HYPERLINK("http://x","y")' in fields
    # Every text field is quoted; numbers stay bare.
    text = data.decode("utf-8-sig")
    assert '"Ann;\'=HYPERLINK(""http://x"",""y"")"' in text


def test_numbers_stay_bare_and_text_is_quoted() -> None:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(exports._csv_row(["Kim", 3, 7.25, None, date(2026, 3, 1)]))
    assert out.getvalue() == '"Kim",3,7.25,"","2026-03-01"\r\n'


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        (EVIL_NAME, 'Ann;\'=HYPERLINK("http://x","y")'),
        ("a; =b", "a; '=b"),
        ('a;"=b"', 'a;\'"=b"'),
        ("a\n@b", "a\n'@b"),
        ("=a;-b", "'=a;'-b"),
        ("a;b, c=d", "a;b, c=d"),
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
    ],
)
def test_safe_text_neutralises_formulas_after_other_separators(text: str, safe: str) -> None:
    assert exports.safe_text(text) == safe


def test_the_downloaded_csv_is_inert(app: Flask, client: FlaskClient, auth: Auth) -> None:
    course = factories.course()
    program = factories.program()
    cohort = factories.cohort(program, "Spring", [course], slug="spring")
    user = users.create_user("ann@test.org", "placeholder")
    user.name = EVIL_NAME
    db.session.commit()
    programs.enrol(user, cohort)
    factories.coordinator(program, "coord@test.org")
    auth.login("coord@test.org")
    page = "/coordinate/"
    response = client.post(
        "/coordinate/exports",
        data={
            "scope": "program",
            "slug": program.slug,
            "format": "csv",
            "csrf_token": csrf_token(client, page),
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert_no_formula(response.data)
    assert b"HYPERLINK" in response.data

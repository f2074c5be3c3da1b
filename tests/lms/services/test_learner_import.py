"""CSV import of learners: everything or nothing, every bad row named by its line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from lms.extensions import db
from lms.models import Cohort, Enrolment, User
from lms.services import learner_import
from tests import factories
from tests.conftest import Auth, csrf_token


@pytest.fixture
def cohort(app: Flask) -> Cohort:
    factories.organisation("Mokpo Offshore Wind Co.")
    return factories.cohort(factories.program(), "Spring", slug="gwangju-spring")


def counts() -> tuple[int, int]:
    users = db.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0
    enrolments = db.session.scalar(sa.select(sa.func.count()).select_from(Enrolment)) or 0
    return users, enrolments


GOOD = (
    b"email,name,organisation\n"
    b"minji.kim@example.org,Kim Minji,Mokpo Offshore Wind Co.\n"
    b"An.Nguyen@Example.org,Nguyen An,mokpo-offshore-wind-co\n"
    b"duc@example.org,,\n"
)


def test_import_creates_users_and_enrolments(cohort: Cohort) -> None:
    report = learner_import.import_learners(cohort, GOOD)
    assert report == learner_import.ImportReport(
        rows=3, users_created=3, users_existing=0, enrolled=3, already_enrolled=0
    )
    users = {u.email: u for u in db.session.scalars(sa.select(User))}
    assert set(users) == {"minji.kim@example.org", "an.nguyen@example.org", "duc@example.org"}
    assert users["minji.kim@example.org"].organisation is not None
    assert users["an.nguyen@example.org"].organisation is not None  # matched by slug
    assert users["duc@example.org"].name == "duc"
    assert users["duc@example.org"].password_hash is None
    assert {e.user.email for e in cohort.enrolments} == set(users)


def test_reimporting_the_same_file_changes_nothing(cohort: Cohort) -> None:
    learner_import.import_learners(cohort, GOOD)
    before = [
        (u.id, u.email, u.name, u.organisation_id)
        for u in db.session.scalars(sa.select(User).order_by(User.id))
    ]
    report = learner_import.import_learners(cohort, GOOD)
    db.session.expire_all()
    after = [
        (u.id, u.email, u.name, u.organisation_id)
        for u in db.session.scalars(sa.select(User).order_by(User.id))
    ]
    assert before == after
    assert counts() == (3, 3)
    assert report.users_created == 0 and report.enrolled == 0
    assert report.users_existing == 3 and report.already_enrolled == 3


def test_existing_users_are_enrolled_and_left_unchanged(cohort: Cohort) -> None:
    existing = factories.user("minji.kim@example.org", name="Minji (own name)")
    report = learner_import.import_learners(cohort, GOOD)
    assert report.users_created == 2 and report.users_existing == 1 and report.enrolled == 3
    db.session.refresh(existing)
    assert existing.name == "Minji (own name)"
    assert existing.password_hash is not None


def test_byte_order_mark_and_column_aliases_are_accepted(cohort: Cohort) -> None:
    data = "\ufeffE-mail,Full Name,Organization\nx@example.org,X,\n".encode()
    assert learner_import.import_learners(cohort, data).rows == 1


def rejected(cohort: Cohort, data: bytes) -> list[learner_import.RowError]:
    before = counts()
    with pytest.raises(learner_import.ImportRejected) as info:
        learner_import.import_learners(cohort, data)
    assert counts() == before, "a rejected file must import nothing"
    return info.value.errors


def test_missing_email_is_reported_with_its_line(cohort: Cohort) -> None:
    data = b"email,name\na@example.org,A\n,No Email\nb@example.org,B\n  ,Blank\n"
    errors = rejected(cohort, data)
    assert [(e.line, e.message) for e in errors] == [(3, "missing email"), (5, "missing email")]


def test_invalid_email_is_reported(cohort: Cohort) -> None:
    errors = rejected(cohort, b"email\na@example.org\nnot-an-email\n")
    assert [(e.line, "not a valid email" in e.message) for e in errors] == [(3, True)]


def test_duplicates_name_both_lines(cohort: Cohort) -> None:
    data = b"email,name\na@example.org,A\nb@example.org,B\nA@Example.org,A again\n"
    errors = rejected(cohort, data)
    assert len(errors) == 1
    assert errors[0].line == 4
    assert "duplicate email a@example.org (first on line 2)" in errors[0].message


def test_unknown_columns_are_named(cohort: Cohort) -> None:
    errors = rejected(cohort, b"email,name,phone,Shoe Size\na@example.org,A,1,2\n")
    assert len(errors) == 1
    assert errors[0].line == 1
    assert "'phone'" in errors[0].message and "'Shoe Size'" in errors[0].message


def test_missing_email_column(cohort: Cohort) -> None:
    errors = rejected(cohort, b"name\nA\n")
    assert errors[0].line == 1 and "missing required columns: email" in errors[0].message


def test_wrong_encoding_is_reported_with_line_numbers(cohort: Cohort) -> None:
    # Korean Excel saves "CSV" in CP949 unless told otherwise.
    data = "email,name\na@example.org,Ana\nb@example.org,김민지\n".encode("cp949")
    errors = rejected(cohort, data)
    assert [e.line for e in errors] == [3]
    assert "UTF-8" in errors[0].message


def test_wrong_number_of_fields(cohort: Cohort) -> None:
    errors = rejected(cohort, b"email,name\na@example.org,A,extra\n")
    assert errors[0].line == 2 and "expected 2 fields, found 3" in errors[0].message


def test_unknown_organisation(cohort: Cohort) -> None:
    errors = rejected(cohort, b"email,organisation\na@example.org,Acme Robotics\n")
    assert errors[0].line == 2 and "unknown organisation 'Acme Robotics'" in errors[0].message


def test_empty_file_and_header_only(cohort: Cohort) -> None:
    assert rejected(cohort, b"")[0].message.startswith("the file is empty")
    assert rejected(cohort, b"email,name\n")[0].message == "no learners in the file"


def test_line_numbers_count_quoted_newlines(cohort: Cohort) -> None:
    data = b'email,name\na@example.org,"two\nlines"\n,missing\n'
    assert [e.line for e in rejected(cohort, data)] == [4]


def test_all_errors_are_reported_not_just_the_first(cohort: Cohort) -> None:
    data = b"email,name\n,A\nbad,B\nc@example.org,C\nc@example.org,C\n"
    assert [e.line for e in rejected(cohort, data)] == [2, 3, 5]


def test_cli_imports_with_a_progress_bar(
    cohort: Cohort, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "learners.csv"
    path.write_bytes(GOOD)
    result = runner.invoke(args=["lms", "import-learners", str(path), "--cohort", "gwangju-spring"])
    assert result.exit_code == 0, result.output
    assert "Importing" in result.output
    assert "3 rows: 3 new users, 0 existing; 3 newly enrolled" in result.output
    again = runner.invoke(args=["lms", "import-learners", str(path), "--cohort", "gwangju-spring"])
    assert "0 newly enrolled, 3 already enrolled" in again.output
    assert counts() == (3, 3)


def test_cli_reports_bad_rows_and_fails(
    cohort: Cohort, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"email,name\n,Someone\nx@example.org,X\nx@example.org,X\n")
    result = runner.invoke(args=["lms", "import-learners", str(path), "--cohort", "gwangju-spring"])
    assert result.exit_code == 1
    assert f"{path}:2: missing email" in result.output
    assert f"{path}:4: duplicate email" in result.output
    assert "nothing was imported" in result.output
    assert counts() == (0, 0)


def test_cli_unknown_cohort(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "learners.csv"
    path.write_bytes(GOOD)
    result = runner.invoke(args=["lms", "import-learners", str(path), "--cohort", "nope"])
    assert result.exit_code == 1 and "No cohort with slug 'nope'" in result.output


def upload(client: FlaskClient, data: bytes, filename: str = "learners.csv") -> str:
    path = "/admin/cohorts/gwangju-spring"
    response = client.post(
        path,
        data={"csrf_token": csrf_token(client, path), "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    return f"{response.status_code} " + response.get_data(as_text=True)


def test_upload_form_imports_and_shows_the_summary(
    cohort: Cohort, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    page = upload(client, GOOD)
    assert page.startswith("200 ")
    assert "3 rows: 3 new users, 3 newly enrolled, 0 already enrolled." in page
    assert "minji.kim@example.org" in page


def test_upload_form_lists_bad_rows_and_imports_nothing(
    cohort: Cohort, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    page = upload(client, b"email,name\n,A\nb@example.org,B\nb@example.org,B\n")
    assert page.startswith("400 ")
    assert "Nothing was imported" in page
    assert '<td class="num">2</td><td>missing email</td>' in page
    assert '<td class="num">4</td><td>duplicate email b@example.org (first on line 3)</td>' in page
    assert counts() == (1, 0)  # only the admin


def test_upload_form_refuses_other_file_types(
    cohort: Cohort, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    page = upload(client, b"\x89PNG...", filename="photo.png")
    assert page.startswith("400 ") and "Upload a .csv file." in page


@pytest.fixture
def tiny_uploads(app_config: dict[str, object]) -> None:
    app_config["MAX_UPLOAD_MB"] = 1


@pytest.mark.usefixtures("tiny_uploads")
def test_upload_over_the_size_limit_gets_413(
    cohort: Cohort, client: FlaskClient, auth: Auth
) -> None:
    factories.admin("boss@test.org")
    auth.login("boss@test.org")
    path = "/admin/cohorts/gwangju-spring"
    # Encoded here as bytes: the test client would spool a big form to a temp file it never closes.
    boundary, body = encode_multipart(
        {
            "csrf_token": csrf_token(client, path),
            "file": FileStorage(io.BytesIO(b"email\n" + b"x@example.org\n" * 100_000), "big.csv"),
        }
    )
    response = client.post(
        path, data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert counts() == (1, 0)

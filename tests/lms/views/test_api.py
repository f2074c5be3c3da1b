"""The JSON API: bearer tokens only, who sees what, submitting, batches, grades, and the OpenAPI
document matching the routes. Real app, real database, real autograder for the batch."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from jsonschema import Draft202012Validator
from werkzeug.datastructures import FileStorage
from werkzeug.test import TestResponse, encode_multipart

from lms.api import openapi
from lms.extensions import db
from lms.models import ApiToken, GradingJob, JobKind, Role, Submission, User
from lms.services import api_tokens, grading, programs, submissions, users
from lms.services.submissions import Upload
from tests import factories, grading_world
from tests.conftest import Auth
from tests.grading_world import RIGHT, WRONG, World

# Tests whose database work the tests on both backends here already cover (grading is slow).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

DOCUMENT = openapi.document()


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_tokens.create(user, 'test')}"}


def conforms(body: Any, schema: dict[str, Any]) -> bool:
    """The body is valid against a schema of the OpenAPI document (refs resolved in it)."""
    Draft202012Validator({**schema, "components": DOCUMENT["components"]}).validate(body)
    return True


def schema(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def is_error(response: TestResponse, status: int) -> bool:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert response.mimetype == "application/json"
    return conforms(body, schema("Error")) and bool(body["error"])


def post_notebook(
    client: FlaskClient,
    assignment_id: int,
    headers: dict[str, str],
    upload: Upload,
    **form: str,
) -> TestResponse:
    return client.post(
        f"/api/v1/assignments/{assignment_id}/submissions",
        data={"notebook": (io.BytesIO(upload.data), upload.filename), **form},
        headers=headers,
        content_type="multipart/form-data",
    )


def nothing_stored(app: Flask) -> bool:
    no_rows = db.session.scalar(sa.select(sa.func.count(Submission.id))) == 0
    no_jobs = db.session.scalar(sa.select(sa.func.count(GradingJob.id))) == 0
    blob_dir = Path(app.config["DATA_DIR"]) / "blobs"
    return no_rows and no_jobs and (not blob_dir.exists() or not any(blob_dir.rglob("*")))


# --- Authentication -------------------------------------------------------------------------


# These need people, not a released assignment (releasing runs nbgrader: seconds per test).
@pytest.fixture
def instructor(app: Flask) -> User:
    return factories.instructor(factories.course())


def test_requests_without_a_valid_token_get_401_json(
    instructor: User, client: FlaskClient, auth: Auth
) -> None:
    missing = client.get("/api/v1/assignments")
    assert is_error(missing, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer lms_not-a-real-token", "Bearer nonsense", "Basic dXNlcjpwdw=="):
        response = client.get("/api/v1/assignments", headers={"Authorization": header})
        assert is_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # A browser session is no credential here: a page elsewhere cannot use it (no CSRF).
    assert auth.login(instructor.email).status_code == 302
    assert client.get("/teach/").status_code == 200
    assert is_error(client.get("/api/v1/assignments"), 401)
    assert is_error(client.post("/api/v1/assignments/1/batches", json={"scope": "all"}), 401)


def test_revoked_tokens_and_inactive_users_are_refused(
    instructor: User, client: FlaskClient
) -> None:
    headers = bearer(instructor)
    assert client.get("/api/v1/assignments", headers=headers).status_code == 200
    row = db.session.scalar(sa.select(ApiToken))
    assert row is not None and row.last_used_at is not None
    api_tokens.revoke(row)
    assert is_error(client.get("/api/v1/assignments", headers=headers), 401)
    other = factories.admin()
    other_headers = bearer(other)
    other.active = False
    db.session.commit()
    assert is_error(client.get("/api/v1/assignments", headers=other_headers), 401)


def test_create_token_cli_prints_a_working_token_stored_only_as_a_hash(
    instructor: User, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(args=["lms", "create-token", instructor.email])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert re.fullmatch(r"lms_[A-Za-z0-9_-]{40,}", token)
    stored = db.session.scalars(sa.select(ApiToken)).all()
    assert [(r.user_id, r.token_hash) for r in stored] == [
        (instructor.id, hashlib.sha256(token.encode()).hexdigest())
    ]
    response = client.get("/api/v1/assignments", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {"teaching": [], "learning": []}
    unknown = runner.invoke(args=["lms", "create-token", "nobody@test.org"])
    assert unknown.exit_code != 0


# --- Assignments ------------------------------------------------------------------------------


def test_assignments_for_instructors_learners_and_both(world: World, client: FlaskClient) -> None:
    a = world.assignment
    submissions.submit(world.learners[0], a, world.cohort, [grading_world.answer(a, WRONG)])
    submissions.submit(world.learners[0], a, world.cohort, [grading_world.answer(a, RIGHT)])
    submissions.submit(world.learners[1], a, world.cohort, [grading_world.answer(a, RIGHT)])

    body = client.get("/api/v1/assignments", headers=bearer(world.instructor)).get_json()
    assert conforms(body, schema("Assignments"))
    assert body["learning"] == []
    assert [(r["id"], r["course"], r["points"], r["submissions"]) for r in body["teaching"]] == [
        (a.id, "doubling-101", 3.0, 3)
    ]

    body = client.get("/api/v1/assignments", headers=bearer(world.learners[0])).get_json()
    assert conforms(body, schema("Assignments"))
    assert body["teaching"] == []
    [row] = body["learning"]
    assert (row["id"], row["slug"], row["cohort"], row["open"]) == (
        a.id,
        "double-it",
        world.cohort.slug,
        True,
    )
    assert row["due_at"] == world.scheduled.due_at.isoformat()

    # A learner who also teaches the course gets both lists; an admin teaches everything.
    users.grant_role(world.learners[1], Role.INSTRUCTOR, course=a.course)
    body = client.get("/api/v1/assignments", headers=bearer(world.learners[1])).get_json()
    assert [r["id"] for r in body["teaching"]] == [r["id"] for r in body["learning"]] == [a.id]
    admin = factories.admin()
    body = client.get("/api/v1/assignments", headers=bearer(admin)).get_json()
    assert [r["submissions"] for r in body["teaching"]] == [3] and body["learning"] == []


# --- Submitting -------------------------------------------------------------------------------


def test_submitting_creates_one_attempt_per_idempotency_key(
    world: World, app: Flask, client: FlaskClient
) -> None:
    learner = world.learners[0]
    headers = {**bearer(learner), "Idempotency-Key": "api-retry-0001"}
    upload = grading_world.answer(world.assignment, WRONG)
    first = post_notebook(client, world.assignment.id, headers, upload)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert conforms(body, schema("Submission"))
    assert (body["attempt"], body["state"], body["cohort"]) == (1, "queued", world.cohort.slug)
    assert "learner" not in body and "score" not in body and body["instant_feedback"] is None
    assert first.headers["Location"] == f"/api/v1/submissions/{body['id']}"

    retry = post_notebook(client, world.assignment.id, headers, upload)
    assert retry.status_code == 200 and retry.get_json()["id"] == body["id"]
    rows = db.session.scalars(sa.select(Submission)).all()
    assert [(s.id, s.via, s.submit_key) for s in rows] == [(body["id"], "api", "api-retry-0001")]
    # The new attempt was queued for instant feedback, once.
    jobs = db.session.scalars(sa.select(GradingJob)).all()
    assert [(j.submission_id, j.kind) for j in jobs] == [(body["id"], JobKind.INSTANT)]

    changed = post_notebook(
        client,
        world.assignment.id,
        {**bearer(learner), "Idempotency-Key": "api-retry-0002"},
        grading_world.answer(world.assignment, RIGHT),
    )
    assert changed.status_code == 201 and changed.get_json()["attempt"] == 2
    assert db.session.scalar(sa.select(sa.func.count(Submission.id))) == 2


def test_a_bad_notebook_gets_400_and_nothing_is_stored(
    world: World, app: Flask, client: FlaskClient
) -> None:
    for upload, message in (
        (Upload("double-it.ipynb", b'{"cells": [}'), "broken JSON at line 1"),
        (Upload("notes.txt", b"hello"), "upload .ipynb files"),
    ):
        response = post_notebook(client, world.assignment.id, bearer(world.learners[0]), upload)
        assert is_error(response, 400)
        assert message in response.get_json()["error"]
    assert nothing_stored(app)


@sqlite_only  # the cohort choice is plain Python over the same queries as above
def test_submitting_needs_a_notebook_a_valid_key_and_a_cohort(
    world: World, app: Flask, client: FlaskClient
) -> None:
    learner = world.learners[0]
    path = f"/api/v1/assignments/{world.assignment.id}/submissions"
    response = client.post(path, data={}, headers=bearer(learner))
    assert is_error(response, 400) and "Choose the notebook" in response.get_json()["error"]
    upload = grading_world.answer(world.assignment, RIGHT)
    bad_key = {**bearer(learner), "Idempotency-Key": "short"}
    assert is_error(post_notebook(client, world.assignment.id, bad_key, upload), 400)
    assert nothing_stored(app)
    # In two cohorts taking the course: the learner says which.
    other = factories.cohort(world.cohort.program, "Autumn", courses=[world.assignment.course])
    programs.enrol(learner, other)
    response = post_notebook(client, world.assignment.id, bearer(learner), upload)
    assert is_error(response, 400) and other.slug in response.get_json()["error"]
    response = post_notebook(client, world.assignment.id, bearer(learner), upload, cohort="nope")
    assert is_error(response, 400)
    response = post_notebook(
        client, world.assignment.id, bearer(learner), upload, cohort=world.cohort.slug
    )
    assert response.status_code == 201 and response.get_json()["cohort"] == world.cohort.slug


@pytest.fixture
def tiny_uploads(app_config: dict[str, Any]) -> None:
    app_config["MAX_UPLOAD_MB"] = 1


@sqlite_only  # refused before the database is asked anything
@pytest.mark.usefixtures("tiny_uploads")
def test_an_upload_over_the_limit_gets_413_json(
    world: World, app: Flask, client: FlaskClient
) -> None:
    # Encoded here as bytes: the test client would spool a big form to a temp file it never closes.
    boundary, body = encode_multipart(
        {"notebook": FileStorage(io.BytesIO(b" " * (2 * 1024 * 1024)), "double-it.ipynb")}
    )
    response = client.post(
        f"/api/v1/assignments/{world.assignment.id}/submissions",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=bearer(world.learners[0]),
    )
    assert is_error(response, 413)
    assert "1 MB" in response.get_json()["error"]
    assert nothing_stored(app)


# --- Who sees what ----------------------------------------------------------------------------


def test_submissions_are_seen_by_their_learner_and_the_course_staff_only(
    world: World, client: FlaskClient
) -> None:
    a = world.assignment
    mine = submissions.submit(world.learners[0], a, world.cohort, [grading_world.answer(a, RIGHT)])
    path = f"/api/v1/submissions/{mine.submission.id}"

    own = client.get(path, headers=bearer(world.learners[0])).get_json()
    assert conforms(own, schema("Submission"))
    assert own["id"] == mine.submission.id and "learner" not in own and "grades" not in own
    assert not own["feedback_released"] and own["state"] == "submitted"

    # Another learner, an instructor of another course, nobody: as if it did not exist.
    other_course = factories.course("other-course", "Other")
    for stranger in (
        world.learners[1],
        factories.instructor(other_course, "elsewhere@test.org"),
        factories.user("nobody@test.org"),
    ):
        assert is_error(client.get(path, headers=bearer(stranger)), 404)
    assert is_error(
        client.get("/api/v1/submissions/999999", headers=bearer(world.learners[1])), 404
    )

    for staff in (world.instructor, factories.admin()):
        body = client.get(path, headers=bearer(staff)).get_json()
        assert conforms(body, schema("Submission"))
        assert body["learner"] == world.learners[0].email
        assert body["score"] is None and body["max_score"] == 3.0
        assert [(g["cell"], g["kind"], g["score"]) for g in body["grades"]] == [
            ("test-double", "autograded", None),
            ("why-linear", "manual", None),
        ]


def test_instructor_routes_answer_learners_403_and_outsiders_404(
    world: World, client: FlaskClient
) -> None:
    a = world.assignment
    outsider = factories.instructor(factories.course("other-course", "Other"), "else@test.org")
    routes = [
        ("get", f"/api/v1/assignments/{a.id}/submissions", None),
        ("get", f"/api/v1/assignments/{a.id}/grades", None),
        ("post", f"/api/v1/assignments/{a.id}/batches", {"scope": "all"}),
    ]
    for method, path, payload in routes:
        call = getattr(client, method)
        assert is_error(call(path, json=payload, headers=bearer(world.learners[0])), 403)
        assert is_error(call(path, json=payload, headers=bearer(outsider)), 404)
        missing = path.replace(f"/{a.id}/", "/999999/")
        assert is_error(call(missing, json=payload, headers=bearer(world.instructor)), 404)
    # Submitting is for learners: the course's instructor may see it but not submit.
    upload = grading_world.answer(a, RIGHT)
    assert is_error(post_notebook(client, a.id, bearer(world.instructor), upload), 403)
    assert is_error(post_notebook(client, a.id, bearer(outsider), upload), 404)


def test_instructors_list_submissions_all_or_latest_by_cohort(
    world: World, client: FlaskClient
) -> None:
    a = world.assignment
    submissions.submit(world.learners[0], a, world.cohort, [grading_world.answer(a, WRONG)])
    submissions.submit(world.learners[0], a, world.cohort, [grading_world.answer(a, RIGHT)])
    submissions.submit(world.learners[1], a, world.cohort, [grading_world.answer(a, RIGHT)])
    headers = bearer(world.instructor)
    path = f"/api/v1/assignments/{a.id}/submissions"

    every = client.get(path, headers=headers).get_json()
    assert conforms(every, {"type": "array", "items": schema("SubmissionRow")})
    assert [(r["learner"], r["attempt"], r["state"]) for r in every] == [
        ("learner0@test.org", 1, "submitted"),
        ("learner0@test.org", 2, "submitted"),
        ("learner1@test.org", 1, "submitted"),
    ]
    latest = client.get(f"{path}?latest=1&cohort={world.cohort.slug}", headers=headers)
    assert [(r["learner"], r["attempt"]) for r in latest.get_json()] == [
        ("learner0@test.org", 2),
        ("learner1@test.org", 1),
    ]
    assert is_error(client.get(f"{path}?cohort=no-such-cohort", headers=headers), 400)


# --- Batches and grades -----------------------------------------------------------------------


def test_batch_requests_are_checked_and_batches_can_be_cancelled(
    world: World, client: FlaskClient
) -> None:
    a = world.assignment
    headers = bearer(world.instructor)
    path = f"/api/v1/assignments/{a.id}/batches"
    assert is_error(client.post(path, json={"scope": "all"}, headers=headers), 400)  # nothing yet
    first = submissions.submit(world.learners[0], a, world.cohort, [grading_world.answer(a, RIGHT)])
    for payload in (
        {"scope": "some"},
        {"scope": "selected"},
        {"scope": "selected", "submissions": ["1"]},
        {"scope": "selected", "submissions": [first.submission.id + 1000]},
        {"scope": "all", "cohort": "no-such-cohort"},
    ):
        assert is_error(client.post(path, json=payload, headers=headers), 400), payload
    assert is_error(client.post(path, data="scope=all", headers=headers), 400)
    assert db.session.scalar(sa.select(sa.func.count(GradingJob.id))) == 0

    response = client.post(
        path,
        json={
            "scope": "selected",
            "submissions": [first.submission.id],
            "cohort": world.cohort.slug,
        },
        headers=headers,
    )
    assert response.status_code == 202
    body = response.get_json()
    assert conforms(body, schema("Batch"))
    assert (body["total"], body["queued"], body["state"], body["scope"]) == (
        1,
        1,
        "running",
        "selected",
    )
    assert response.headers["Location"] == f"/api/v1/batches/{body['id']}"
    # Learners never see batches; the instructor cancels once.
    assert is_error(
        client.get(f"/api/v1/batches/{body['id']}", headers=bearer(world.learners[0])), 404
    )
    cancel = client.post(f"/api/v1/batches/{body['id']}/cancel", headers=headers)
    assert cancel.status_code == 200
    assert (cancel.get_json()["state"], cancel.get_json()["cancelled"]) == ("cancelled", 1)
    assert is_error(client.post(f"/api/v1/batches/{body['id']}/cancel", headers=headers), 409)
    assert is_error(client.get("/api/v1/batches/999999", headers=headers), 404)


@sqlite_only
def test_batch_grades_every_latest_submission_then_grades_and_feedback(
    world: World, client: FlaskClient, graders: None
) -> None:
    a = world.assignment
    learner, other = world.learners
    # One learner submits through the API (queued for instant feedback), one through the site.
    mine = post_notebook(client, a.id, bearer(learner), grading_world.answer(a, RIGHT))
    assert mine.status_code == 201
    submissions.submit(other, a, world.cohort, [grading_world.answer(a, WRONG)])
    headers = bearer(world.instructor)

    response = client.post(f"/api/v1/assignments/{a.id}/batches", json={}, headers=headers)
    assert response.status_code == 202, response.get_json()
    batch_id = response.get_json()["id"]
    assert response.get_json()["total"] == 2
    assert grading_world.grade_queued() == 3  # the instant job and the batch's two

    body = client.get(f"/api/v1/batches/{batch_id}", headers=headers).get_json()
    assert conforms(body, schema("Batch"))
    assert body["state"] == "done" and body["done"] == body["total"] == 2
    assert (body["failed"], body["queued"], body["running"]) == (0, 0, 0)

    grades = client.get(f"/api/v1/assignments/{a.id}/grades", headers=headers).get_json()
    assert conforms(grades, schema("Grades"))
    assert [(r["learner"], r["score"], r["max_score"]) for r in grades["grades"]] == [
        (learner.email, 2.0, 3.0),
        (other.email, 0.0, 3.0),
    ]
    scoped = client.get(
        f"/api/v1/assignments/{a.id}/grades?cohort={world.cohort.slug}", headers=headers
    ).get_json()
    assert scoped["grades"] == grades["grades"] and scoped["cohort"] == world.cohort.slug

    # Before the release the learner sees only how each autograded cell of the instant
    # feedback went; after it, scores and grades.
    path = f"/api/v1/submissions/{mine.get_json()['id']}"
    before = client.get(path, headers=bearer(learner)).get_json()
    assert conforms(before, schema("Submission"))
    assert "score" not in before and "grades" not in before
    assert before["instant_feedback"]["cells"] == [
        {"notebook": "double-it", "cell": "test-double", "status": "passed"}
    ]
    grading.release_feedback(world.scheduled)
    after = client.get(path, headers=bearer(learner)).get_json()
    assert conforms(after, schema("Submission"))
    assert after["feedback_released"] and after["score"] == 2.0 and after["state"] == "done"
    assert [(g["cell"], g["score"]) for g in after["grades"]] == [
        ("test-double", 2.0),
        ("why-linear", 0.0),
    ]
    assert "auto_score" not in after["grades"][0]


# --- The OpenAPI document ---------------------------------------------------------------------


@sqlite_only  # no database involved
def test_openapi_document_describes_every_route_and_nothing_else(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/api/v1/openapi.json")  # no token needed
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1") and document["servers"] == [{"url": "/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    routes: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        assert rule.endpoint.startswith("api."), rule
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        routes |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    described = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert routes == described

    # Path parameters match the braces; every $ref resolves; every operation says 401 unless
    # it is public, and every error response is the error schema.
    refs = re.findall(r'"\$ref": ?"#/components/(\w+)/(\w+)"', response.get_data(as_text=True))
    assert len(refs) > 20 and all(name in document["components"][kind] for kind, name in refs)
    for path, item in document["paths"].items():
        names = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", path)), path
        for method, operation in item.items():
            if method == "parameters":
                continue
            public = operation.get("security") == []
            assert public == ((path, method) == ("/openapi.json", "get"))
            assert public or "401" in operation["responses"], (path, method)
            for code, answer in operation["responses"].items():
                if int(code) >= 400:
                    name = answer["$ref"].rsplit("/", 1)[1]
                    content = document["components"]["responses"][name]["content"]
                    assert content == {"application/json": {"schema": schema("Error")}}
    Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})

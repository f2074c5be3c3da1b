"""The learner's lab through the LMS pages, with the lab hub down (as when it is not running):
opening the lab makes the workspace and says the service is down; submitting the saved
notebooks; resetting a notebook with the old copy kept; the stopped-lab fallback the proxy
sends stale lab URLs to; the status poll; and the labs overview of instructors and
coordinators, from what the hub's DatabaseRecorder stored. Each for the right people only."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask.testing import FlaskClient

from lms.extensions import db
from lms.lab import hub_token
from lms.lab.hub import free_port
from lms.models import LabKernel, LabServer, Submission, User, utcnow
from lms.services import labs, workspaces
from tests import factories, grading_world
from tests.conftest import Auth, csrf_token, post_form
from tests.grading_world import NOTEBOOK, RIGHT, WRONG, World

HUB_DOWN = "The lab service is not running. Please tell your instructor."
SUBMIT_KEY_RE = re.compile(r'name="submit_key" type="hidden" value="([^"]+)"')
SUBMISSION_URL_RE = re.compile(r"/learn/submissions/(\d+)$")
KEPT_RE = re.compile(r"double-it\.before-reset-\d{8}-\d{6}\.ipynb")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # A port nobody listens on (bound, then let go): the hub is down there.
    app_config["LAB_HUB_URL"] = f"http://127.0.0.1:{free_port()}"
    return app_config


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


def assignment_url(world: World) -> str:
    a = world.assignment
    return f"/learn/cohorts/{world.cohort.slug}/courses/{a.course.slug}/{a.slug}/"


def lab_url(world: World) -> str:
    return assignment_url(world) + "lab"


def release_bytes(world: World) -> bytes:
    release = world.assignment.current_release
    assert release is not None
    return (Path(current_app.config["DATA_DIR"]) / release.path / NOTEBOOK).read_bytes()


def flash(category: str, message: str) -> str:
    role = "alert" if category == "error" else "status"
    return f'<p class="flash flash-{category}" role="{role}">{message}</p>'


def submission_count() -> int:
    return int(db.session.scalar(sa.select(sa.func.count(Submission.id))) or 0)


def open_lab(client: FlaskClient, world: World) -> Any:
    """Press "Open lab" on the assignment page (a form: a GET never starts anything)."""
    token = csrf_token(client, assignment_url(world))
    return client.post(lab_url(world) + "/open", data={"csrf_token": token})


def lab_form_key(html: str, world: World) -> str:
    """The submit key of the "Submit saved notebooks" form on the assignment page."""
    _, found, rest = html.partition(f'action="{lab_url(world)}/submit"')
    assert found, "no lab submit form on the page"
    key = SUBMIT_KEY_RE.search(rest.split("</form>")[0])
    assert key, "no submit key in the lab submit form"
    return key.group(1)


# --- Opening the lab ----------------------------------------------------------------------


def test_opening_the_lab_with_the_hub_down_makes_the_workspace_and_says_so(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    learner = world.learners[0]
    folder = workspaces.folder_of(learner, world.assignment)
    auth.login(learner.email)

    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert f'action="{lab_url(world)}/open"' in page and 'value="Open lab"' in page
    assert "Submit saved notebooks" not in page and f'action="{lab_url(world)}/submit"' not in page
    assert not folder.exists()

    # The lab page itself changes nothing: no folder is made, no server started on a GET.
    start_page = client.get(lab_url(world))
    assert start_page.status_code == 200
    assert HUB_DOWN in start_page.get_data(as_text=True)
    assert f'action="{lab_url(world)}/open"' in start_page.get_data(as_text=True)
    assert not folder.exists()

    response = open_lab(client, world)
    assert response.status_code == 302
    assert response.headers["Location"] == assignment_url(world)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert flash("error", HUB_DOWN) in page
    # The workspace was made from the release before the hub was asked.
    assert (folder / NOTEBOOK).read_bytes() == release_bytes(world)
    # Now that the lab folder exists, its notebooks can be submitted from this page.
    assert f'action="{lab_url(world)}/open"' in page
    assert 'value="Submit saved notebooks"' in page
    lab_form_key(page, world)
    # The error is said once, not again on the next page.
    assert HUB_DOWN not in client.get(assignment_url(world)).get_data(as_text=True)


class StubHub(BaseHTTPRequestHandler):
    """Answers POST /servers/<id> as the hub would: started, or refused with a reason; and
    GET /servers/<id>: running once started."""

    refuse: str | None = None
    token = ""
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        self.seen.append(f"{self.command} {self.path} {self.headers['Authorization']}")
        if self.headers["Authorization"] != f"token {self.token}":
            self.send_response(403, "bad token")
            self.end_headers()
            return
        if self.refuse:
            self.send_response(503, self.refuse)
            self.end_headers()
            return
        body = json.dumps({"started": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(f"{self.command} {self.path} {self.headers['Authorization']}")
        started = any(s.startswith("POST") for s in self.seen) and not self.refuse
        body = json.dumps({"running": started, "kernels": 0, "queue_position": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_hub(app: Flask) -> Iterator[type[StubHub]]:
    """A stand-in for the hub's API (not the hub): the LMS's side of the conversation."""

    class handler(StubHub):  # noqa: N801 (a fresh class per test: its own record)
        token = hub_token(str(app.config["SECRET_KEY"]))
        seen: list[str] = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["LAB_HUB_URL"] = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_with_the_hub_answering_the_lab_page_frames_the_learners_notebook(
    world: World, client: FlaskClient, auth: Auth, stub_hub: type[StubHub]
) -> None:
    learner = world.learners[0]
    auth.login(learner.email)
    opened = open_lab(client, world)
    assert opened.headers["Location"] == lab_url(world)
    response = client.get(lab_url(world))
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert response.headers["Cache-Control"] == "no-store"
    assert stub_hub.seen == [
        f"POST /servers/{learner.id}?language=en token {stub_hub.token}",  # Jupyter speaks it
        f"GET /servers/{learner.id} token {stub_hub.token}",
    ]
    relative = f"{world.assignment.course.slug}/{world.assignment.slug}"
    assert f'src="/lab/{learner.id}/notebooks/{relative}/{NOTEBOOK}"' in html
    assert f'action="{lab_url(world)}/submit"' in html
    assert f'href="{lab_url(world)}/reset?notebook={NOTEBOOK}"' in html
    assert client.get(lab_url(world) + "?notebook=other.ipynb").status_code == 404

    stub_hub.refuse = "lab-servers-full"
    response = open_lab(client, world)
    assert response.headers["Location"] == assignment_url(world)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert flash("error", "All lab places are taken right now. Try again in a few minutes.") in (
        page
    )


# --- Who may open it, and when ------------------------------------------------------------


def refused_everywhere(client: FlaskClient, world: World, status: int) -> None:
    """Every lab page of the assignment answers `status` to this browser."""
    token = csrf_token(client, "/")
    assert client.get(lab_url(world)).status_code == status
    assert client.post(lab_url(world) + "/open", data={"csrf_token": token}).status_code == status
    submit = {"csrf_token": token, "submit_key": "lab-key"}
    assert client.post(lab_url(world) + "/submit", data=submit).status_code == status
    assert client.get(lab_url(world) + "/reset").status_code == status
    reset = {"csrf_token": token, "notebook": NOTEBOOK, "confirm": "y"}
    assert client.post(lab_url(world) + "/reset", data=reset).status_code == status


def test_only_the_cohorts_learners_reach_the_lab_of_an_open_released_assignment(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    outsider = factories.learner(
        factories.cohort(factories.program("Other", 10), "Else"), "outsider@test.org"
    )
    auth.login(outsider.email)
    refused_everywhere(client, world, 404)
    auth.logout()

    learner = world.learners[0]
    auth.login(learner.email)
    world.scheduled.opens_at = utcnow() + timedelta(days=1)
    db.session.commit()
    refused_everywhere(client, world, 404)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert "This assignment is not open yet." in page and "Open lab" not in page

    # Open again, but its current version is not released.
    world.scheduled.opens_at = utcnow() - timedelta(days=1)
    world.assignment.version += 1
    db.session.commit()
    refused_everywhere(client, world, 404)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert "This assignment has not been released yet." in page and "Open lab" not in page

    assert not workspaces.root_of(outsider).exists()
    assert not workspaces.root_of(learner).exists()
    assert submission_count() == 0
    auth.logout()

    for path in (lab_url(world), lab_url(world) + "/reset", "/learn/lab/status.json"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path


# --- Submitting from the lab --------------------------------------------------------------


def test_the_saved_notebooks_are_submitted_once_per_key(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    learner = world.learners[0]
    auth.login(learner.email)
    open_lab(client, world)  # the workspace is made even with the hub down
    notebook = workspaces.folder_of(learner, world.assignment) / NOTEBOOK
    saved = grading_world.answer(world.assignment, RIGHT).data
    notebook.write_bytes(saved)

    page = client.get(assignment_url(world)).get_data(as_text=True)
    data = {"csrf_token": csrf_token(client, assignment_url(world)), "submit_key": ""}
    data["submit_key"] = lab_form_key(page, world)
    response = client.post(lab_url(world) + "/submit", data=data)
    assert response.status_code == 302
    match = SUBMISSION_URL_RE.search(response.headers["Location"])
    assert match, response.headers["Location"]
    submission = db.session.get(Submission, int(match.group(1)))
    assert submission is not None
    assert (submission.user_id, submission.cohort_id, submission.attempt, submission.via) == (
        learner.id,
        world.cohort.id,
        1,
        "lab",
    )
    assert submission.files == {NOTEBOOK: hashlib.sha256(saved).hexdigest()}
    assert "Attempt 1 submitted." in client.get(response.headers["Location"]).get_data(as_text=True)

    # The same form again (a double click): the same submission, nothing new.
    notebook.write_bytes(grading_world.answer(world.assignment, WRONG).data)
    again = client.post(lab_url(world) + "/submit", data=data)
    assert again.headers["Location"] == response.headers["Location"]
    assert submission_count() == 1
    assert "Already submitted as attempt 1: nothing new was stored." in client.get(
        again.headers["Location"]
    ).get_data(as_text=True)

    # No notebook saved in the lab folder: said clearly, nothing stored.
    notebook.unlink()
    refused = client.post(lab_url(world) + "/submit", data={**data, "submit_key": "another"})
    assert refused.headers["Location"] == assignment_url(world)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    message = f"{NOTEBOOK} is not in your lab folder: save it there first."
    assert flash("error", message) in page
    # A form without its key is refused too.
    incomplete = client.post(lab_url(world) + "/submit", data={"csrf_token": data["csrf_token"]})
    assert incomplete.headers["Location"] == assignment_url(world)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert flash("error", "This form was incomplete. Reload the page and try again.") in page
    assert submission_count() == 1


def test_a_learner_who_never_opened_the_lab_cannot_submit_from_it(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    learner = world.learners[1]
    auth.login(learner.email)
    token = csrf_token(client, assignment_url(world))
    response = client.post(
        lab_url(world) + "/submit",
        data={"csrf_token": token, "submit_key": "lab-key"},
        headers={"Referer": assignment_url(world)},
    )
    assert response.headers["Location"] == assignment_url(world)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert flash("error", f"{NOTEBOOK} is not in your lab folder: save it there first.") in page
    assert submission_count() == 0
    assert not workspaces.root_of(learner).exists()


# --- Reset to release ---------------------------------------------------------------------


def test_reset_asks_first_then_puts_the_release_back_and_keeps_the_learners_copy(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    learner = world.learners[0]
    auth.login(learner.email)
    open_lab(client, world)
    folder = workspaces.folder_of(learner, world.assignment)
    edited = grading_world.answer(world.assignment, WRONG).data
    (folder / NOTEBOOK).write_bytes(edited)
    reset_url = lab_url(world) + "/reset"

    form = client.get(reset_url)
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert "Reset a notebook to its released version" in html
    assert f'<option selected value="{NOTEBOOK}">{NOTEBOOK}</option>' in html
    assert 'name="confirm" required type="checkbox" value="y">' in html

    unconfirmed = post_form(client, reset_url, {"notebook": NOTEBOOK})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm." in unconfirmed.get_data(as_text=True)
    not_ours = post_form(client, reset_url, {"notebook": "../../other.ipynb", "confirm": "y"})
    assert not_ours.status_code == 400
    assert (folder / NOTEBOOK).read_bytes() == edited
    assert sorted(p.name for p in folder.iterdir()) == [NOTEBOOK]

    confirmed = post_form(client, reset_url, {"notebook": NOTEBOOK, "confirm": "y"})
    assert confirmed.status_code == 302
    assert confirmed.headers["Location"] == f"{lab_url(world)}?notebook={NOTEBOOK}"
    assert (folder / NOTEBOOK).read_bytes() == release_bytes(world)
    kept = [p for p in folder.iterdir() if p.name != NOTEBOOK]
    assert len(kept) == 1 and KEPT_RE.fullmatch(kept[0].name), kept
    assert kept[0].read_bytes() == edited
    page = client.get(assignment_url(world)).get_data(as_text=True)
    message = f"{NOTEBOOK} is back as released. Your previous copy is kept as {kept[0].name}."
    assert flash("info", message) in page


def test_a_reset_sent_twice_within_a_second_keeps_the_learners_copy(
    world: World, client: FlaskClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click on "Reset to release": the second reset keeps the released copy the
    first one put back under another name, never over the learner's work."""
    monkeypatch.setattr(workspaces, "utcnow", lambda: datetime(2026, 5, 1, 12, 30, tzinfo=UTC))
    learner = world.learners[0]
    auth.login(learner.email)
    open_lab(client, world)
    folder = workspaces.folder_of(learner, world.assignment)
    edited = grading_world.answer(world.assignment, WRONG).data
    (folder / NOTEBOOK).write_bytes(edited)
    reset_url = lab_url(world) + "/reset"
    data = {"notebook": NOTEBOOK, "confirm": "y", "csrf_token": csrf_token(client, reset_url)}

    assert client.post(reset_url, data=data).status_code == 302
    assert client.post(reset_url, data=data).status_code == 302
    first = folder / "double-it.before-reset-20260501-123000.ipynb"
    assert first.read_bytes() == edited
    assert (folder / NOTEBOOK).read_bytes() == release_bytes(world)
    others = [p for p in folder.iterdir() if p not in (first, folder / NOTEBOOK)]
    assert len(others) == 1 and others[0].read_bytes() == release_bytes(world)
    page = client.get(assignment_url(world)).get_data(as_text=True)
    assert f"Your previous copy is kept as {others[0].name}." in page


# --- A stopped lab, and the status poll ----------------------------------------------------


def test_a_stopped_labs_urls_tell_its_owner_how_to_reopen_it_and_nobody_else_anything(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    owner, other = world.learners
    relative = f"{world.assignment.course.slug}/{world.assignment.slug}"
    notebook_path = f"/lab/{owner.id}/notebooks/{relative}/{NOTEBOOK}"
    api_path = f"/lab/{owner.id}/api/contents/{relative}/{NOTEBOOK}"

    anonymous = client.get(notebook_path)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")

    auth.login(owner.email)
    page = client.get(notebook_path)
    html = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "<h1>Your lab is stopped</h1>" in html
    assert f'href="{lab_url(world)}" target="_top">Open the lab again</a>' in html
    # It shows in the lab page's frame, where the lab was (every other LMS page refuses frames).
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/learn/").headers["X-Frame-Options"] == "DENY"
    # A stale URL naming no assignment of the learner's: back to their home instead.
    for path in (f"/lab/{owner.id}/", f"/lab/{owner.id}/notebooks/other-course/x/{NOTEBOOK}"):
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == 503 and "Your lab is stopped" in html, path
        assert "Open the lab again" not in html and 'href="/learn/" target="_top"' in html, path

    stopped = {"message": "Your lab was stopped. Open it again from the LMS."}
    got = client.get(api_path)
    assert (got.status_code, got.get_json()) == (503, stopped)
    # The notebook front end saving (no LMS form token: it is not an LMS form).
    saved = client.put(api_path, json={"type": "notebook", "content": {}})
    assert (saved.status_code, saved.get_json()) == (503, stopped)
    auth.logout()

    auth.login(other.email)
    assert client.get(notebook_path).status_code == 404
    assert client.get(api_path).status_code == 404
    assert client.put(api_path, json={}).status_code == 404


def test_the_status_poll_says_the_lab_is_unavailable_while_the_hub_is_down(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    auth.login(world.learners[0].email)
    response = client.get("/learn/lab/status.json")
    assert response.status_code == 200
    assert response.get_json() == {"running": False, "unavailable": True}
    assert response.headers["Cache-Control"] == "no-store"


# --- The labs overview ----------------------------------------------------------------------


def usage_row(html: str, cohort: str) -> tuple[int, int, int]:
    """(labs open now, learners, kernel minutes) of the cohort's row in the usage table."""
    match = re.search(
        rf'<th scope="row">{re.escape(cohort)}</th>\s*'
        r'<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>',
        html,
    )
    assert match, f"no usage row for {cohort}"
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def active_rows(html: str) -> list[tuple[str, str, str]]:
    """(learner, cohort, open since) of each row of "Labs open now", in order; the learner's
    email under the name (two learners may share a name)."""
    return re.findall(
        r'<th scope="row">([^<]+)<br><span class="meta">[^<]+@[^<]+</span></th>\s*'
        r"<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*"
        r'<td class="num">0</td>',
        html,
    )


def kernel_usage(
    recorder: labs.DatabaseRecorder, user: User, folder: str, minutes: int, ago: timedelta
) -> LabKernel:
    """A kernel the hub recorded for the user, set to have run `minutes`, ending `ago`."""
    usage_id = recorder.kernel_started(user.id, folder)
    recorder.kernel_stopped(usage_id)
    kernel = db.session.get(LabKernel, usage_id)
    assert kernel is not None and kernel.ended_at is not None
    end = utcnow() - ago
    kernel.started_at, kernel.ended_at = end - timedelta(minutes=minutes), end
    db.session.commit()  # before the recorder writes again (SQLite: one writer at a time)
    return kernel


def test_the_labs_overview_shows_what_the_hub_recorded_per_cohort(
    world: World, app: Flask, client: FlaskClient, auth: Auth
) -> None:
    course = world.assignment.course
    program = world.cohort.program
    autumn = factories.cohort(program, "Autumn", courses=[course])
    elsewhere = factories.cohort(factories.program("Other", 10), "Evening", courses=[course])
    first, second = world.learners
    third = factories.learner(autumn, "learner2@test.org")
    recorder = labs.DatabaseRecorder(app)
    folder = f"{course.slug}/{world.assignment.slug}"

    recorder.server_started(first.id)  # open now
    recorder.server_started(second.id)
    recorder.server_stopped(second.id, "idle")
    recorder.server_started(third.id)
    recorder.server_started(third.id)  # a restart closes the first: one lab open
    # Spring: 40 + 5 minutes (first) and 15 (second); Autumn: 25 (third), and 50 minutes
    # forty days ago, outside the 30 days shown.
    k1 = kernel_usage(recorder, first, folder, 40, timedelta(hours=2))
    kernel_usage(recorder, first, folder + "/data", 5, timedelta(minutes=30))
    kernel_usage(recorder, second, folder, 15, timedelta(minutes=45))
    k3 = kernel_usage(recorder, third, "notes", 25, timedelta(days=2))
    kernel_usage(recorder, third, folder, 50, timedelta(days=40))
    since = datetime(2026, 5, 1, 9, 15, tzinfo=UTC)
    open_servers = db.session.scalars(
        sa.select(LabServer).where(LabServer.stopped_at.is_(None)).order_by(LabServer.id)
    ).all()
    assert [s.user_id for s in open_servers] == [first.id, third.id]
    open_servers[0].started_at = since
    db.session.commit()
    assert (k1.assignment_id, k3.assignment_id) == (world.assignment.id, None)
    assert (
        db.session.scalar(sa.select(LabServer.stop_reason).where(LabServer.user_id == second.id))
        == "idle"
    )

    auth.login(world.instructor.email)
    course_page = client.get(f"/teach/courses/{course.slug}/labs")
    auth.logout()
    coordinator = factories.coordinator(program)
    auth.login(coordinator.email)
    program_page = client.get(f"/coordinate/programs/{program.slug}/labs")
    auth.logout()

    for response in (course_page, program_page):
        html = response.get_data(as_text=True)
        assert response.status_code == 200, html
        assert "The lab service is not answering" in html
        assert usage_row(html, "Spring") == (1, 2, 60)
        assert usage_row(html, "Autumn") == (1, 1, 25)
        # Newest first: third's lab opened now, first's at `since`.
        rows = active_rows(html)
        assert [(name, cohort) for name, cohort, _ in rows] == [
            (third.name, "Autumn"),
            (first.name, "Spring"),
        ]
        assert rows[1][2] == "May 1, 2026, 9:15\u202fAM UTC"
        assert second.name not in html
    assert usage_row(course_page.get_data(as_text=True), "Evening") == (0, 0, 0)
    assert elsewhere.name not in program_page.get_data(as_text=True)

    # Nobody else's: another course's instructor, another program's coordinator, a learner.
    other_course = factories.course("other-course", "Other course")
    auth.login(factories.instructor(other_course, "teacher@test.org").email)
    assert client.get(f"/teach/courses/{course.slug}/labs").status_code == 404
    assert client.get(f"/teach/courses/{other_course.slug}/labs").status_code == 200
    auth.logout()
    other_program = factories.program("Busan AI School", 10)
    auth.login(factories.coordinator(other_program, "busan@test.org").email)
    assert client.get(f"/coordinate/programs/{program.slug}/labs").status_code == 404
    auth.logout()
    auth.login(first.email)
    assert client.get(f"/teach/courses/{course.slug}/labs").status_code == 403
    assert client.get(f"/coordinate/programs/{program.slug}/labs").status_code == 403

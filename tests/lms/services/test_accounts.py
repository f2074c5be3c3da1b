"""Getting into an account: invitations, password resets, email changes, the password rule.

Mail goes to a real SMTP server (tests/mailserver.py, aiosmtpd on the loopback); queued mail
tasks are run here the way `flask lms worker` runs them.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms import queue
from lms.extensions import db
from lms.models import (
    AccountLink,
    AuditEvent,
    Cohort,
    InvitationBatch,
    Role,
    User,
    UserSession,
    utcnow,
)
from lms.services import accounts, learner_import, passwords, users
from tests import factories
from tests.conftest import PASSWORD, Auth, csrf_token, post_form
from tests.mailserver import MailServer

NEW_PASSWORD = "violet-tiger-harbour-42"


@pytest.fixture
def app_config(app_config: dict[str, Any], mail_server: MailServer) -> dict[str, Any]:
    app_config["SMTP_URL"] = mail_server.url
    app_config["PUBLIC_URL"] = "https://lms.example.edu"
    app_config["RATELIMIT_ENABLED"] = True
    return app_config


def run_queued(app: Flask) -> int:
    """Run every queued task as the worker would; returns how many ran."""
    queue.bind_worker_app(app)
    huey = queue.queue().huey
    ran = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        ran += 1
    return ran


@pytest.fixture
def cohort(app: Flask) -> Cohort:
    program = factories.program()
    return factories.cohort(program, courses=[factories.course()])


def imported(cohort: Cohort, *emails: str) -> list[User]:
    data = "email,name\n" + "".join(f"{e},{e.split('@')[0].title()}\n" for e in emails)
    learner_import.import_learners(cohort, data.encode())
    found = [users.find_by_email(e) for e in emails]
    assert all(u is not None for u in found)
    return [u for u in found if u is not None]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    assert parts.scheme == "https" and parts.netloc == "lms.example.edu", link
    return parts.path


def choose_password(client: FlaskClient, path: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(
        path,
        data={
            "password": password,
            "confirm": password,
            "csrf_token": csrf_token(client, path),
        },
    )


# --- Invitations --------------------------------------------------------------------------


def test_an_imported_learner_is_invited_sets_a_password_and_lands_on_my_learning(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    admin = factories.admin()
    (learner,) = imported(cohort, "minh@example.vn")
    users.set_locale(learner, "vi")
    accounts.invite(learner, admin)
    assert mail_server.received == []  # the worker sends it
    run_queued(app)

    (mail,) = mail_server.to("minh@example.vn")
    assert "Chọn mật khẩu" in mail.html  # the learner's language
    assert mail.message["From"] and "no-reply" in str(mail.message["From"])
    (link,) = mail.links
    path = path_of(link)
    assert path.startswith("/join/")

    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "minh@example.vn" in page.get_data(as_text=True)

    done = choose_password(client, path)
    assert done.status_code == 302
    home = client.get(done.headers["Location"], follow_redirects=True)
    assert home.request.path == "/learn/"

    # The password is theirs from now on, and the link is spent.
    other = app.test_client()
    assert Auth(other).login("minh@example.vn", NEW_PASSWORD).status_code == 302
    again = app.test_client().get(path)  # a stranger's browser: in English
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)
    # The learner's own browser says so in their language.
    assert "đã được sử dụng" in client.get(path).get_data(as_text=True)
    assert accounts.states([learner.id])[learner.id].state == "joined"


def test_a_newer_invitation_makes_the_older_link_useless(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    (learner,) = imported(cohort, "twice@example.vn")
    accounts.invite(learner, None)
    accounts.invite(learner, None)
    run_queued(app)
    first, second = mail_server.wait_for("twice@example.vn", 2)
    old, new = path_of(first.links[0]), path_of(second.links[0])
    assert old != new

    refused = choose_password(client, old)
    assert refused.status_code == 410
    assert "newer link" in refused.get_data(as_text=True)
    assert db.session.get(User, learner.id).password_hash is None  # type: ignore[union-attr]
    assert choose_password(client, new).status_code == 302


def test_an_expired_invitation_is_refused_with_a_way_forward(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    (learner,) = imported(cohort, "late@example.vn")
    accounts.invite(learner, None)
    run_queued(app)
    path = path_of(mail_server.wait_for("late@example.vn")[0].links[0])
    db.session.execute(sa.update(AccountLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    page = client.get(path)
    assert page.status_code == 410
    text = page.get_data(as_text=True)
    assert "expired" in text and "/forgot-password" in text
    assert choose_password(client, path).status_code == 410
    assert db.session.get(User, learner.id).password_hash is None  # type: ignore[union-attr]


def test_a_made_up_or_truncated_link_is_refused(client: FlaskClient) -> None:
    for path in ("/join/not-a-token", "/reset/" + "x" * 43, "/account/email/abc"):
        page = client.get(path)
        assert page.status_code == 410
        assert "not valid" in page.get_data(as_text=True)


def test_the_invitation_link_refuses_a_weak_password_and_stays_usable(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    (learner,) = imported(cohort, "weak@example.vn")
    accounts.invite(learner, None)
    run_queued(app)
    path = path_of(mail_server.wait_for("weak@example.vn")[0].links[0])
    for weak in ("short", "password1234", "weak@example.vn", "aaaaaaaaaaaaaaaa"):
        answer = choose_password(client, path, weak)
        assert answer.status_code == 400, weak
        assert weak not in answer.get_data(as_text=True).split("value=")[-1]
    assert choose_password(client, path).status_code == 302


def test_a_deactivated_learners_link_stops_working(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    (learner,) = imported(cohort, "gone@example.vn")
    accounts.invite(learner, None)
    run_queued(app)
    path = path_of(mail_server.wait_for("gone@example.vn")[0].links[0])
    users.deactivate(learner, None)
    page = client.get(path)
    assert page.status_code == 410
    assert "deactivated" in page.get_data(as_text=True)


def test_a_refused_recipient_shows_as_bounced(
    app: Flask, cohort: Cohort, mail_server: MailServer
) -> None:
    (learner,) = imported(cohort, "bounce-me@example.vn")
    accounts.invite(learner, None)
    run_queued(app)
    state = accounts.states([learner.id])[learner.id]
    assert state.state == "bounced"
    assert state.reason is not None and "550" in state.reason
    assert accounts.state_counts(cohort) == {"bounced": 1}


def test_inviting_is_audited_with_who_and_when(app: Flask, cohort: Cohort) -> None:
    admin = factories.admin()
    (learner,) = imported(cohort, "audit@example.vn")
    accounts.invite(learner, admin)
    imported_event, event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))
    assert (imported_event.subject_id, imported_event.action) == (learner.id, "imported")
    assert (event.actor_id, event.subject_id, event.action) == (admin.id, learner.id, "invited")
    assert utcnow() - event.at < timedelta(minutes=1)


# --- Whole cohorts ---------------------------------------------------------------------------


def test_a_cohort_batch_invites_each_learner_once_and_counts_bounces(
    app: Flask, cohort: Cohort, mail_server: MailServer
) -> None:
    people = imported(cohort, *(f"l{i}@example.vn" for i in range(60)), "bounce-1@example.vn")
    joined = factories.user("joined@example.vn")
    from lms.services import programs

    programs.enrol(joined, cohort)
    batch = accounts.start_batch(cohort, None)
    assert batch.total == 61  # not the one who has a password
    run_queued(app)
    db.session.refresh(batch)
    assert (batch.state, batch.sent, batch.bounced) == ("done", 60, 1)
    assert sorted(r.to for r in mail_server.received) == sorted(
        p.email for p in people if not p.email.startswith("bounce")
    )
    # Again: everyone was invited, so a second round (not re-inviting) sends nothing.
    again = accounts.start_batch(cohort, None)
    assert again.total == 0
    run_queued(app)
    assert len(mail_server.received) == 60
    # Re-inviting reaches everyone who has not joined, bounced ones included.
    third = accounts.start_batch(cohort, None, reinvite=True)
    run_queued(app)
    db.session.refresh(third)
    assert (third.sent, third.bounced) == (60, 1)
    assert accounts.state_counts(cohort) == {"invited": 60, "bounced": 1, "joined": 1}


def test_a_batch_killed_mid_way_resumes_without_mailing_anyone_twice(
    app: Flask, app_config: dict[str, Any], cohort: Cohort, mail_server: MailServer, tmp_path: Path
) -> None:
    """The worker process is killed (SIGKILL) while it sends; the batch, taken for dead, is
    resumed: everyone ends up with one mail, except at most the chunk in flight at the kill,
    which is reported unconfirmed rather than sent again."""
    import json
    import os
    import signal
    import subprocess
    import sys

    emails = [f"k{i:03d}@example.vn" for i in range(120)]
    imported(cohort, *emails)
    batch = accounts.start_batch(cohort, None, enqueue=False)
    mail_server.handler.delay = 0.02  # 120 mails take > 2 s: time to kill it half-way
    config = {k: v for k, v in app_config.items() if isinstance(v, str | int | bool)}
    script = (
        "import json, sys\n"
        "from lms import create_app\n"
        "from lms.services import accounts\n"
        "app = create_app(json.loads(sys.argv[1]))\n"
        "with app.app_context():\n"
        "    accounts.run_batch(int(sys.argv[2]))\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(config), str(batch.id)],
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        deadline = time.monotonic() + 60
        while len(mail_server.received) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(mail_server.received) >= 40, "the worker sent nothing"
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(timeout=30)
    before = len(mail_server.received)
    assert before < len(emails), "the kill came too late to test anything"
    mail_server.handler.delay = 0

    db.session.expire_all()
    killed = db.session.get(InvitationBatch, batch.id)
    assert killed is not None and killed.state == "running"
    # Taken for dead once its heartbeat is old: then it may be resumed.
    killed.heartbeat_at = utcnow() - accounts.STALE_AFTER - timedelta(seconds=1)
    db.session.commit()
    assert accounts.is_stale(killed)
    accounts.resume(killed)
    run_queued(app)

    db.session.expire_all()
    done = db.session.get(InvitationBatch, batch.id)
    assert done is not None
    progress = accounts.batch_progress(done)
    counts: dict[str, int] = {}
    for received in mail_server.received:
        counts[received.to] = counts.get(received.to, 0) + 1
    assert max(counts.values()) == 1, "someone got two invitations"
    assert progress["state"] == "done"
    assert progress["sent"] + progress["unconfirmed"] == len(emails)
    assert progress["unconfirmed"] <= accounts.CHUNK
    # Everyone unconfirmed is the kill's chunk; everyone else has exactly one mail.
    assert len(counts) >= len(emails) - progress["unconfirmed"]


def test_the_handed_out_links_file_is_formula_safe_and_replaces_mailed_links(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    coordinator = factories.coordinator(cohort.program)
    (learner, evil) = imported(cohort, "file@example.vn", "evil@example.vn")
    evil.name = '=HYPERLINK("http://x")'
    db.session.commit()
    accounts.invite(learner, None)
    run_queued(app)
    mailed = path_of(mail_server.wait_for("file@example.vn")[0].links[0])

    Auth(client).login(coordinator.email)
    path = f"/cohorts/{cohort.slug}/invitations/"
    refused = post_form(client, path + "links.csv", {})
    assert refused.status_code == 303  # the confirmation box was not ticked
    answer = post_form(client, path + "links.csv", {"confirm": "y"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    text = answer.data.decode("utf-8-sig")
    assert "\"'=HYPERLINK" in text
    rows = [line for line in text.splitlines()[1:] if "file@example.vn" in line]
    (row,) = rows
    link = row.split('","')[2]
    assert path_of(link).startswith("/join/")
    assert choose_password(app.test_client(), mailed).status_code == 410
    assert choose_password(app.test_client(), path_of(link)).status_code == 302
    state = accounts.states([evil.id])[evil.id]
    assert (state.state, state.delivery) == ("invited", "file")


def test_handed_out_links_never_open_a_staff_account_and_instructors_get_none(
    app: Flask, client: FlaskClient, cohort: Cohort
) -> None:
    coordinator = factories.coordinator(cohort.program)
    (learner, colleague) = imported(cohort, "plain@example.vn", "also.staff@example.vn")
    # Enrolled, not joined yet, and an instructor somewhere: a link to them in a file would
    # hand their course to whoever holds the file.
    users.grant_role(colleague, Role.INSTRUCTOR, course=factories.course("other-course", "Other"))
    db.session.commit()
    path = f"/cohorts/{cohort.slug}/invitations/"

    Auth(client).login(coordinator.email)
    text = post_form(client, path + "links.csv", {"confirm": "y"}).data.decode("utf-8-sig")
    assert "plain@example.vn" in text and "also.staff@example.vn" not in text
    assert "Staff accounts are left out" in client.get(path).get_data(as_text=True)

    teacher = factories.instructor(cohort.courses[0])
    other = app.test_client()
    Auth(other).login(teacher.email)
    page = other.get(path)
    assert page.status_code == 200 and "links.csv" not in page.get_data(as_text=True)
    assert post_form(other, path + "links.csv", {"confirm": "y"}).status_code == 403

    admin = factories.admin()
    third = app.test_client()
    Auth(third).login(admin.email)
    text = post_form(third, path + "links.csv", {"confirm": "y"}).data.decode("utf-8-sig")
    assert "also.staff@example.vn" in text


def test_the_invitations_page_shows_states_and_invites_one(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    instructor = factories.instructor(cohort.courses[0])
    (fresh, bounced) = imported(cohort, "fresh@example.vn", "bounce-x@example.vn")
    accounts.invite(bounced, None)
    run_queued(app)
    Auth(client).login(instructor.email)
    path = f"/cohorts/{cohort.slug}/invitations/"
    page = client.get(path).get_data(as_text=True)
    assert "Not invited: 1" in page and "Bounced: 1" in page
    assert "550" in page
    answer = client.post(
        f"{path}learners/{fresh.id}", data={"csrf_token": csrf_token(client, path)}
    )
    assert answer.status_code == 302
    run_queued(app)
    assert len(mail_server.wait_for("fresh@example.vn")) == 1
    filtered = client.get(path + "?state=invited").get_data(as_text=True)
    assert "fresh@example.vn" in filtered and "bounce-x@example.vn" not in filtered


def test_the_cohort_invitation_page_shows_live_progress(
    app: Flask, client: FlaskClient, cohort: Cohort, mail_server: MailServer
) -> None:
    admin = factories.admin()
    imported(cohort, "p1@example.vn", "p2@example.vn")
    Auth(client).login(admin.email)
    path = f"/cohorts/{cohort.slug}/invitations/"
    answer = post_form(client, path + "send", {"confirm": "y"})
    assert answer.status_code == 302
    batch_page = answer.headers["Location"]
    progress = client.get(batch_page + "/progress").get_json()
    assert (progress["state"], progress["total"], progress["sent"]) == ("queued", 2, 0)
    run_queued(app)
    progress = client.get(batch_page + "/progress").get_json()
    assert (progress["state"], progress["sent"], progress["done"]) == ("done", 2, 2)
    assert "<progress" in client.get(batch_page).get_data(as_text=True)


def test_the_cli_imports_and_invites(
    app: Flask, cohort: Cohort, mail_server: MailServer, tmp_path: Path
) -> None:
    csv_file = tmp_path / "learners.csv"
    csv_file.write_text("email,name\ncli1@example.vn,One\ncli2@example.vn,Two\n")
    result = app.test_cli_runner().invoke(
        args=["lms", "import-learners", str(csv_file), "--cohort", cohort.slug, "--invite"]
    )
    assert result.exit_code == 0, result.output
    assert "2 sent" in result.output
    assert {r.to for r in mail_server.received} == {"cli1@example.vn", "cli2@example.vn"}


# --- Forgotten passwords ----------------------------------------------------------------------


def forgot(client: FlaskClient, email: str) -> Any:
    return post_form(client, "/forgot-password", {"email": email})


def test_a_reset_link_sets_a_new_password_and_ends_every_other_session(
    app: Flask, client: FlaskClient, mail_server: MailServer
) -> None:
    factories.user("reset@example.vn")
    elsewhere = app.test_client()
    assert Auth(elsewhere).login("reset@example.vn").status_code == 302

    assert "Forgot your password?" in client.get("/login").get_data(as_text=True)
    answer = forgot(client, "Reset@Example.vn")
    assert answer.status_code == 302
    run_queued(app)
    (mail,) = mail_server.to("reset@example.vn")
    path = path_of(mail.links[0])
    assert path.startswith("/reset/")
    assert choose_password(client, path).status_code == 302

    assert elsewhere.get("/learn/").status_code in (302, 401)  # signed out there
    active = db.session.scalars(
        sa.select(UserSession).where(UserSession.revoked_at.is_(None))
    ).all()
    assert len(active) == 1  # only the browser that reset it
    assert users.authenticate("reset@example.vn", PASSWORD) is None
    assert users.authenticate("reset@example.vn", NEW_PASSWORD) is not None
    assert choose_password(app.test_client(), path).status_code == 410  # used


def test_a_reset_request_says_the_same_for_unknown_addresses_and_mails_nobody(
    app: Flask, client: FlaskClient, mail_server: MailServer
) -> None:
    factories.user("known@example.vn")
    known = forgot(client, "known@example.vn")
    unknown = forgot(client, "nobody@example.vn")
    assert known.status_code == unknown.status_code == 302
    known_text = client.get("/login").get_data(as_text=True)
    assert "If an account uses" in known_text
    run_queued(app)
    assert [r.to for r in mail_server.received] == ["known@example.vn"]


def test_a_reset_request_takes_as_long_for_an_unknown_address(
    app: Flask, client: FlaskClient
) -> None:
    """Enumeration by timing: the request does the same work either way (the worker finds
    out whether the address exists), so the medians stay close."""
    factories.user("timed@example.vn")
    app.config["RATELIMIT_ENABLED"] = False
    token = csrf_token(client, "/forgot-password")

    def timed(email: str) -> float:
        start = time.perf_counter()
        client.post("/forgot-password", data={"email": email, "csrf_token": token})
        return time.perf_counter() - start

    known, unknown = [], []
    for i in range(15):
        known.append(timed("timed@example.vn"))
        unknown.append(timed(f"nobody{i}@example.vn"))
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.5 < ratio < 2.0, (statistics.median(known), statistics.median(unknown))


def test_reset_requests_are_throttled_per_address_and_per_client(
    app: Flask, mail_server: MailServer
) -> None:
    factories.user("busy@example.vn")
    client = app.test_client()
    answers = [forgot(client, "busy@example.vn").status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]  # 3 per hour per address
    run_queued(app)
    assert len(mail_server.to("busy@example.vn")) == 3
    # From another address (client), the per-address limit still holds.
    other = app.test_client()
    assert forgot(other, "busy@example.vn").status_code == 429
    # One client asking for many addresses is stopped too.
    app.config["RESET_LIMIT_PER_CLIENT"] = "5 per hour"
    spray = app.test_client()
    codes = [
        spray.post(
            "/forgot-password",
            data={"email": f"x{i}@example.vn", "csrf_token": csrf_token(spray, "/forgot-password")},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        ).status_code
        for i in range(7)
    ]
    assert codes[-1] == 429 and codes.count(429) >= 2


# --- Own account: password and email ---------------------------------------------------------


def test_changing_ones_password_needs_the_current_one_and_ends_other_sessions(
    app: Flask, client: FlaskClient
) -> None:
    factories.user("self@example.vn")
    elsewhere = app.test_client()
    Auth(elsewhere).login("self@example.vn")
    Auth(client).login("self@example.vn")
    wrong = post_form(
        client,
        "/account",
        {
            "pw-current": "nope",
            "pw-password": NEW_PASSWORD,
            "pw-confirm": NEW_PASSWORD,
            "pw-submit": "1",
        },
    )
    assert wrong.status_code == 400
    weak = post_form(
        client,
        "/account",
        {
            "pw-current": PASSWORD,
            "pw-password": "qwertyuiop12",
            "pw-confirm": "qwertyuiop12",
            "pw-submit": "1",
        },
    )
    assert weak.status_code == 400
    ok = post_form(
        client,
        "/account",
        {
            "pw-current": PASSWORD,
            "pw-password": NEW_PASSWORD,
            "pw-confirm": NEW_PASSWORD,
            "pw-submit": "1",
        },
    )
    assert ok.status_code == 302
    assert client.get("/account").status_code == 200  # this browser stays signed in
    assert elsewhere.get("/account").status_code == 302  # the other one is signed out
    assert users.authenticate("self@example.vn", NEW_PASSWORD) is not None


def test_a_new_email_address_counts_once_confirmed_from_that_address(
    app: Flask, client: FlaskClient, mail_server: MailServer
) -> None:
    me = factories.user("old@example.vn")
    factories.user("taken@example.vn")
    Auth(client).login("old@example.vn")
    taken = post_form(
        client,
        "/account",
        {"em-email": "taken@example.vn", "em-current": PASSWORD, "em-submit": "1"},
    )
    assert taken.status_code == 400
    asked = post_form(
        client, "/account", {"em-email": "New@Example.vn", "em-current": PASSWORD, "em-submit": "1"}
    )
    assert asked.status_code == 302
    run_queued(app)
    assert mail_server.to("old@example.vn") == []
    (mail,) = mail_server.to("new@example.vn")
    path = path_of(mail.links[0])
    assert db.session.get(User, me.id).email == "old@example.vn"  # type: ignore[union-attr]
    assert client.get(path).status_code == 200  # a GET changes nothing (mail scanners)
    db.session.expire_all()
    assert db.session.get(User, me.id).email == "old@example.vn"  # type: ignore[union-attr]
    confirmed = post_form(client, path, {})
    assert confirmed.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, me.id).email == "new@example.vn"  # type: ignore[union-attr]
    assert users.authenticate("new@example.vn", PASSWORD) is not None
    assert users.authenticate("old@example.vn", PASSWORD) is None
    # The old address hears of it, with no link that could undo or redo anything.
    run_queued(app)
    (notice,) = mail_server.to("old@example.vn")
    assert "changed" in notice.subject
    assert "new@example.vn" in notice.text
    assert notice.links == []
    assert post_form(client, path, {}).status_code == 410  # the link worked once


# --- The password rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "eleven-char",
        "password1234",
        "qwertyuiop12",
        "aaaaaaaaaaaaaaaa",
        "123456789012",
        "abcdefghijkl",
    ],
)
def test_weak_passwords_are_refused(app: Flask, password: str) -> None:
    assert passwords.problem(password) is not None


def test_the_persons_own_email_and_name_are_not_a_password(app: Flask) -> None:
    assert passwords.problem("nguyen.van.minh", ["nguyen.van.minh@example.vn"]) is not None


@pytest.mark.parametrize(
    "password",
    [NEW_PASSWORD, "correct-horse-battery", "tôi yêu hà nội mùa thu", "한국어 비밀번호는 안전해요"],
)
def test_long_unguessable_passwords_of_any_script_are_accepted(app: Flask, password: str) -> None:
    assert passwords.problem(password) is None


def test_the_common_password_list_comes_from_a_package(app: Flask) -> None:
    assert len(passwords._COMMON) >= 10_000
    assert "password" in passwords._COMMON and "qwertyuiop" in passwords._COMMON


def test_a_batch_stopped_by_a_mail_server_outage_goes_on_where_it_stopped(
    app: Flask, cohort: Cohort, mail_server: MailServer
) -> None:
    """The server cannot be reached: the round stops and says why; nobody is counted as
    invited. Once the server is back, resuming sends everyone one mail."""
    from lms.extensions import mail

    imported(cohort, *(f"o{i}@example.vn" for i in range(70)))
    app.config["MAIL_PORT"] = dead_port()
    mail.init_app(app)
    batch = accounts.start_batch(cohort, None)
    run_queued(app)
    db.session.refresh(batch)
    assert batch.state == "failed" and "Connection refused" in batch.error
    assert accounts.batch_progress(batch)["done"] == 0
    assert accounts.state_counts(cohort) == {"not-invited": 70}

    app.config["MAIL_PORT"] = mail_server.port
    mail.init_app(app)
    accounts.resume(batch)
    run_queued(app)
    db.session.refresh(batch)
    assert (batch.state, batch.sent) == ("done", 70)
    assert sorted(r.to for r in mail_server.received) == sorted(
        f"o{i}@example.vn" for i in range(70)
    )


def dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

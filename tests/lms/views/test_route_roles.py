"""Every URL rule of the app against every role: who reaches it, who is refused, and how.

ROUTES below is the route-by-role table a reviewer reads: one line per rule of the app and HTTP
method, one column per role. test_the_table_lists_every_rule_of_the_app fails on a rule with no
line (a new route must say who may reach it) and on a line whose rule is gone; the walk signs
in as each role in one world of real rows (tests/route_world.py) and sends every request of
the table, with the role's own objects in the URL and, where the URL names any, someone
else's too. All differences are reported together, one line each.
"""

# ruff: noqa: E501  (ROUTES keeps one route per line, aligned in columns: wider than the code)

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from lms import create_app
from tests import route_world
from tests.conftest import Auth, csrf_token, make_config
from tests.route_world import ROLES, RouteWorld

Cell = Literal["ok", "own", "-", "404", "tok"]
Row = tuple[Cell, Cell, Cell, Cell, Cell]  # anonymous, learner, instructor, coordinator, admin

# One line per "METHOD rule" of the app (url_map, less HEAD, OPTIONS and static files), one
# column per role: anonymous; a learner enrolled in a cohort; the instructor of one course; the
# coordinator of one program; a site admin (each user has that one role). Each cell says what
# that role gets:
#   "ok"   reaches the view, whoever's objects the URL names: any answer but 401, 403, 404 or
#          Flask-Login's redirect to /login (a form refused with 400, a 409, a redirect
#          elsewhere, the stopped lab's 503 all count)
#   "own"  reaches it with what it owns or governs in the URL (its own submission, lab, export or
#          certificate; the course it teaches, the program it coordinates, the cohort it is in),
#          and gets 404 with someone else's (a classmate's submission, another course, program or
#          cohort, another user's lab): their existence is not disclosed
#   "-"    refused the usual way: anonymous is sent to /login (401 under /api/v1), others get 403
#   "404"  refused as if it did not exist
#   "tok"  answers only a service's own token (JupyterHub's, for lab sign-in): 403 to every role
# POSTs carry a valid CSRF token; where the real thing would change much they send a form that
# fails validation (the comment says so): reaching the view is what is checked. The lab hub is
# not running here, so the lab routes answer with a message, a redirect or 503: reached.
# fmt: off
ROUTES: dict[str, Row] = {
    # Public, and signing in and out
    #                       anon   learn  instr  coord  admin
    "GET /":               ("ok",  "ok",  "ok",  "ok",  "ok"),  # anonymous: answered with /login (nothing to show); the others: their home
    "GET /healthz":        ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /favicon.ico":    ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /login":          ("ok",  "ok",  "ok",  "ok",  "ok"),
    "POST /login":         ("ok",  "ok",  "ok",  "ok",  "ok"),  # empty form: 400
    "POST /logout":        ("-",   "ok",  "ok",  "ok",  "ok"),  # signs out: walked last
    "POST /language":      ("ok",  "ok",  "ok",  "ok",  "ok"),  # no language chosen: back to /
    "GET /welcome":        ("-",   "ok",  "ok",  "ok",  "ok"),
    # Links from mails (a made-up token: the "this link does not work" page, 410) and one's own account
    #                                  anon   learn  instr  coord  admin
    "GET /join/<token>":              ("ok",  "ok",  "ok",  "ok",  "ok"),
    "POST /join/<token>":             ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /reset/<token>":             ("ok",  "ok",  "ok",  "ok",  "ok"),
    "POST /reset/<token>":            ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /account/email/<token>":     ("ok",  "ok",  "ok",  "ok",  "ok"),
    "POST /account/email/<token>":    ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /forgot-password":           ("ok",  "ok",  "ok",  "ok",  "ok"),
    "POST /forgot-password":          ("ok",  "ok",  "ok",  "ok",  "ok"),  # no email: 400
    "GET /account":                   ("-",   "ok",  "ok",  "ok",  "ok"),
    "GET /account/data.zip":          ("-",   "ok",  "ok",  "ok",  "ok"),  # one's own data
    "POST /account":                  ("-",   "ok",  "ok",  "ok",  "ok"),  # no button pressed: the page again
    # Invitations of a cohort: admins; the program's coordinators; the instructors of its courses
    #                                                                              anon   learn  instr  coord  admin
    "GET /cohorts/<cohort_slug>/invitations/":                                    ("-",   "-",   "own", "own", "ok"),
    "POST /cohorts/<cohort_slug>/invitations/send":                               ("-",   "-",   "own", "own", "ok"),  # not confirmed: back to the page
    "POST /cohorts/<cohort_slug>/invitations/learners/<int:user_id>":             ("-",   "-",   "own", "own", "ok"),  # invites the cohort's learner
    "POST /cohorts/<cohort_slug>/invitations/links.csv":                          ("-",   "-",   "-",   "own", "ok"),  # not confirmed: back to the page; instructors mail, never hand out
    "GET /cohorts/<cohort_slug>/invitations/batches/<int:invitation_id>":         ("-",   "-",   "own", "own", "ok"),
    "GET /cohorts/<cohort_slug>/invitations/batches/<int:invitation_id>/progress":("-",   "-",   "own", "own", "ok"),
    "POST /cohorts/<cohort_slug>/invitations/batches/<int:invitation_id>/resume": ("-",   "-",   "own", "own", "ok"),  # not stale: nothing to resume
    "GET /verify":         ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /verify/<code>":  ("ok",  "ok",  "ok",  "ok",  "ok"),
    # Certificates
    #                                                   anon   learn  instr  coord  admin
    "GET /certificates/<code>.pdf":                    ("-",   "own", "404", "own", "ok"),  # the learner's own; the program's staff; 404 for anyone else
    "POST /certificates/cohorts/<cohort_slug>/issue":  ("-",   "-",   "-",   "own", "ok"),  # not confirmed: nothing issued
    "GET /certificates/cohorts/<cohort_slug>":         ("-",   "-",   "-",   "own", "ok"),  # the cohort's issued certificates
    "GET /certificates/<code>/revoke":                 ("-",   "-",   "-",   "own", "ok"),
    "POST /certificates/<code>/revoke":                ("-",   "-",   "-",   "own", "ok"),  # no reason: 400, nothing revoked
    # Learner (/learn): enrolled learners, in their own cohorts, their own work
    #                                                                                         anon   learn  instr  coord  admin
    "GET /learn/":                                                                           ("-",   "ok",  "-",   "-",   "-"),
    "GET /learn/cohorts/<cohort_slug>/courses/<course_slug>":                                ("-",   "own", "-",   "-",   "-"),
    "GET /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>.zip":          ("-",   "own", "-",   "-",   "-"),
    "GET /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/":             ("-",   "own", "-",   "-",   "-"),
    "POST /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/":            ("-",   "own", "-",   "-",   "-"),  # no notebook: 400
    "GET /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/lab":          ("-",   "own", "-",   "-",   "-"),  # hub down: the Start page, saying so
    "POST /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/lab/open":     ("-",   "own", "-",   "-",   "-"),  # hub down: back to the assignment, saying so
    "POST /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/lab/submit":  ("-",   "own", "-",   "-",   "-"),  # incomplete form: back to the assignment
    "GET /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/lab/reset":    ("-",   "own", "-",   "-",   "-"),
    "POST /learn/cohorts/<cohort_slug>/courses/<course_slug>/<assignment_slug>/lab/reset":   ("-",   "own", "-",   "-",   "-"),  # no notebook chosen: 400
    "GET /learn/lab/status.json":                                                            ("-",   "ok",  "-",   "-",   "-"),  # hub down: {"unavailable": true}
    "GET /learn/submissions/<int:submission_id>":                                            ("-",   "own", "-",   "-",   "-"),  # a classmate's: 404
    "GET /learn/submissions/<int:submission_id>/status.json":                                ("-",   "own", "-",   "-",   "-"),
    "GET /learn/submissions/<int:submission_id>/feedback/<notebook>.html":                   ("-",   "own", "-",   "-",   "-"),
    "GET /learn/submissions/<int:submission_id>/files/<path:file_name>":                     ("-",   "own", "-",   "-",   "-"),  # a classmate's: 404
    # A stopped lab's URLs (the proxy sends them here): every signed-in user, their own lab only
    #                                        anon   learn  instr  coord  admin
    # JupyterHub asks whose a session cookie is, with its token: no browser gets an answer
    "POST /labs/identity":                  ("tok", "tok", "tok", "tok", "tok"),
    "GET /lab/<int:owner>/":                ("-",   "own", "own", "own", "own"),  # 503: stopped
    "POST /lab/<int:owner>/":               ("-",   "own", "own", "own", "own"),  # 503
    "PUT /lab/<int:owner>/":                ("-",   "own", "own", "own", "own"),  # 503
    "GET /lab/<int:owner>/<path:rest>":     ("-",   "own", "own", "own", "own"),  # 503
    "POST /lab/<int:owner>/<path:rest>":    ("-",   "own", "own", "own", "own"),  # 503
    "PUT /lab/<int:owner>/<path:rest>":     ("-",   "own", "own", "own", "own"),  # 503
    "DELETE /lab/<int:owner>/<path:rest>":  ("-",   "own", "own", "own", "own"),  # 503
    # Instructor (/teach): instructors in the courses they teach, admins everywhere
    #                                                                                               anon   learn  instr  coord  admin
    "GET /teach/":                                                                                 ("-",   "-",   "ok",  "-",   "ok"),
    "GET /teach/courses/<slug>":                                                                   ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/courses/<slug>/labs":                                                              ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/courses/<slug>/assignments/<assignment_slug>":                                     ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/submissions":                         ("-",   "-",   "own", "-",   "ok"),
    "POST /teach/courses/<slug>/assignments/<assignment_slug>/batches":                            ("-",   "-",   "own", "-",   "ok"),  # queues a batch (no worker runs)
    "POST /teach/courses/<slug>/assignments/<assignment_slug>/regrade":                            ("-",   "-",   "own", "-",   "ok"),  # nothing chosen: back to the submissions
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/grade":                               ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/grade/<grade_id>":                    ("-",   "-",   "own", "-",   "ok"),
    "POST /teach/courses/<slug>/assignments/<assignment_slug>/grade/<grade_id>":                   ("-",   "-",   "own", "-",   "ok"),  # names no answer: back to the question
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>/deadlines":     ("-",   "-",   "own", "-",   "ok"),
    "POST /teach/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>/deadlines":    ("-",   "-",   "own", "-",   "ok"),  # empty form: 400
    "POST /teach/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>/extensions":   ("-",   "-",   "own", "-",   "ok"),  # empty form: 400
    "POST /teach/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>/feedback":     ("-",   "-",   "own", "-",   "ok"),  # neither release nor withdraw: 400
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/cohorts/<cohort_slug>/learners.json": ("-",   "-",   "own", "-",   "ok"),  # the extension's learner suggestions
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/insight":                             ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/courses/<slug>/assignments/<assignment_slug>/similarity/<int:sub_a>/<int:sub_b>":  ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/batches/<int:batch_id>":                                                           ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/batches/<int:batch_id>/progress.json":                                             ("-",   "-",   "own", "-",   "ok"),
    "POST /teach/batches/<int:batch_id>/cancel":                                                   ("-",   "-",   "own", "-",   "ok"),  # cancels the batch's queued jobs
    "GET /teach/submissions/<int:submission_id>":                                                  ("-",   "-",   "own", "-",   "ok"),
    "POST /teach/submissions/<int:submission_id>/cells/<int:cell_id>":                             ("-",   "-",   "own", "-",   "ok"),  # no score: saved as none (a grade event)
    "GET /teach/submissions/<int:submission_id>/feedback/<notebook>.html":                         ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/submissions/<int:submission_id>/history":                                          ("-",   "-",   "own", "-",   "ok"),
    "POST /teach/exports":                                                                         ("-",   "-",   "ok",  "-",   "ok"),  # empty form: 400
    "GET /teach/exports/<int:job_id>":                                                             ("-",   "-",   "own", "-",   "ok"),  # own: the exports one asked for
    "GET /teach/exports/<int:job_id>/progress.json":                                               ("-",   "-",   "own", "-",   "ok"),
    "GET /teach/exports/<int:job_id>/download":                                                    ("-",   "-",   "own", "-",   "ok"),
    # Coordinator (/coordinate): coordinators in the programs they coordinate, admins everywhere
    #                                                          anon   learn  instr  coord  admin
    "GET /coordinate/":                                       ("-",   "-",   "-",   "ok",  "ok"),
    "GET /coordinate/programs/<slug>":                        ("-",   "-",   "-",   "own", "ok"),
    "GET /coordinate/programs/<slug>/labs":                   ("-",   "-",   "-",   "own", "ok"),
    "GET /coordinate/cohorts/<slug>":                         ("-",   "-",   "-",   "own", "ok"),
    "GET /coordinate/cohorts/<slug>/learners/<int:user_id>":  ("-",   "-",   "-",   "own", "ok"),
    "POST /coordinate/exports":                               ("-",   "-",   "-",   "ok",  "ok"),  # empty form: 400
    "GET /coordinate/exports/<int:job_id>":                   ("-",   "-",   "-",   "own", "ok"),  # own: the exports one asked for
    "GET /coordinate/exports/<int:job_id>/progress.json":     ("-",   "-",   "-",   "own", "ok"),
    "GET /coordinate/exports/<int:job_id>/download":          ("-",   "-",   "-",   "own", "ok"),
    # Administration (/admin): admins only
    #                                             anon   learn  instr  coord  admin
    "GET /admin/":                               ("-",   "-",   "-",   "-",   "ok"),
    "GET /admin/users":                          ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/users":                         ("-",   "-",   "-",   "-",   "ok"),  # empty form: 400
    "GET /admin/users/<int:user_id>":            ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/users/<int:user_id>":           ("-",   "-",   "-",   "-",   "ok"),  # empty form: the page again
    "POST /admin/users/<int:user_id>/deactivate": ("-",  "-",   "-",   "-",   "ok"),  # without the page's email: nothing changes
    "POST /admin/users/<int:user_id>/reactivate": ("-",  "-",   "-",   "-",   "ok"),
    "POST /admin/grants/<int:grant_id>/revoke":  ("-",   "-",   "-",   "-",   "ok"),  # revokes a spare instructor grant
    "POST /admin/users/<int:user_id>/invite":    ("-",   "-",   "-",   "-",   "ok"),  # queues an invitation mail
    "GET /admin/users/<int:user_id>/data.zip":   ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/users/<int:user_id>/erase":     ("-",   "-",   "-",   "-",   "ok"),  # email not typed: nothing erased
    "POST /admin/users/<int:user_id>/merge":     ("-",   "-",   "-",   "-",   "ok"),  # no email: nothing merged
    "POST /admin/enrolments/<int:enrolment_id>/withdraw":  ("-", "-", "-", "-", "ok"),  # a spare learner's enrolment
    "POST /admin/enrolments/<int:enrolment_id>/reinstate": ("-", "-", "-", "-", "ok"),
    "GET /admin/programs":                       ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/programs":                      ("-",   "-",   "-",   "-",   "ok"),  # empty form: 400
    "GET /admin/cohorts":                        ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/cohorts":                       ("-",   "-",   "-",   "-",   "ok"),  # empty form: 400
    "GET /admin/cohorts/<slug>":                 ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/cohorts/<slug>":                ("-",   "-",   "-",   "-",   "ok"),  # no file: 400
    "GET /admin/organisations":                  ("-",   "-",   "-",   "-",   "ok"),
    "GET /admin/rush":                           ("-",   "-",   "-",   "-",   "ok"),
    "POST /admin/organisations":                 ("-",   "-",   "-",   "-",   "ok"),  # empty form: 400
    # JSON API (/api/v1): the roles of the bearer token's user; a session without a token gets 401
    #                                                             anon   learn  instr  coord  admin
    "GET /api/v1/openapi.json":                                  ("ok",  "ok",  "ok",  "ok",  "ok"),
    "GET /api/v1/assignments":                                   ("-",   "ok",  "ok",  "ok",  "ok"),
    "POST /api/v1/assignments/<int:assignment_id>/submissions":  ("-",   "own", "-",   "404", "-"),  # no notebook: 400; staff: 403 (only learners submit)
    "GET /api/v1/assignments/<int:assignment_id>/submissions":   ("-",   "-",   "own", "404", "ok"),
    "GET /api/v1/assignments/<int:assignment_id>/grades":        ("-",   "-",   "own", "404", "ok"),
    "POST /api/v1/assignments/<int:assignment_id>/batches":      ("-",   "-",   "own", "404", "ok"),  # {"scope": "none"}: 400
    "GET /api/v1/batches/<int:batch_id>":                        ("-",   "404", "own", "404", "ok"),
    "POST /api/v1/batches/<int:batch_id>/cancel":                ("-",   "404", "own", "404", "ok"),  # cancels it (409 once it has ended)
    "GET /api/v1/submissions/<int:submission_id>":               ("-",   "own", "own", "404", "ok"),  # a learner's own, any of the courses one teaches
}
# fmt: on

# Bodies of the API's POSTs that take JSON (the others send an empty form).
JSON_BODIES: dict[str, dict[str, Any]] = {
    "POST /api/v1/assignments/<int:assignment_id>/batches": {"scope": "none"},
}
LOGOUT = "POST /logout"
CSRF_REFUSED = "This form has expired or was not sent by this site."
REACHED = "reached"


def app_rules(app: Flask) -> dict[str, str]:
    """The endpoint of every "METHOD rule" of the app but the static files."""
    rules = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rules[f"{method} {rule.rule}"] = rule.endpoint
    return rules


def test_the_table_lists_every_rule_of_the_app(tmp_path: Path) -> None:
    rules = app_rules(create_app(make_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")))
    missing = [f"  {key}  ({rules[key]})" for key in sorted(set(rules) - set(ROUTES))]
    gone = [f"  {key}" for key in sorted(set(ROUTES) - set(rules))]
    problems = []
    if missing:
        problems += ["rules of the app with no line in ROUTES (say who may reach them):", *missing]
    if gone:
        problems += ["lines of ROUTES for rules the app no longer has:", *gone]
    assert not problems, "\n".join(problems)


def test_the_table_is_well_formed() -> None:
    problems = []
    for key, row in ROUTES.items():
        method, _, rule = key.partition(" ")
        if method not in ("GET", "POST", "PUT", "DELETE", "PATCH") or not rule.startswith("/"):
            problems.append(f"{key}: not 'METHOD /rule'")
        if row[0] not in ("ok", "-", "tok"):
            problems.append(f"{key}: anonymous reaches it (ok), is refused (-) or needs a token")
        if "own" in row and "<" not in rule:
            problems.append(f"{key}: 'own' needs an object named in the URL")
    assert not problems, "\n".join(problems)


# --- The walk -----------------------------------------------------------------------------


def dead_port() -> int:
    """A port nobody listens on (bound, then let go): the lab hub is down there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["LAB_HUB_URL"] = f"http://127.0.0.1:{dead_port()}"
    return app_config


@dataclass(frozen=True)
class Mismatch:
    role: str
    method: str
    url: str
    status: int | None
    got: str
    expected: str

    def __str__(self) -> str:
        return (
            f"{self.role:<11} {self.method:<6} {self.url}  -> {self.status} ({self.got}), "
            f"expected {self.expected}"
        )


def expectations(role: str, key: str) -> list[tuple[str, str]]:
    """(side, outcome) to check for the role on the route: side "mine" fills the URL with what
    the role owns or governs, "theirs" with someone else's."""
    cell = ROUTES[key][ROLES.index(role)]
    if cell == "ok":
        names_objects = "<" in key
        return [("mine", REACHED), ("theirs", REACHED)] if names_objects else [("mine", REACHED)]
    if cell == "own":
        return [("mine", REACHED), ("theirs", "404")]
    if cell == "tok":
        return [("mine", "403")]
    if cell == "-":
        if role != "anonymous":
            return [("mine", "403")]
        return [("mine", "401" if is_api(key) else "login")]
    return [("mine", cell)]


def is_api(key: str) -> bool:
    return key.split(" ", 1)[1].startswith("/api/")


def outcome(response: TestResponse) -> str:
    """What the answer means: reached the view, or the refusal it is."""
    status = response.status_code
    # 410: a link from a mail that does not work (the page says why): the view answered.
    if 200 <= status < 300 or status in (409, 410, 503):
        return REACHED
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("Location", ""))
        # Flask-Login's refusal names the page asked for; a view's own way to /login does not.
        return "login" if target.path == "/login" and "next=" in target.query else REACHED
    if status == 400:
        return "CSRF refused" if CSRF_REFUSED in response.get_data(as_text=True) else REACHED
    return str(status)


def send(client: FlaskClient, key: str, url: str, csrf: str, token: str | None) -> TestResponse:
    method = key.split(" ", 1)[0]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return client.get(url, headers=headers)
    if key in JSON_BODIES:
        return client.open(url, method=method, headers=headers, json=JSON_BODIES[key])
    data = {} if is_api(key) else {"csrf_token": csrf}
    return client.open(url, method=method, headers=headers, data=data)


class Walk:
    """Every route of ROUTES as one role after another; counts checks, keeps mismatches."""

    def __init__(self, app: Flask, world: RouteWorld) -> None:
        self.app = app
        self.world = world
        self.checks = 0
        self.mismatches: list[Mismatch] = []

    def role(self, role: str) -> None:
        client = self.app.test_client()
        if role != "anonymous":
            signed_in = Auth(client).login(self.world.emails[role])
            assert signed_in.status_code == 302, f"{role} could not sign in"
        csrf = csrf_token(client, "/")
        for key in sorted(ROUTES, key=lambda k: k == LOGOUT):  # signing out comes last
            token = self.world.tokens.get(role) if is_api(key) else None
            for side, expected in expectations(role, key):
                args = (self.world.mine if side == "mine" else self.world.theirs)[role]
                self.check(role, client, key, args, csrf, token, expected)
            if is_api(key) and role != "anonymous":
                # The API never reads the browser's session: signed in but with no token is 401.
                expected = REACHED if ROUTES[key][0] == "ok" else "401"
                self.check(role, client, key, self.world.mine[role], csrf, None, expected)

    def check(
        self,
        role: str,
        client: FlaskClient,
        key: str,
        args: route_world.Args,
        csrf: str,
        token: str | None,
        expected: str,
    ) -> None:
        self.checks += 1
        method, _, rule = key.partition(" ")
        status: int | None = None
        try:
            url = route_world.fill(rule, args)
        except KeyError as e:
            self.mismatches.append(Mismatch(role, method, rule, None, str(e), expected))
            return
        try:
            response = send(client, key, url, csrf, token)
        except Exception as e:  # a view that crashes is reported with all the others
            got = f"raised {type(e).__name__}: {e}"
        else:
            status, got = response.status_code, outcome(response)
            response.close()  # a download's file is closed with its response
        if got != expected:
            self.mismatches.append(Mismatch(role, method, url, status, got, expected))


def test_every_role_reaches_exactly_what_the_table_gives_it(courses_dir: Path, app: Flask) -> None:
    world = route_world.build(courses_dir)
    walk = Walk(app, world)
    for role in ROLES:
        walk.role(role)
    assert walk.checks >= len(ROUTES) * len(ROLES)
    assert not walk.mismatches, (
        f"{len(walk.mismatches)} of {walk.checks} checks differ from ROUTES:\n"
        + "\n".join(str(m) for m in walk.mismatches)
    )

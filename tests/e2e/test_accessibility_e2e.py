"""Every page each demo user (and a visitor not signed in) can reach, in Chromium against
`make run`: axe-core finds no
critical or serious violation, and neither at 1280 px nor at 390 px does the
page scroll sideways (wide tables scroll inside their own box, lms/static/scrolling.js).

The pages are found as a person finds them: links followed from the role's home (GET only,
same origin), at most PER_ENDPOINT pages of one route so that 250 learners' pages cost two.
One browser for all; a context, signed in once, per role.
axe-core is the copy bundled in axe-playwright-python: nothing is downloaded at run time."""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, Page, expect
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from tests.e2e.conftest import Server
from tests.e2e.test_make_run_e2e import DEMO_HOMES, sign_in

WIDTHS = (1280, 390)
HEIGHT = 800
PER_ENDPOINT = 2
VISITOR = "visitor"  # nobody signed in
# Where each walk starts: the role's home, and pages its capped routes would not lead to (the
# demo's similar submissions are in one assignment of six).
STARTS = {
    **{email: [home] for email, (home, _) in DEMO_HOMES.items()},
    "instructor@example.org": [
        DEMO_HOMES["instructor@example.org"][0],
        "/teach/courses/python-numpy-for-ai/assignments/vital-signs-arrays/insight",
    ],
    VISITOR: ["/login", "/forgot-password", "/verify"],
}
MAX_PAGES = 60  # per role; the demo's roles reach 15 to 30 routes
BLOCKING = {"critical", "serious"}
# Not pages of ours: files, JSON for scripts, nbgrader's feedback HTML (served in a sandbox),
# and the Jupyter lab behind the hub. Logging out and changing things are forms (POST).
SKIPPED_ENDPOINTS = {
    "static",
    "health.healthz",
    "auth.my_data",
    "admin.personal_data",
    "certificates.pdf",
    "learner.download",
    "learner.feedback",
    "learner.lab_status",
    "learner.submission_status",
    "instructor.submission_feedback",
    "instructor.batch_progress",
    "instructor.export_progress",
    "instructor.export_download",
    "coordinator.export_progress",
    "coordinator.export_download",
    "invitations.batch_progress",
    "lab_stopped.stopped",
}
# Pages each role must reach, so that a crawl that lost its way cannot pass by seeing little.
EXPECTED = {
    "admin@example.org": {"admin.home", "admin.user_list", "admin.user_detail", "auth.account"},
    "coordinator@example.org": {
        "coordinator.home",
        "coordinator.program",
        "coordinator.cohort",
        "coordinator.learner",
    },
    "instructor@example.org": {
        "instructor.home",
        "instructor.course",
        "instructor.assignment",
        "instructor.submissions",
        "instructor.submission",
        "instructor.submission_history",
        "instructor.grade_questions",
        "instructor.insight",
        "instructor.deadlines",
        "instructor.similarity_pair",
    },
    "learner@example.org": {"learner.home", "learner.course", "learner.assignment"},
    VISITOR: {"auth.login", "auth.forgot_password", "certificates.verify_form"},
}


@dataclass
class Walk:
    """What one role's walk saw: the endpoints visited and every fault, as lines to print."""

    endpoints: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def routes(make_run: Server) -> Iterator[MapAdapter]:
    """The app's URL map (the same code `make run` serves), to name the route of a link."""
    from lms import create_app

    before = os.environ.get("LMS_INSTANCE_PATH")
    os.environ["LMS_INSTANCE_PATH"] = str(make_run.log.parent)
    try:
        app = create_app()
    finally:
        if before is None:
            os.environ.pop("LMS_INSTANCE_PATH")
        else:
            os.environ["LMS_INSTANCE_PATH"] = before
    yield app.url_map.bind("127.0.0.1")


def endpoint_of(routes: MapAdapter, path: str) -> str | None:
    try:
        endpoint, _ = routes.match(path, method="GET")
    except HTTPException:  # no GET route (POST-only, a redirect rule) or no route at all
        return None
    return str(endpoint)


def axe_faults(page: Page, axe: Axe, where: str) -> list[str]:
    results = axe.run(page, options={"resultTypes": ["violations"]})
    faults = []
    for violation in results.response["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        nodes = "; ".join(
            f"{' '.join(map(str, n['target']))}: {n['failureSummary'].splitlines()[-1].strip()}"
            for n in violation["nodes"][:5]
        )
        faults.append(f"{where}: axe {violation['id']} ({violation['impact']}): {nodes}")
    return faults


STICKING_OUT = """(inner) => {
  const out = e => e.getBoundingClientRect().right > inner + 1;
  const contained = e => {
    const placed = ["absolute", "fixed"].includes(getComputedStyle(e).position);
    for (let a = placed ? e.offsetParent : e.parentElement; a && a !== document.body;
         a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
      if (out(a)) return true;  // the ancestor is named instead
    }
    return false;
  };
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + [...e.classList].map(c => "." + c).join("");
  return [...document.body.querySelectorAll("*")].filter(e => out(e) && !contained(e))
    .slice(0, 5)
    .map(e => `${name(e)} (right edge ${Math.round(e.getBoundingClientRect().right)} px)`);
}"""


def overflow_fault(page: Page, where: str) -> str | None:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll <= inner:
        return None
    # Name the outermost elements that stick out (not those inside a box that scrolls).
    culprits = page.evaluate(STICKING_OUT, inner)
    return f"{where}: the page is {scroll} px wide in a {inner} px window: {', '.join(culprits)}"


def check_page(page: Page, axe: Axe, where: str) -> list[str]:
    faults = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        fault = overflow_fault(page, f"{where} at {width} px")
        if fault:
            faults.append(fault)
        faults += axe_faults(page, axe, f"{where} at {width} px")
    page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
    return faults


def walk(
    page: Page, server: Server, routes: MapAdapter, starts: list[str], signed_in: bool
) -> Walk:
    """Breadth first from the starts, following the links of each page that answers."""
    seen = Walk()
    axe = Axe()
    queue: deque[str] = deque(server.base_url + path for path in starts)
    queued = set(queue)
    for path in starts:
        seen.endpoints[endpoint_of(routes, path) or path] += 1
    visited = 0
    while queue and visited < MAX_PAGES:
        url = queue.popleft()
        visited += 1
        response = page.goto(url)
        where = url.removeprefix(server.base_url)
        if response is None or not response.ok:
            seen.faults.append(f"{where}: answered {response.status if response else 'nothing'}")
            continue
        if urlsplit(page.url).path != urlsplit(url).path:  # "/" sends each to their home
            if signed_in and urlsplit(page.url).path == "/login":
                seen.faults.append(f"{where}: sent to the login page")
            if page.url in queued:
                continue
            queued.add(page.url)
            where = page.url.removeprefix(server.base_url)
        seen.faults += check_page(page, axe, where)
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            link = urldefrag(href).url
            parts = urlsplit(link)
            if not link.startswith(server.base_url + "/") or link in queued:
                continue
            if parts.path.startswith(("/lab/", "/user/")):
                continue  # Jupyter, not ours
            endpoint = endpoint_of(routes, parts.path)
            if endpoint is None or endpoint in SKIPPED_ENDPOINTS:
                continue
            if seen.endpoints[endpoint] >= PER_ENDPOINT:
                continue
            seen.endpoints[endpoint] += 1
            queued.add(link)
            queue.append(link)
    return seen


@pytest.mark.parametrize("who", list(STARTS))
def test_every_page_of_the_role_passes_axe_and_fits_the_window(
    make_run: Server, browser: Browser, routes: MapAdapter, who: str
) -> None:
    starts = STARTS[who]
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": HEIGHT})
    page = context.new_page()
    try:
        if who != VISITOR:
            sign_in(page, make_run, who, "demo-password")
            expect(page).to_have_url(make_run.base_url + starts[0])
        seen = walk(page, make_run, routes, starts, signed_in=who != VISITOR)
    finally:
        context.close()
    missed = EXPECTED[who] - set(seen.endpoints)
    assert not missed, f"the walk from {starts} never reached {sorted(missed)}"
    assert not seen.faults, f"{len(seen.faults)} fault(s):\n" + "\n".join(seen.faults)

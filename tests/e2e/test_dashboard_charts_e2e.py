"""The program dashboard's charts as Chromium draws them, at 1280 px (a laptop) and at 390 px
(a phone): every chart text is drawn at 12 px or more and lies inside its chart. The pages
come from the test client in this process (Playwright answers the browser's requests with
it), so no `make run` is needed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Route

from lms.extensions import db
from lms.models import Enrolment, Program, utcnow
from lms.queries.enrolments import COMPLETED
from lms.services import completion
from tests import factories
from tests.conftest import Auth
from tests.lms.services.test_completion import World, build, make_learners

ORIGIN = "http://lms.test"

# Every text shown in the charts: its rendered font size (the SVG's scale included) and whether
# its box lies within its chart's box.
MEASURE = """() => Array.from(document.querySelectorAll('svg.chart')).flatMap(svg => {
  const chart = svg.getBoundingClientRect();
  const shown = Array.from(svg.querySelectorAll('text'))
    .filter(text => getComputedStyle(text).display !== 'none');
  return shown.map(text => {
    const box = text.getBoundingClientRect();
    const size = parseFloat(getComputedStyle(text).fontSize) * text.getScreenCTM().a;
    const inside = box.left >= chart.left - 0.5 && box.right <= chart.right + 0.5;
    return [text.textContent, size, inside, box.left - chart.left, chart.right - box.right];
  });
})"""
# The date axis's labels that are shown, as (left, right) in px, chart by chart.
TICKS = """() => Array.from(document.querySelectorAll('svg.chart')).map(svg =>
  Array.from(svg.querySelectorAll('text.tick'))
    .filter(text => getComputedStyle(text).display !== 'none')
    .map(text => { const box = text.getBoundingClientRect(); return [box.left, box.right]; })
    .sort((a, b) => a[0] - b[0]))"""
LEGENDS = """() => Array.from(document.querySelectorAll(
  '.chart-title, .chart-legend li, .chart-note'
)).map(e => [e.textContent.trim(), parseFloat(getComputedStyle(e).fontSize)])"""


@pytest.fixture
def world(client: FlaskClient, auth: Auth) -> World:
    built = build()
    make_learners(built)
    completion.refresh(built.cohort.id)
    factories.coordinator(built.program)
    auth.login("coordinator@test.org")
    return built


def serve(client: FlaskClient, route: Route) -> None:
    """The browser's request, answered by the app in this process."""
    request = route.request
    path = request.url.removeprefix(ORIGIN)
    response = client.open(path, method=request.method, headers={"Accept-Language": "en"})
    body = response.get_data()
    response.close()  # a static file's handle
    route.fulfill(
        status=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() != "content-length"},
        body=body,
    )


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("far", [False, True], ids=["near-forecast", "far-forecast"])
def test_chart_text_is_legible_and_inside_the_chart(
    browser: Browser, client: FlaskClient, world: World, width: int, far: bool
) -> None:
    program = db.session.get(Program, world.program.id)
    assert program is not None
    # Its two completions made recent, so that there is a rate and a forecast: a target far
    # off puts the forecast date past the chart's end, a near one inside it.
    for enrolment in db.session.scalars(
        sa.select(Enrolment).where(Enrolment.status.in_(COMPLETED))
    ):
        enrolment.completed_at = utcnow() - timedelta(days=10)
    program.target_learners = 2000 if far else 4
    program.target_date = date.today() + timedelta(days=30)
    db.session.commit()
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.route(f"{ORIGIN}/**", lambda route: serve(client, route))
        page.goto(f"{ORIGIN}/coordinate/programs/{world.program.slug}")
        texts = page.evaluate(MEASURE)
        assert len(texts) > 8
        for text, size, inside, *margins in texts:
            assert size >= 12, (text, size)
            assert inside, (text, margins)
        for ticks in page.evaluate(TICKS):
            for (_, right), (left, _) in zip(ticks, ticks[1:], strict=False):
                assert right + 4 <= left, ticks  # apart, with room between
        legends = page.evaluate(LEGENDS)
        said = {text for text, _ in legends}
        assert {"Completed (cumulative)", "Straight line to the target"} <= said
        assert any(text.startswith("Forecast at") for text in said)
        assert any("past the end of this chart" in text for text in said) == far
        assert all(size >= 12 for _, size in legends), legends
    finally:
        context.close()

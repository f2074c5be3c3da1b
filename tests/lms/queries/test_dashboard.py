"""The coordinator's dashboard, gradebook and learner pages on a hand-computed cohort (the
world of test_completion), the numbers they show against the exports, and who may see them."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms.coordinator import routes
from lms.extensions import db
from lms.queries import gradebook, progress
from lms.reporting import exports, report
from lms.services import completion
from tests import factories
from tests.conftest import Auth
from tests.lms.services.test_completion import (
    DAY,
    NOW,
    Learners,
    World,
    build,
    make_learners,
    submit,
)


@pytest.fixture
def world(app: Flask) -> World:
    return build()


@pytest.fixture
def people(world: World) -> Learners:
    return make_learners(world)


@pytest.fixture
def coordinator(world: World, people: Learners, auth: Auth) -> None:
    completion.refresh(world.cohort.id)  # a completes; f, completed by hand, reverts
    factories.coordinator(world.program)
    auth.login("coordinator@test.org")


def figures(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html))


@pytest.mark.usefixtures("coordinator")
def test_the_dashboard_shows_the_hand_computed_funnel_and_forecast(
    client: FlaskClient, world: World
) -> None:
    page = client.get(f"/coordinate/programs/{world.program.slug}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # a, b, c, e, f count (d withdrew); a completed by the rule, e is certified; nobody
    # submitted in the last 14 days (the world lives in May 2026).
    assert figures(html) == {
        "Target": "30",
        "Enrolled": "5",
        "Active": "0",
        "Completed": "2",
        "Certified": "1",
    }
    assert "2 of 30 completed by 2026-12-31." in html
    assert html.count('<svg role="img" class="chart"') == 2
    assert "style=" not in html.split("<svg", 1)[1]  # the CSP refuses inline style
    assert f'href="/coordinate/cohorts/{world.cohort.slug}"' in html


@pytest.mark.usefixtures("coordinator")
def test_the_numbers_shown_are_the_numbers_exported(client: FlaskClient, world: World) -> None:
    shown = figures(client.get(f"/coordinate/programs/{world.program.slug}").get_data(True))
    exported = report.program_report(world.program)
    summary = {label.split(" (")[0]: value for label, value in exported.summary}
    for name in ("Target", "Enrolled", "Completed", "Certified"):
        assert str(summary[name]) == shown[name]
    assert dict(exported.funnel) == {k: int(v) for k, v in shown.items()}

    out = io.BytesIO()
    exports.write_csv(exported, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert len(rows) == 6  # every enrolment, the withdrawn one too
    statuses = [row["Status"] for row in rows]
    assert statuses.count("completed") + statuses.count("certified") == int(shown["Completed"])
    assert statuses.count("withdrawn") == 1
    by_email = {row["Email"]: row for row in rows}
    assert by_email["a@test.org"]["Assignments submitted"] == "2"
    assert by_email["a@test.org"]["Completed on"] == "2026-04-25"  # its last passing work
    assert by_email["e@test.org"]["Assignments submitted"] == "1"


@pytest.mark.usefixtures("coordinator")
def test_the_gradebook_shows_final_scores_sorts_and_pages(
    client: FlaskClient, world: World, people: Learners, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = world.parts[1][0]
    url = f"/coordinate/cohorts/{world.cohort.slug}"
    html = client.get(url).get_data(as_text=True)
    assert "<caption" in html and "Lab-1 (10)" in html
    # c's lab-2: 6 points two started days late at 10% a day: 4.8, below the pass mark.
    assert '<td class="num score-fail">4.8</td>' in html

    html = client.get(f"{url}?sort=a{second.id}&dir=desc").get_data(as_text=True)
    order = re.findall(r"learners/(\d+)\"", html)
    # d 10, a 7, b 3 ... then c 4.8 sorted among them; f's answer is ungraded, e never sent it.
    assert order[:4] == [str(u.id) for u in (people.d, people.a, people.c, people.b)]
    assert order[4:] and set(order[4:]) == {str(people.e.id), str(people.f.id)}
    assert 'aria-sort="descending"' in html

    monkeypatch.setattr(routes, "GRADEBOOK_PAGE_SIZE", 4)
    first_page = client.get(url).get_data(as_text=True)
    second_page = client.get(f"{url}?page=2").get_data(as_text=True)
    assert "Page 1 of 2" in first_page and "Page 2 of 2" in second_page
    on_first = set(re.findall(r"learners/(\d+)\"", first_page))
    on_second = set(re.findall(r"learners/(\d+)\"", second_page))
    assert len(on_first) == 4 and len(on_second) == 2 and not on_first & on_second


@pytest.mark.usefixtures("coordinator")
def test_one_learners_progress(client: FlaskClient, world: World, people: Learners) -> None:
    html = client.get(f"/coordinate/cohorts/{world.cohort.slug}/learners/{people.c.id}").get_data(
        as_text=True
    )
    assert "c@test.org" in html
    assert "20%" in html and "4.8 / 10" in html and "not passed" in html
    assert "Assignments passed</dt><dd>1 / 2" in html
    missing = client.get(f"/coordinate/cohorts/{world.cohort.slug}/learners/999999")
    assert missing.status_code == 404


def test_a_coordinator_sees_only_their_programs(
    client: FlaskClient, auth: Auth, world: World, people: Learners
) -> None:
    other = factories.program("Elsewhere", 100)
    factories.coordinator(other, "other@test.org")
    pages = [
        f"/coordinate/programs/{world.program.slug}",
        f"/coordinate/cohorts/{world.cohort.slug}",
        f"/coordinate/cohorts/{world.cohort.slug}/learners/{people.a.id}",
    ]
    for url in pages:
        assert client.get(url).status_code == 302  # to the login page
    auth.login("other@test.org")
    for url in pages:
        assert client.get(url).status_code == 404
    assert client.get(f"/coordinate/programs/{other.slug}").status_code == 200
    auth.logout()
    factories.learner(world.cohort, "plain@test.org")
    auth.login("plain@test.org")
    for url in pages:
        assert client.get(url).status_code == 403


@pytest.mark.usefixtures("coordinator")
def test_learners_of_the_same_name_are_told_apart_by_email(
    client: FlaskClient, world: World, people: Learners
) -> None:
    people.a.name = people.b.name = "Kim Minji"
    people.c.name = "kim minji"  # the same name, however it is capitalised
    db.session.commit()
    url = f"/coordinate/cohorts/{world.cohort.slug}"
    for query in ("", "?sort=passed", "?sort=status&dir=desc"):
        html = client.get(url + query).get_data(as_text=True)
        for learner in (people.a, people.b, people.c):
            assert re.search(
                rf">{re.escape(learner.name)}</a> <span class=\"learner-email\">"
                rf"{re.escape(learner.email)}</span>",
                html,
            ), learner.email
        # A name nobody else has is shown alone.
        assert f">{people.d.name}</a></th>" in html
        assert people.d.email not in html


def test_one_cohorts_funnel_is_its_row_of_the_programs(
    app: Flask, world: World, people: Learners
) -> None:
    completion.refresh(world.cohort.id)
    other = factories.cohort(world.program, "Autumn", courses=[world.course])
    factories.learner(other, "autumn@test.org")
    for found, now in (
        (world.cohort, None),
        (world.cohort, NOW),  # learners active then: the active and stalled counts differ
        (other, None),
    ):
        rows, _organisations = progress.breakdowns(world.program.id, "-", now)
        [row] = [f for f in rows if f.slug == found.slug]
        assert progress.cohort_funnel(found, now) == row


def test_a_gradebook_page_has_the_same_rows_as_the_whole_gradebook(
    app: Flask, world: World, people: Learners
) -> None:
    people.a.name = people.f.name = "Same Name"  # ties broken by email, page after page
    db.session.commit()
    whole = gradebook.gradebook(world.cohort)
    sorts = ["name", "email", "status", "passed", *[f"a{a.id}" for a in whole.assignments]]
    for sort in sorts:
        for descending in (False, True):
            expected = whole.sort(sort, descending)
            for page in (1, 2, 3):
                shown = gradebook.gradebook_page(world.cohort, sort, descending, page, 4)
                assert (shown.total, shown.pages, shown.page) == (6, 2, min(page, 2))
                start = (shown.page - 1) * 4
                assert shown.rows == expected[start : start + 4], (sort, descending, page)


@pytest.mark.usefixtures("coordinator")
def test_the_gradebooks_queries_do_not_grow_with_its_learners(
    client: FlaskClient, world: World
) -> None:
    url = f"/coordinate/cohorts/{world.cohort.slug}"

    def statements(path: str) -> int:
        seen: list[str] = []
        listen = lambda *args: seen.append(args[2])  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", listen)
        try:
            assert client.get(path).status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listen)
        return len(seen)

    few = {path: statements(path) for path in (url, f"{url}?sort=passed")}
    for n in range(30):
        learner = factories.learner(world.cohort, f"more{n}@test.org")
        submit(world, learner, 0, NOW - 12 * DAY, 7.0)
    for path, count in few.items():
        assert statements(path) == count, path

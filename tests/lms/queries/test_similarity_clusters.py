"""Similar submissions of a real released assignment, as the insight page lists them: answers
equal to the reference solution or shared by many are left out, the rest grouped into clusters,
paged, and cached until a new submission comes in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lms.models import Submission, User
from lms.queries import similar_submissions, similarity
from lms.services import submissions
from tests import course_builder, factories, grading_world
from tests.conftest import Auth
from tests.grading_world import World

# The source's solution: long enough to be compared (the course builder's is one line).
SOLUTION = '''def double(x):
    """Twice x, as an int."""
    ### BEGIN SOLUTION
    doubled = x + x
    if isinstance(doubled, float):
        doubled = round(doubled)
    return int(doubled)
    ### END SOLUTION
'''

# The reference, as a learner who found it might hand it in: other names, comments, spacing.
REFERENCE = """def double(x):
    twice = x+x   # add it to itself
    if isinstance( twice, float ):
        twice = round( twice )
    return int(twice)
"""

LOOP = """def double(x):
    total = 0
    for step in range(2):
        total = total + x
    result = int(total)
    return result
"""
LOOP_RENAMED = """def double(x):
    acc=0
    for i in range( 2 ):
        acc = acc + x   # add it
    out = int( acc )
    return out
"""

POP = """def double(x):
    values = [x, x]
    answer = 0
    while values:
        answer += values.pop()
    return int(answer)
"""
POP_EDITED = POP.replace(
    "    return int(answer)", "    answer = answer * 1\n    return int(answer)"
)

COMMON = """def double(x):
    pair = (x, x)
    return int(sum(item for item in pair if item is not None) or 0)
"""


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    nb = course_builder.notebook()
    nb.cells[1].source = SOLUTION
    course_builder.write_assignment(courses_dir / "doubling-101" / "double-it", nb)
    return grading_world.build(courses_dir, learners=11)


def submit(world: World, learner: User, code: str) -> Submission:
    upload = grading_world.answer(world.assignment, code)
    return submissions.submit(learner, world.assignment, world.cohort, [upload]).submission


def hand_in(world: World) -> list[Submission]:
    """Two learners hand in the reference, two a renamed copy, three another answer (one
    edited a little) and four a third answer alike: four is the shared minimum of eleven."""
    answers = [REFERENCE, REFERENCE, LOOP, LOOP_RENAMED, POP, POP, POP_EDITED] + [COMMON] * 4
    pairs = zip(world.learners, answers, strict=True)
    return [submit(world, learner, code) for learner, code in pairs]


def base_url(world: World) -> str:
    return f"/teach/courses/{world.assignment.course.slug}/assignments/{world.assignment.slug}"


def test_reference_and_shared_answers_are_left_out_and_the_rest_clustered(world: World) -> None:
    subs = hand_in(world)
    work = similar_submissions.similar_work(world.assignment, world.cohort)
    assert work.compared == 11 and work.shared_minimum == 4
    assert (work.left_out_reference, work.left_out_shared) == (2, 4)
    pop, loop = (subs[4].id, subs[5].id, subs[6].id), (subs[2].id, subs[3].id)
    assert [(c.members, c.pairs) for c in work.clusters] == [(pop, 3), (loop, 1)]
    assert work.clusters[0].score == work.clusters[1].score == 1.0
    assert similarity.THRESHOLD <= work.clusters[0].links[-1].score < 1.0
    # Left out, not unlike: without leaving anything out, the reference pair and the common
    # answers are as alike as a copy.
    assert similar_submissions.pair_score(subs[0], subs[1]) == 1.0
    assert similar_submissions.pair_score(subs[7], subs[8]) == 1.0
    assert similar_submissions.pair_score(subs[0], subs[1], work) == 0.0
    assert similar_submissions.pair_score(subs[7], subs[8], work) == 0.0


def test_three_learners_with_one_answer_are_not_many_in_a_cohort_of_eleven(world: World) -> None:
    subs = hand_in(world)
    # One learner of the common four hands in something else: three is under the minimum.
    submit(world, world.learners[10], LOOP.replace("range(2)", "range(1, 3)"))
    work = similar_submissions.similar_work(world.assignment, world.cohort)
    assert work.left_out_shared == 0
    assert (subs[7].id, subs[8].id, subs[9].id) in [c.members for c in work.clusters]


def test_the_list_is_paged(world: World) -> None:
    subs = hand_in(world)
    first = similar_submissions.similarity_page(world.assignment, world.cohort, page=1, per_page=1)
    assert (first.page, first.pages, first.has_prev, first.has_next) == (1, 2, False, True)
    [cluster] = first.clusters
    assert cluster.number == 1 and {s.id for s in cluster.members} == {s.id for s in subs[4:7]}
    assert [(f.a.id, f.b.id) for f in cluster.links] == [
        (subs[4].id, subs[5].id),
        (subs[4].id, subs[6].id),
    ]
    second = similar_submissions.similarity_page(world.assignment, world.cohort, page=2, per_page=1)
    assert second.has_prev and not second.has_next
    assert [c.number for c in second.clusters] == [2]
    assert [m.user.name for m in second.clusters[0].members] == [
        s.user.name for s in sorted(subs[2:4], key=lambda s: s.user.name)
    ]
    # Out of range: the nearest page.
    assert (
        similar_submissions.similarity_page(world.assignment, world.cohort, page=9, per_page=1).page
        == 2
    )
    assert (
        similar_submissions.similarity_page(
            world.assignment, world.cohort, page=-3, per_page=1
        ).page
        == 1
    )
    assert similar_submissions.similarity_page(world.assignment, world.cohort).pages == 1


def test_the_result_is_cached_until_a_new_submission(world: World) -> None:
    subs = hand_in(world)
    work = similar_submissions.similar_work(world.assignment, world.cohort)
    assert similar_submissions.similar_work(world.assignment, world.cohort) is work
    # The same assignment in all cohorts is another result.
    assert similar_submissions.similar_work(world.assignment) is not work
    # A learner of the reference pair hands in a copy of the loop: a new latest submission.
    copy = submit(world, world.learners[0], LOOP_RENAMED.replace("acc", "s"))
    fresh = similar_submissions.similar_work(world.assignment, world.cohort)
    assert fresh is not work
    assert (subs[2].id, subs[3].id, copy.id) in [c.members for c in fresh.clusters]
    assert fresh.left_out_reference == 1
    assert similar_submissions.similar_work(world.assignment, world.cohort) is fresh


def test_the_page_lists_clusters_with_compare_links(
    world: World, client: FlaskClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    subs = hand_in(world)
    auth.login(world.instructor.email)
    url = f"{base_url(world)}/insight?cohort={world.cohort.slug}"
    html = client.get(url).get_data(as_text=True)
    assert "3 learners, up to 100% alike" in html and "2 learners, up to 100% alike" in html
    assert "2 answers equal to the reference solution" in html
    assert "4 other answers that 4 or more learners handed in alike" in html
    links = re.findall(r'href="[^"]*(/similarity/\d+/\d+)\?cohort=([\w-]+)"', html)
    assert links == [
        (f"/similarity/{subs[4].id}/{subs[5].id}", world.cohort.slug),
        (f"/similarity/{subs[4].id}/{subs[6].id}", world.cohort.slug),
        (f"/similarity/{subs[2].id}/{subs[3].id}", world.cohort.slug),
    ]
    for sub in subs[2:7]:
        assert sub.user.email in html
    for sub in subs[:2] + subs[7:]:
        assert sub.user.email not in html
    assert 'rel="next"' not in html

    # Paged: one cluster a page, with links to the others that keep the cohort.
    monkeypatch.setattr(similar_submissions, "CLUSTERS_PER_PAGE", 1)
    html = client.get(url).get_data(as_text=True)
    assert "Page 1 of 2" in html and subs[2].user.email not in html
    next_link = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert next_link is not None and "page=2" in next_link.group(1)
    assert f"cohort={world.cohort.slug}" in next_link.group(1)
    html = client.get(next_link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "Page 2 of 2" in html and 'rel="prev"' in html and subs[2].user.email in html

    # The pair page marks what was left out, measured as the list measures.
    page = client.get(
        f"{base_url(world)}/similarity/{subs[0].id}/{subs[7].id}?cohort={world.cohort.slug}"
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Similarity: 0%" in html
    assert "The reference solution: not compared." in html
    assert "Handed in alike by 4 or more learners: not compared." in html
    missing = client.get(f"{base_url(world)}/similarity/{subs[0].id}/{subs[7].id}?cohort=nope")
    assert missing.status_code == 404


def test_only_the_courses_instructors_see_the_clusters(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    subs = hand_in(world)
    urls = [
        f"{base_url(world)}/insight?cohort={world.cohort.slug}&page=2",
        f"{base_url(world)}/similarity/{subs[2].id}/{subs[3].id}?cohort={world.cohort.slug}",
    ]
    auth.login(factories.instructor(factories.course("other", "Other"), "o@test.org").email)
    assert [client.get(url).status_code for url in urls] == [404, 404]
    auth.logout()
    auth.login(world.learners[2].email)
    assert [client.get(url).status_code for url in urls] == [403, 403]
    auth.logout()
    auth.login(world.instructor.email)
    assert [client.get(url).status_code for url in urls] == [200, 200]

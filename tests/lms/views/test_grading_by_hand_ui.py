"""Grading by hand, what the page gives the instructor: a learner's written answer (Markdown)
rendered but sanitized, whatever the learner wrote; labelled, focusable fields and answers;
and a visible, announced "saved" after each save (Ctrl+Enter submits the same form)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lms.extensions import db
from lms.models import Grade
from tests import grading_world
from tests.conftest import Auth
from tests.grading_world import World
from tests.lms.views.test_instructor_grading import (
    graded_cell,
    login,
    post,
    question,
    submit,
)

HOSTILE_MARKDOWN = """# Why it is linear

Because **scaling** commutes with *addition*:

- `f(a + b) = f(a) + f(b)`
- see [the notes](https://example.org/notes)

<script>alert(1)</script>

<img src=x onerror=alert(2)>

[click me](javascript:alert(3)) [or me](JAVASCRIPT:alert(4)) [data](data:text/html,<b>x</b>)

<a href="javascript:alert(5)">raw link</a> <svg onload=alert(6)></svg>

<iframe src="https://evil.example"></iframe>

![remote](https://evil.example/track.png) ![svg](data:image/svg+xml;base64,PHN2Zz4=)
"""


@pytest.fixture
def world(courses_dir: Path, app: Flask) -> World:
    return grading_world.build(courses_dir)


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text of its script elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def assert_runs_nothing(html: str) -> None:
    """No element or attribute of the page can run the learner's code."""
    page = Tags(html)
    for tag, attrs in page.tags:
        assert tag not in ("iframe", "svg", "object", "embed"), (tag, attrs)
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("href", "src"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:text")), (tag, attrs)
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:image/"), attrs
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
    assert page.script_text.strip() == ""


def test_a_written_answer_is_rendered_as_markdown_and_sanitized(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0], why=HOSTILE_MARKDOWN)
    login(auth, world)
    for path in (question(), f"/teach/submissions/{answer.id}"):
        html = client.get(path).get_data(as_text=True)
        # Rendered: the learner's heading sits below the page's own, emphasis and lists work.
        assert "<h3>Why it is linear</h3>" in html, path
        assert "<strong>scaling</strong>" in html and "<em>addition</em>" in html
        assert "<code>f(a + b) = f(a) + f(b)</code>" in html
        assert '<a href="https://example.org/notes">the notes</a>' in html
        # Refused links keep their words, not their target; a remote image becomes a link.
        assert "click me" in html and "or me" in html and "raw link" in html
        assert '<a href="https://evil.example/track.png">remote</a>' in html
        # Raw HTML is shown as the text the learner typed.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert_runs_nothing(html)
        # The source stays one click away, escaped.
        assert "Markdown source" in html and "# Why it is linear" in html


def test_code_stays_text_and_an_empty_answer_says_so(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0], test_output="# **not markdown**")
    submit(world, world.learners[1], why="   ")
    login(auth, world)
    html = client.get(f"/teach/submissions/{answer.id}").get_data(as_text=True)
    # A code cell and its output are shown as they are: nothing is rendered.
    assert '<pre class="grading-output"># **not markdown**</pre>' in html
    assert "<strong>not markdown</strong>" not in html
    assert re.search(r'<pre class="grading-source grading-answer" role="region" tabindex="0"', html)
    empty = client.get(question(1)).get_data(as_text=True)
    assert "(empty)" in empty


def test_answers_and_fields_are_labelled_and_reachable_by_keyboard(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    submit(world, world.learners[0], why="Scaling *commutes*.")
    login(auth, world)
    html = client.get(question()).get_data(as_text=True)
    tags = Tags(html).tags
    # The answer is a named region that takes focus (a long one scrolls from the keyboard).
    [region] = [a for t, a in tags if "grading-answer" in (a.get("class") or "")]
    assert region["role"] == "region" and region["tabindex"] == "0"
    assert region["aria-labelledby"] == "answer-heading" and 'id="answer-heading"' in html
    # Each field has its label; the score's says its range. No tab order is forced.
    assert '<label for="score">Score (0 to 1)</label>' in html
    assert '<label for="comment">Comment for the learner</label>' in html
    assert not [a for _, a in tags if a.get("tabindex") not in (None, "0", "-1")]
    form = next(a for t, a in tags if t == "form" and "data-grading-form" in a)
    assert form["aria-labelledby"] == "grade-heading"
    assert "Your grade for Learner0" in html
    # Where "Saving…" is said while the form is sent.
    status = next(a for _, a in tags if "data-grading-status" in a)
    assert status["role"] == "status" and status["aria-live"] == "polite"
    assert "next learner (when the cursor is not in a field)" in html


def test_save_and_next_says_saved_on_the_next_page(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    first = submit(world, world.learners[0], why="One.")
    submit(world, world.learners[1], why="Two.")
    login(auth, world)
    response = post(client, question(), question(), {"submission_id": first.id, "score": "1"})
    assert response.status_code == 302
    html = client.get(response.location).get_data(as_text=True)
    assert re.search(
        r'<p class="flash flash-saved" role="status">Saved the grade of Learner0\.</p>', html
    )
    assert "Two." in html  # the next learner's answer
    # Said once: the page after it has no note.
    assert "flash-saved" not in client.get(response.location).get_data(as_text=True)


def test_saving_a_cell_of_a_learner_says_so_in_that_cell(
    world: World, client: FlaskClient, auth: Auth
) -> None:
    answer = submit(world, world.learners[0], why="One.")
    manual = graded_cell(world, "why-linear")
    test = graded_cell(world, "test-double")
    login(auth, world)
    page = f"/teach/submissions/{answer.id}"
    saved = post(client, page, f"{page}/cells/{manual.id}", {f"cell{manual.id}-score": "0.5"})
    assert saved.status_code == 302
    assert saved.location.endswith(f"{page}?saved={manual.id}#cell-{manual.id}")
    grade = db.session.scalar(sa.select(Grade).where(Grade.cell_id == manual.id))
    assert grade is not None and grade.manual_score == 0.5
    html = client.get(saved.location).get_data(as_text=True)
    cell_html = html.split(f'id="cell-{manual.id}"', 1)[1].split("</section>", 1)[0]
    assert '<span class="grading-saved" data-announce>Grade saved.</span>' in cell_html
    other_cell = html.split(f'id="cell-{test.id}"', 1)[1].split("</section>", 1)[0]
    assert "Grade saved." not in other_cell
    assert '<script src="/static/grading.js" defer></script>' in html

"""A learner's written answer (a Markdown cell) as HTML for the grading pages.

Learners are hostile: their Markdown is rendered with raw HTML escaped (a `<script>` shows as
text), and the result goes through an allow-list sanitizer all the same, so no tag, attribute
or link scheme outside the list survives whatever the renderer lets through. Links keep only
http, https and mailto; images only inline PNG, JPEG or GIF data (any other is shown as a link);
the learner's headings are moved below the page's own (h3 and lower).
"""

from __future__ import annotations

import re
from typing import Any

import bleach
import mistune
from markupsafe import Markup
from mistune.renderers.html import HTMLRenderer

ALLOWED_TAGS = frozenset(
    {
        "a", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6", "hr", "img",
        "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title"],
    "img": ["src", "alt", "title"],
    "code": ["class"],
    "ol": ["start"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})
INLINE_IMAGE = re.compile(r"^data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]+$")
HARMFUL = "#harmful-link"  # what mistune makes of a link with a refused scheme
# Under the page's h1 and the answer's h2, a learner's "# Title" becomes an h3.
HEADING_SHIFT = 2


class _AnswerRenderer(HTMLRenderer):
    def heading(self, text: str, level: int, **attrs: Any) -> str:
        return str(super().heading(text, min(level + HEADING_SHIFT, 6)))

    def link(self, text: str, url: str, title: str | None = None) -> str:
        if self.sanitize_url(url) == HARMFUL:
            return text  # a javascript: (or other refused) link keeps its words, not its target
        return str(super().link(text, url, title))

    def image(self, text: str, url: str, title: str | None = None) -> str:
        if INLINE_IMAGE.match(url):
            return str(super().image(text, url, title))
        # A remote image would load from wherever the learner points (or be refused by the
        # page's policy): a link says where it is, and nothing loads until someone follows it.
        return self.link(text or url, url, title)


_markdown = mistune.create_markdown(
    escape=True, renderer=_AnswerRenderer(escape=True), plugins=["strikethrough", "table"]
)


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    if name not in ALLOWED_ATTRIBUTES.get(tag, []):
        return False
    if tag == "img" and name == "src":
        return bool(INLINE_IMAGE.match(value))
    if tag == "a" and name == "href":
        return not value.strip().lower().startswith("data:")
    if tag == "code" and name == "class":
        return value.startswith("language-")
    return True


def markdown_html(source: str) -> Markup:
    """The Markdown source as sanitized HTML, safe to place in a page."""
    rendered = str(_markdown(source))
    cleaned: str = bleach.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=_attribute_allowed,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )
    return Markup(cleaned)  # noqa: S704  (allow-list sanitized just above)

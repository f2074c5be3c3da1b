"""Feedback HTML a learner may see: sanitized, and never showing hidden tests.

nbgrader's own feedback shows the autograded notebook, hidden tests included, and passes a
learner's `<script>` through. Here each test cell shows the *released* version of its source
(hidden tests stripped by nbgrader when it generated the release), the notebook is rendered by
nbconvert without any script, and the result goes through an allow-list sanitizer: no script,
no event handler, no javascript: or data: links, no iframes or forms.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bleach
from bleach.css_sanitizer import CSSSanitizer
from nbformat import NotebookNode

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div",
        "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
        "li", "ol", "p", "pre", "s", "samp", "section", "small", "span", "strong", "sub",
        "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": ["class", "id", "title", "lang", "style"],
    "a": ["href", "rel"],
    "img": ["src", "alt", "width", "height"],
    "td": ["colspan", "rowspan", "align"],
    "th": ["colspan", "rowspan", "align", "scope"],
}
# Images only as inline PNG/JPEG/GIF/SVG-free data; links only to the web or in-page anchors.
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})
CSS = CSSSanitizer(
    allowed_css_properties=["color", "background-color", "font-weight", "font-style", "text-align"]
)

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem;
       color: #1b1b1b; line-height: 1.5; }}
pre {{ background: #f4f4f4; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }}
.cell {{ border-left: 4px solid #ccc; margin: 1rem 0; padding-left: .75rem; }}
.cell.passed {{ border-color: #1a7f37; }} .cell.failed {{ border-color: #b3261e; }}
.score {{ font-weight: bold; }} .output-error {{ color: #b3261e; }}
</style></head>
<body>{body}</body></html>
"""


def _is_safe_src(tag: str, name: str, value: str) -> bool:
    if name != "src":
        return True
    return value.startswith(("data:image/png;", "data:image/jpeg;", "data:image/gif;"))


def sanitize(fragment: str) -> str:
    """Allow-list HTML: what a feedback page may contain, whatever the notebook held."""
    cleaned: str = bleach.clean(
        fragment,
        tags=ALLOWED_TAGS,
        attributes=_attribute_filter,
        protocols=ALLOWED_PROTOCOLS,
        css_sanitizer=CSS,
        strip=True,
        strip_comments=True,
    )
    return cleaned


def _attribute_filter(tag: str, name: str, value: str) -> bool:
    allowed = ALLOWED_ATTRIBUTES.get(tag, []) + ALLOWED_ATTRIBUTES["*"]
    if name not in allowed:
        return False
    if tag == "a" and name == "href" and value.strip().lower().startswith("data:"):
        return False
    return _is_safe_src(tag, name, value)


def released_sources(release_notebook: Path | Mapping[str, Any]) -> dict[str, str]:
    """grade_id -> the source the learner was given (hidden tests already stripped), from the
    release notebook's file or its parsed JSON."""
    notebook = (
        json.loads(release_notebook.read_text(encoding="utf-8"))
        if isinstance(release_notebook, Path)
        else release_notebook
    )
    sources = {}
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            source = cell.get("source", "")
            sources[meta["grade_id"]] = "".join(source) if isinstance(source, list) else source
    return sources


def render(
    nb: NotebookNode,
    released: dict[str, str],
    cell_scores: dict[str, tuple[float, float]],
    title: str,
) -> str:
    """One notebook's feedback page."""
    secret = _hidden_lines(nb, released)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        locked_test = bool(meta.get("grade") and not meta.get("solution"))
        source = cell.source
        hidden = False
        if grade_id and (locked_test or meta.get("locked")):
            source = released.get(grade_id, "")  # never the hidden tests
            hidden = locked_test and source.strip() != cell.source.strip()
        css = "cell"
        header = ""
        if grade_id in cell_scores:
            got, out_of = cell_scores[grade_id]
            css += " passed" if got >= out_of else " failed"
            header = f'<p class="score">{html.escape(grade_id)}: {got:g} / {out_of:g}</p>'
        parts.append(f'<section class="{css}">{header}')
        if cell.cell_type == "markdown":
            parts.append(f"<div>{_markdown(source)}</div>")
        elif cell.cell_type == "code":
            parts.append(f"<pre><code>{html.escape(source)}</code></pre>")
            if hidden:  # its outputs (a traceback quotes the failing line) could tell them
                parts.append(_hidden_outcome(cell))
            else:
                parts.extend(_output(_redacted(o, secret)) for o in cell.get("outputs", []))
        parts.append("</section>")
    return PAGE.format(title=html.escape(title), body=sanitize("".join(parts)))


HIDDEN_LINE = "[a line of a hidden test]"


def _hidden_lines(nb: NotebookNode, released: dict[str, str]) -> list[str]:
    """The lines of hidden tests (in the graded notebook, not in the release), longest first:
    learner code that read a hidden test while it ran and printed it later shows nothing."""
    lines: set[str] = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if not grade_id or not meta.get("grade") or meta.get("solution"):
            continue
        given = {line.strip() for line in released.get(grade_id, "").splitlines()}
        for line in cell.get("source", "").splitlines():
            stripped = line.strip()
            if len(stripped) >= 12 and stripped not in given and not stripped.startswith("###"):
                lines.add(stripped)
    return sorted(lines, key=len, reverse=True)


def _redacted(output: NotebookNode, secret: list[str]) -> NotebookNode:
    """The output with every hidden-test line replaced (text, tracebacks, plain and HTML)."""
    if not secret:
        return output

    def scrub(text: str) -> str:
        for line in secret:
            text = text.replace(line, HIDDEN_LINE)
            text = text.replace(html.escape(line), HIDDEN_LINE)
        return text

    def joined(value: object) -> str:
        return "".join(value) if isinstance(value, list) else str(value)

    copy = NotebookNode(dict(output))
    if "text" in output:
        copy["text"] = scrub(joined(output["text"]))
    if "traceback" in output:
        copy["traceback"] = [scrub(str(line)) for line in output["traceback"]]
    if "data" in output:
        data = dict(output["data"])
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in data:
                data[mime] = scrub(joined(data[mime]))
        copy["data"] = data
    return copy


def _hidden_outcome(cell: NotebookNode) -> str:
    errors = [o.get("ename", "Error") for o in cell.get("outputs", []) if o.output_type == "error"]
    if errors:
        return (
            f'<p class="output-error">{html.escape(errors[0])}: this test includes hidden '
            "tests; their details are not shown.</p>"
        )
    return "<p>This test includes hidden tests; their output is not shown.</p>"


def _markdown(source: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    rendered: str = markdown2html_mistune(source)
    return rendered


def _output(output: NotebookNode) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(output.get('text', ''))}</pre>"
    if kind == "error":
        from nbconvert.filters.ansi import strip_ansi

        text = strip_ansi("\n".join(output.get("traceback", [])))
        return f'<pre class="output-error">{html.escape(text)}</pre>'
    data = output.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            encoded = "".join(data[mime]) if isinstance(data[mime], list) else data[mime]
            return f'<img alt="output" src="data:{mime};base64,{encoded.strip()}">'
    if "text/html" in data:
        text = data["text/html"]
        return f"<div>{''.join(text) if isinstance(text, list) else text}</div>"
    if "text/plain" in data:
        text = data["text/plain"]
        return f"<pre>{html.escape(''.join(text) if isinstance(text, list) else text)}</pre>"
    return ""

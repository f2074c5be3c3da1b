"""The similarity normaliser and scorer, on plain notebooks: copies survive renaming, comments
and reformatting; different solutions, untouched stubs and short answers are not flagged."""

from __future__ import annotations

from typing import Any

from lms.queries import similarity
from lms.queries.similarity import Fingerprint

STUB = '''def summarise(values):
    """Mean and spread of values."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''

ORIGINAL = '''def summarise(values):
    """Mean and spread of values."""
    total = 0
    count = 0
    for value in values:
        total += value  # running sum
        count += 1
    mean = total / count
    spread = max(values) - min(values)
    return {"mean": mean, "spread": spread}
'''

# The same code: names changed, comments and blank lines and quotes and spacing changed.
RENAMED = """def summarise(values):
    # my own work, honest
    s=0
    n=0

    for v in values :
        s += v
        n += 1   # count it
    avg = s/n
    rng = max( values )-min( values )
    return {'mean': avg, 'spread': rng}
"""

# A different way to the same result.
DIFFERENT = '''def summarise(values):
    """Mean and spread of values."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    mean = sum(ordered) / len(ordered)
    return dict(mean=mean, spread=ordered[-1] - ordered[0])
'''

SETUP = "import math\nDATA = [1, 2, 3]\n"
TEST = "assert summarise([1, 3]) == {'mean': 2, 'spread': 2}\n"


def cell(source: str, grade_id: str | None = None, **marks: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if grade_id is not None:
        metadata["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, **marks}
    return {"cell_type": "code", "metadata": metadata, "source": source, "outputs": []}


def notebook(answer: str, extra: str = "") -> dict[str, Any]:
    cells = [
        cell(SETUP),
        cell(answer, "summarise", solution=True, grade=False, locked=False),
        cell(TEST, "test-summarise", solution=False, grade=True, locked=True),
    ]
    if extra:
        cells.append(cell(extra))
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}


RELEASE = {"lab": notebook(STUB)}


def fingerprint(key: int, answer: str, extra: str = "") -> Fingerprint:
    return similarity.fingerprint(key, {"lab": notebook(answer, extra)}, RELEASE)


def test_renamed_copy_with_other_comments_and_spacing_is_flagged() -> None:
    assert similarity.normalise(ORIGINAL, STUB) == similarity.normalise(RENAMED, STUB)
    a, b = fingerprint(1, ORIGINAL), fingerprint(2, RENAMED)
    assert a.size >= similarity.MIN_TOKENS
    assert similarity.similarity(a, b) == 1.0
    assert similarity.flag([a, b]) == [similarity.Match(1, 2, 1.0)]


def test_a_copy_with_a_small_edit_is_still_flagged() -> None:
    edited = RENAMED.replace("return {'mean': avg", "print(avg)\n    return {'mean': avg")
    matches = similarity.flag([fingerprint(1, ORIGINAL), fingerprint(2, edited)])
    assert len(matches) == 1
    assert similarity.THRESHOLD <= matches[0].score < 1.0


def test_different_solutions_are_not_flagged() -> None:
    a, b = fingerprint(1, ORIGINAL), fingerprint(2, DIFFERENT)
    assert similarity.similarity(a, b) < similarity.THRESHOLD
    assert similarity.flag([a, b]) == []


def test_learners_who_changed_nothing_are_not_flagged() -> None:
    untouched = [fingerprint(i, STUB) for i in range(3)]
    assert all(f.tokens == () for f in untouched)
    assert similarity.flag(untouched) == []
    # The given set-up cell and the locked test are not the learner's code either.
    assert similarity.normalise(STUB, STUB) == ()


def test_the_given_code_is_left_out_of_an_answer() -> None:
    tokens = similarity.normalise(ORIGINAL, STUB)
    assert "def" not in tokens  # the signature was given
    assert "NotImplementedError" not in tokens


def test_short_answers_are_not_flagged() -> None:
    short = """def summarise(values):
    return {"mean": 0, "spread": 0}
"""
    a, b = fingerprint(1, short), fingerprint(2, short)
    assert a.size < similarity.MIN_TOKENS
    assert similarity.flag([a, b]) == []


def test_identifiers_are_renamed_in_order_but_builtins_keywords_and_attributes_stay() -> None:
    tokens = similarity.normalise("import numpy as np\nx = np.zeros(len(y))\nif x: pass\n")
    assert tokens == (
        *("import", "v1", "as", "v2", "⏎"),
        *("v3", "=", "v2", ".", "zeros", "(", "len", "(", "v4", ")", ")", "⏎"),
        *("if", "v3", ":", "pass", "⏎"),
    )


def test_docstrings_comments_and_quote_style_are_normalised() -> None:
    one = 'def f():\n    """Doc."""\n    return "a" + \'\'\'b\'\'\'  # note\n'
    two = "def g():\n    return 'a' + \"b\"\n"
    assert similarity.normalise(one) == similarity.normalise(two)
    # Escapes are not evaluated (no warning for a regex), but an escaped quote is a quote.
    assert similarity.normalise("p = '\\d+' + 'it\\'s'") == similarity.normalise(
        'q = "\\d+" + "it\'s"'
    )


def test_code_that_does_not_tokenize_is_compared_as_text() -> None:
    broken = "def f(:\n    return (1,\n"
    assert similarity.normalise(broken) == ("def", "f(:", "return", "(1,")
    assert similarity.normalise("x = $ 1") == ("x", "=", "$", "1")
    # Two learners with the same broken code are still found.
    code = "def summarise(values)\n" + "    total = total + value * 2 - 1\n" * 3
    a, b = fingerprint(1, code), fingerprint(2, code.replace("    ", "\t"))
    assert a.size >= similarity.MIN_TOKENS
    assert similarity.flag([a, b]) == [similarity.Match(1, 2, 1.0)]


def test_magics_are_dropped_and_unmarked_cells_compared_less_the_given_ones() -> None:
    extra = "%matplotlib inline\n" + ORIGINAL.replace("summarise", "helper")
    a = fingerprint(1, STUB, extra)
    b = fingerprint(2, STUB, RENAMED.replace("summarise", "helper"))
    assert "%" not in a.tokens
    assert similarity.flag([a, b]) == [similarity.Match(1, 2, 1.0)]


def test_answer_cells_are_solutions_and_unmarked_code() -> None:
    cells = similarity.answer_cells("lab", notebook(ORIGINAL))
    assert [(c.key, c.source) for c in cells] == [("", SETUP), ("summarise", ORIGINAL)]


def test_two_hundred_alike_learners_are_all_paired() -> None:
    answers = [
        ORIGINAL.replace("total = 0", f"total = {i}").replace("+= 1", f"+= {i % 7}")
        for i in range(200)
    ]
    prints = [fingerprint(i, answer) for i, answer in enumerate(answers)]
    # Every pair is alike here (the slowest case for the prefilters): none may be lost.
    matches = similarity.flag(prints)
    assert len(matches) == 200 * 199 // 2
    assert all(m.score >= similarity.THRESHOLD for m in matches)

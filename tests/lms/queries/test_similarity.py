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


# --- What is no evidence of copying, and clusters ---------------------------------------------

# The source notebook's solution cell: the original answer between nbgrader's markers.
SOLVED = (
    ORIGINAL.replace(
        '"""Mean and spread of values."""\n',
        '"""Mean and spread of values."""\n    ### BEGIN SOLUTION\n',
    )
    + "    ### END SOLUTION\n"
)
SOURCE = {"lab": notebook(SOLVED)}


def test_an_answer_equal_to_the_reference_solution_is_left_out() -> None:
    reference = similarity.reference_answers(SOURCE, RELEASE)
    # The source's solution cell, less the given signature; the set-up cell is the release's.
    assert [(a.notebook, a.key) for a in reference] == [("lab", "summarise")]
    code = similarity.own_code({"lab": notebook(RENAMED)}, RELEASE)
    assert [c.answer in reference for c in code] == [False, True]
    other = similarity.own_code({"lab": notebook(DIFFERENT)}, RELEASE)
    assert not any(c.answer in reference for c in other)
    # Two learners who both handed in the reference are alike, but not once it is left out.
    a, b = fingerprint(1, ORIGINAL), fingerprint(2, RENAMED)
    assert similarity.flag([a, b]) == [similarity.Match(1, 2, 1.0)]
    left_a = similarity.fingerprint(1, {"lab": notebook(ORIGINAL)}, RELEASE, reference)
    left_b = similarity.fingerprint(2, {"lab": notebook(RENAMED)}, RELEASE, reference)
    assert left_a.tokens == left_b.tokens == ()
    assert similarity.flag([left_a, left_b]) == []


def test_an_answer_shared_by_many_is_left_out_and_the_rest_still_compared() -> None:
    extra = ORIGINAL.replace("summarise", "helper")  # the same in an unmarked cell

    def answers(answer: str, extra: str = "") -> list[similarity.Answer]:
        return [c.answer for c in similarity.own_code({"lab": notebook(answer, extra)}, RELEASE)]

    common = [answers(DIFFERENT) for _ in range(4)]
    everyone = [*common, answers(DIFFERENT, extra), answers(DIFFERENT, extra.replace("total", "t"))]
    shared = similarity.shared_answers(everyone, 4)
    # Six have DIFFERENT; the set-up cell is the given one (no code of their own): not counted.
    assert shared == {common[0][1]} and common[0][1].key == "summarise"
    assert similarity.shared_answers(everyone, 7) == set()
    prints = [similarity.fingerprint_of(n, each, shared) for n, each in enumerate(everyone)]
    # The four with only the shared answer have nothing left; the two with the same helper do.
    assert [p.size for p in prints[:4]] == [0, 0, 0, 0]
    assert similarity.flag(prints) == [similarity.Match(4, 5, 1.0)]


def test_the_shared_minimum_is_four_learners_or_a_tenth_of_them() -> None:
    assert [similarity.shared_minimum(n) for n in (2, 36, 40, 41, 200)] == [4, 4, 4, 5, 20]


def test_pairs_are_grouped_into_clusters_most_suspicious_first() -> None:
    Match = similarity.Match
    matches = [
        Match(1, 2, 0.95),
        Match(2, 3, 0.92),
        Match(1, 3, 0.93),
        Match(6, 7, 1.0),
        Match(4, 5, 0.99),
        Match(8, 9, 1.0),
        Match(9, 10, 0.91),
    ]
    found = similarity.clusters(matches)
    assert [(c.members, c.score, c.pairs) for c in found] == [
        ((8, 9, 10), 1.0, 2),  # as alike as 6 and 7, and bigger
        ((6, 7), 1.0, 1),
        ((4, 5), 0.99, 1),
        ((1, 2, 3), 0.95, 3),
    ]
    # The pairs that link each cluster: the most alike that join someone new, one per member
    # after the first.
    assert found[3].links == (Match(1, 2, 0.95), Match(1, 3, 0.93))
    assert found[0].links == (Match(8, 9, 1.0), Match(9, 10, 0.91))
    assert similarity.clusters([]) == []

"""Similar submissions: learners' code compared after normalisation, so that renaming variables,
rewording comments or reformatting does not hide a copy. (One file over 400 lines: the steps
below are one argument, each relying on the one before.)

Pure functions on notebooks as parsed JSON (plain dicts); nothing here reads files or the
database, and nothing imports Flask. `lms.queries.insight` loads the notebooks and calls these.

The steps, for one submission:

1. The learner's code cells: code cells marked as answers (nbgrader ``solution: true``) and
   code cells without nbgrader marks (the learner's own). Locked cells and tests are not the
   learner's work and are left out.
2. Each cell is cut into tokens with Python's `tokenize`: comments, blank lines and
   docstrings (a statement that is only a string) are dropped; string literals are rewritten
   with one quote style. IPython magics (``%...``, ``!...``) are dropped first. Code that does
   not tokenize is cut at whitespace instead, so a half-typed cell still counts.
3. The code the release gave for that cell (the stub the learner starts from) is taken out:
   the learner's lines that are, in order, the release cell's lines (difflib on whole logical
   lines, so a bracket in common by chance stays). Unmarked cells are matched against all the
   release's unmarked cells. Learners who left a cell as given have nothing left of it, so they
   never look alike because of the stub.
4. Identifiers (names that are not keywords, builtins, or attributes after a dot) become
   placeholders v1, v2, ... in order of first appearance in the cell. Each cell on its own, so
   that a cell can be held against the same cell of the reference solution and of others.

Answers that are no evidence of copying are then left out (`reference_answers`,
`shared_answers`): an answer cell equal, once normalised, to the source notebook's solution for
that cell, or one that many learners hand in alike (SHARED_LEARNERS, or SHARED_SHARE of those
compared if more). The cells that remain, one after the other, are the submission's fingerprint.

Two submissions are compared with `difflib.SequenceMatcher.ratio` on their normalised token
streams: 2 * matched tokens / (tokens of both). It reads as "the share of the code that is the
same in the same order", it forgives a few edits (one changed token in a hundred still scores
0.99), where a Jaccard index of 5-token shingles drops by up to five shingles per edit and would
need a lower, harder to explain threshold.

ratio() is pure Python and quadratic at worst (a few milliseconds for 300 tokens; 19,900 pairs
for 200 learners), so pairs are ruled out cheaply first. Identical streams score 1.0 without
matching. The length bound (2 * shorter / both is an upper bound of ratio) is exact: sorted by
length, the scan stops once the shorter side cannot reach the threshold. The shingle prefilter
is a heuristic: a pair is compared only if at least PREFILTER (0.3) of their runs of five tokens
are shared (Jaccard index of set intersections, C speed). One edited token in every ten, spread
evenly, the most a pair at 0.9 can have when edits are single tokens, still leaves 0.38; below
0.3 two submissions share little more than any two answers do (in a synthetic cohort of 200
answers drawn from the same statements: 0.16 median, 0.28 at the 99th percentile). Last,
`quick_ratio` (a multiset upper bound, against a matcher built once per submission) before
ratio itself. 200 learners with similar 300-token answers take about half a second on one
core; a cohort where every pair is alike (all 19,900 flagged) about three seconds.

Flagged pairs are grouped into clusters (`clusters`: connected components), so that a group of
five who share one answer is one line to read, not ten.
"""

from __future__ import annotations

import builtins
import difflib
import io
import keyword
import math
import re
import sys
import tokenize
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# Pairs at or above this ratio are flagged.
THRESHOLD = 0.9
# A submission with fewer tokens of its own code (structure tokens not counted) is never
# flagged: short answers look alike by necessity.
MIN_TOKENS = 20
# The prefilter: runs of this many tokens, and the share of them two submissions must have in
# common (Jaccard index) to be compared token by token.
SHINGLE = 5
PREFILTER = 0.3
# An answer this many learners share, or this share of those compared if more, is common
# knowledge (an idiom, a hint from class, a well-known snippet), not evidence of copying: a
# copying ring is two or three people, and at 4 the demo's 36 submitters already agree.
SHARED_LEARNERS = 4
SHARED_SHARE = 0.1

BUILTINS = frozenset(dir(builtins))
KEYWORDS = frozenset(keyword.kwlist)
# Line structure, kept in the stream but not counted as code.
NEWLINE, INDENT, DEDENT = "⏎", "⇥", "⇤"
STRUCTURE = frozenset({NEWLINE, INDENT, DEDENT})
FSTRING_START = getattr(tokenize, "FSTRING_START", -1)  # Python 3.12+: f-strings in parts
FSTRING_END = getattr(tokenize, "FSTRING_END", -1)
MAGIC_RE = re.compile(r"^\s*[%!]")
PREFIX_RE = re.compile(r"^([A-Za-z]*)('''|\"\"\"|'|\")", re.DOTALL)


@dataclass(frozen=True)
class Token:
    """A token before identifiers are renamed: its kind (a NAME or anything else) and text."""

    name: bool
    text: str


Line = tuple[Token, ...]


@dataclass(frozen=True)
class AnswerCell:
    """One code cell the learner wrote in: where it is and its source as written."""

    notebook: str
    key: str  # the nbgrader grade_id, or "" for an unmarked cell
    index: int  # position among the notebook's code cells
    source: str


@dataclass(frozen=True)
class Answer:
    """One answer cell as compared with the reference solution and with other learners'
    answers: its place and its own code, identifiers renamed within the cell."""

    notebook: str
    key: str  # the nbgrader grade_id, or "" for an unmarked cell
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class OwnCode:
    """An answer cell of a submission as written, and normalised."""

    cell: AnswerCell
    answer: Answer


@dataclass(frozen=True)
class Fingerprint:
    """A submission's normalised code: the token stream that is compared."""

    key: int  # who it belongs to (the submission id)
    tokens: tuple[str, ...]

    @property
    def size(self) -> int:
        """Tokens of code (line structure not counted)."""
        return sum(1 for t in self.tokens if t not in STRUCTURE)

    @cached_property
    def shingles(self) -> frozenset[int]:
        """The hashes of every run of SHINGLE tokens (for the prefilter)."""
        t = self.tokens
        return frozenset(hash(t[i : i + SHINGLE]) for i in range(max(1, len(t) - SHINGLE + 1)))


@dataclass(frozen=True)
class Match:
    """Two submissions whose code is near-identical; a < b."""

    a: int
    b: int
    score: float


# --- One cell ------------------------------------------------------------------------------


def source_of(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _nbgrader(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = cell.get("metadata")
    nb = meta.get("nbgrader") if isinstance(meta, Mapping) else None
    return nb if isinstance(nb, Mapping) else {}


def _normal_string(text: str) -> str:
    """One quote style for a string literal: 'a', "a" and '''a''' are one token. The body is
    kept as written (no escapes evaluated: a learner's '\\d' must not raise a warning), less
    the backslashes that only protected a quote."""
    match = PREFIX_RE.match(text)
    if match is None:
        return text
    prefix, quote = match.group(1).lower(), match.group(2)
    body = text[len(match.group(0)) : len(text) - len(quote)]
    body = body.replace("\\'", "'").replace('\\"', '"')
    return f'{prefix}"{body}"'


def lines_of(source: str) -> tuple[list[Line], bool]:
    """The cell's logical lines as tokens (each with the indentation that opens it and its line
    break), without comments, blank lines and docstrings. False, with the whitespace-separated
    words of each line, when the code does not tokenize."""
    code = "\n".join(line for line in source.splitlines() if not MAGIC_RE.match(line))
    try:
        raw = list(tokenize.generate_tokens(io.StringIO(code + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return _word_lines(code), False
    lines: list[Line] = []
    opening: list[Token] = []  # indentation changes before the line
    line: list[Token] = []
    only_strings = True
    for tok in raw:
        kind = tok.type
        if kind in (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER):
            continue
        if kind == tokenize.ERRORTOKEN:
            if tok.string.isspace():
                continue
            return _word_lines(code), False
        if kind in (tokenize.INDENT, tokenize.DEDENT):
            opening.append(Token(False, INDENT if kind == tokenize.INDENT else DEDENT))
        elif kind == tokenize.NEWLINE:
            # A line that is only a string is a docstring or a bare literal: dropped (its
            # indentation goes to the next line).
            if line and not only_strings:
                lines.append((*opening, *line, Token(False, NEWLINE)))
                opening = []
            line, only_strings = [], True
        elif kind == tokenize.STRING:
            line.append(Token(False, _normal_string(tok.string)))
        else:
            only_strings = False
            if kind == FSTRING_START:
                line.append(Token(False, tok.string.rstrip("'\"").lower() + '"'))
            elif kind == FSTRING_END:
                line.append(Token(False, '"'))
            else:
                line.append(Token(kind == tokenize.NAME, tok.string))
    if opening or line:
        lines.append((*opening, *line))
    return lines, True


def _word_lines(code: str) -> list[Line]:
    """Whitespace-collapsed text: each non-blank line as its words."""
    return [
        tuple(Token(False, w) for w in line.split()) for line in code.splitlines() if line.strip()
    ]


def without_given(learner: Sequence[Line], given: Sequence[Line]) -> list[Line]:
    """The learner's lines less those that are, in order, the lines the release gave."""
    if not given:
        return list(learner)
    matcher = difflib.SequenceMatcher(None, list(given), list(learner), autojunk=False)
    kept: list[Line] = []
    position = 0
    for block in matcher.get_matching_blocks():
        kept.extend(learner[position : block.b])
        position = block.b + block.size
    return kept


def rename(lines: Iterable[Line]) -> tuple[str, ...]:
    """The lines as one token stream, identifiers turned into v1, v2, ... in order of first
    appearance; keywords, builtins and attributes (a name after a dot) stay as written."""
    names: dict[str, str] = {}
    out: list[str] = []
    previous = ""
    for line in lines:
        for tok in line:
            text = tok.text
            if tok.name and text not in KEYWORDS and text not in BUILTINS and previous != ".":
                text = names.setdefault(text, f"v{len(names) + 1}")
            out.append(sys.intern(text))  # one string per token text: cached streams are small
            previous = tok.text
    return tuple(out)


def normalise(source: str, given: str = "") -> tuple[str, ...]:
    """One cell's code as compared: tokens, less the given code, identifiers renamed."""
    return rename(own_lines(source, [given]))


def own_lines(source: str, given: Sequence[str]) -> list[Line]:
    """The learner's lines of a cell less the given code (the sources of the release cells it
    may come from), compared like with like: words against words when the learner's code does
    not tokenize."""
    learner, ok = lines_of(source)
    given_lines: list[Line] = []
    for code in given:
        given_lines.extend(lines_of(code)[0] if ok else _word_lines(code))
    return without_given(learner, given_lines)


# --- One submission --------------------------------------------------------------------------


def answer_cells(name: str, notebook: Mapping[str, Any]) -> list[AnswerCell]:
    """The code cells the learner writes in: answers, and cells without nbgrader marks."""
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return []
    out = []
    index = 0
    for cell in cells:
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        meta = _nbgrader(cell)
        index += 1
        if meta and not meta.get("solution"):
            continue  # a locked cell or a test: not the learner's work
        out.append(AnswerCell(name, str(meta.get("grade_id") or ""), index, source_of(cell)))
    return out


def given_code(name: str, release: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """What the release gave: answer cells by grade_id, and the unmarked code cells."""
    by_id: dict[str, str] = {}
    unmarked: list[str] = []
    for cell in answer_cells(name, release):
        if cell.key:
            by_id[cell.key] = cell.source
        else:
            unmarked.append(cell.source)
    return by_id, unmarked


def own_code(
    notebooks: Mapping[str, Mapping[str, Any]], releases: Mapping[str, Mapping[str, Any]]
) -> list[OwnCode]:
    """The submission's answer cells less what the release gave, notebooks by name. notebooks
    and releases map a notebook name to its parsed JSON (the learner's, and the release's the
    learner started from)."""
    out = []
    for name in sorted(notebooks):
        by_id, unmarked = given_code(name, releases.get(name, {}))
        for cell in answer_cells(name, notebooks[name]):
            # An unmarked cell may be one the release gave (set-up code), changed or not.
            lines = own_lines(cell.source, [by_id.get(cell.key, "")] if cell.key else unmarked)
            out.append(OwnCode(cell, Answer(name, cell.key, rename(lines))))
    return out


def fingerprint(
    key: int,
    notebooks: Mapping[str, Mapping[str, Any]],
    releases: Mapping[str, Mapping[str, Any]],
    left_out: Container[Answer] = frozenset(),
) -> Fingerprint:
    """A submission's fingerprint (see own_code), less the answers in left_out."""
    return fingerprint_of(key, [c.answer for c in own_code(notebooks, releases)], left_out)


def fingerprint_of(
    key: int, answers: Iterable[Answer], left_out: Container[Answer] = frozenset()
) -> Fingerprint:
    """The fingerprint of a submission's answers, less those in left_out."""
    return Fingerprint(key, tuple(t for a in answers if a not in left_out for t in a.tokens))


# --- What is no evidence of copying --------------------------------------------------------


def reference_answers(
    sources: Mapping[str, Mapping[str, Any]], releases: Mapping[str, Mapping[str, Any]]
) -> frozenset[Answer]:
    """The source notebooks' solutions, normalised as a learner's answers are: a learner who
    hands in the reference solution copied it from nobody in the cohort."""
    return frozenset(c.answer for c in own_code(sources, releases) if c.answer.tokens)


def shared_minimum(learners: int) -> int:
    """How many learners must share an answer for it to be common knowledge."""
    return max(SHARED_LEARNERS, math.ceil(SHARED_SHARE * learners))


def shared_answers(answers: Iterable[Iterable[Answer]], minimum: int) -> frozenset[Answer]:
    """The answers (one iterable per submission) that at least `minimum` submissions have."""
    counts = Counter(a for each in answers for a in set(each) if a.tokens)
    return frozenset(a for a, n in counts.items() if n >= minimum)


# --- Comparing ------------------------------------------------------------------------------


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """How alike two fingerprints are: SequenceMatcher ratio of their token streams, 0..1."""
    if not a.tokens and not b.tokens:
        return 0.0
    if a.tokens == b.tokens:
        return 1.0
    return difflib.SequenceMatcher(None, a.tokens, b.tokens, autojunk=False).ratio()


def jaccard(a: Fingerprint, b: Fingerprint) -> float:
    """The share of runs of SHINGLE tokens the two have in common."""
    common = len(a.shingles & b.shingles)
    return common / (len(a.shingles) + len(b.shingles) - common)


def flag(
    fingerprints: Iterable[Fingerprint],
    threshold: float = THRESHOLD,
    min_tokens: int = MIN_TOKENS,
) -> list[Match]:
    """Every pair at or above the threshold, most alike first. Fingerprints with fewer than
    min_tokens tokens of code are left out. Pairs are ruled out cheaply first: by length, by
    the shingle prefilter, then by quick_ratio (an upper bound of ratio)."""
    items = sorted(
        (f for f in fingerprints if f.size >= min_tokens), key=lambda f: (len(f.tokens), f.key)
    )
    matches: list[Match] = []
    for i, b in enumerate(items):
        # A matcher per b: difflib caches what it learns about the second sequence.
        matcher = difflib.SequenceMatcher(None, (), b.tokens, autojunk=False)
        lb = len(b.tokens)
        for a in reversed(items[:i]):
            la = len(a.tokens)
            if 2 * la / (la + lb) < threshold:
                break  # shorter ones further down can only be worse
            if a.tokens == b.tokens:
                score = 1.0
            elif jaccard(a, b) < PREFILTER:
                continue
            else:
                matcher.set_seq1(a.tokens)
                if matcher.quick_ratio() < threshold:
                    continue
                score = matcher.ratio()
                if score < threshold:
                    continue
            matches.append(Match(min(a.key, b.key), max(a.key, b.key), round(score, 4)))
    matches.sort(key=lambda m: (-m.score, m.a, m.b))
    return matches


# --- Clusters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """Submissions linked by flagged pairs (a connected component). links are the pairs that
    joined its members, most alike first (a maximum spanning tree: each member is in one, and
    a cluster of n has n - 1); pairs counts every flagged pair within it."""

    members: tuple[int, ...]
    links: tuple[Match, ...]
    pairs: int

    @property
    def score(self) -> float:
        return self.links[0].score


def clusters(matches: Iterable[Match]) -> list[Cluster]:
    """The flagged pairs grouped into clusters, most suspicious first: the highest similarity,
    then the most members."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    links: list[Match] = []
    ordered = sorted(matches, key=lambda m: (-m.score, m.a, m.b))
    for m in ordered:  # Kruskal: the best pair that joins two groups links them
        ra, rb = root(m.a), root(m.b)
        if ra != rb:
            parent[rb] = ra
            links.append(m)
    members: dict[int, list[int]] = {}
    for x in parent:
        members.setdefault(root(x), []).append(x)
    tree: dict[int, list[Match]] = {}
    for m in links:
        tree.setdefault(root(m.a), []).append(m)
    pairs = Counter(root(m.a) for m in ordered)
    found = [Cluster(tuple(sorted(members[r])), tuple(tree[r]), pairs[r]) for r in tree]
    found.sort(key=lambda c: (-c.score, -len(c.members), c.members))
    return found

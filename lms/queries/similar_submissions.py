"""Similar submissions of an assignment, as the insight page lists them: the latest submissions'
answers normalised (lms.queries.similarity), those that are no evidence of copying left out
(equal to the reference solution, or handed in alike by many), the rest grouped into clusters
and paged; a pair side by side. Read-only.

Computing takes a fraction of a second to seconds for a cohort, so the result is cached in the
process (app.extensions), keyed on a stamp of its inputs that one cheap query reads: a new
submission makes it stale. Each notebook file's normalised answers are cached too (files are
stored by content), so that after a new submission only that file is tokenised again.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from lms.extensions import db
from lms.models import Assignment, Cohort, Release, Submission
from lms.paging import Page
from lms.queries import marking, similarity
from lms.storage import blobs, storage

# Clusters of similar submissions a page lists.
CLUSTERS_PER_PAGE = 20
# Similarity results an app process keeps (an assignment in a cohort, or in all, each), and
# notebook files whose answers it keeps (a few KB each).
CACHE_SIZE = 64
FILE_CACHE_SIZE = 5000

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def _latest_ids(assignment: Assignment, cohort: Cohort | None) -> sa.Select[tuple[int]]:
    return marking.latest_attempt_ids(assignment.id, cohort.id if cohort else None)


@dataclass(frozen=True)
class Flag:
    """Two latest submissions whose code is near-identical."""

    a: Submission
    b: Submission
    score: float


@dataclass(frozen=True)
class CellPair:
    """One answer cell of two submissions, side by side (None where one has no such cell).
    a_left_out and b_left_out say why a cell was not compared: "reference" (it is the reference
    solution), "shared" (many learners have it), or None."""

    notebook: str
    key: str  # the grade_id, or "" for a cell without nbgrader marks
    a: str | None
    b: str | None
    a_left_out: str | None = None
    b_left_out: str | None = None


@dataclass(frozen=True)
class SimilarWork:
    """The similarity of an assignment's latest submissions (in a cohort, or in all), as ids:
    what is cached. The answers left out are kept to explain a pair on its own page."""

    clusters: tuple[similarity.Cluster, ...]
    compared: int  # latest submissions
    reference: frozenset[similarity.Answer]  # empty when the source notebooks are gone
    shared: frozenset[similarity.Answer]
    shared_minimum: int  # learners who must share an answer for it to be left out
    left_out_reference: int  # answer cells equal to the reference solution
    left_out_shared: int  # other answer cells shared by shared_minimum or more

    def left_out(self, answer: similarity.Answer) -> str | None:
        if answer in self.reference:
            return "reference"
        return "shared" if answer in self.shared else None


@dataclass(frozen=True)
class ClusterView:
    """A cluster as a page shows it: its members and the pairs that link them, loaded."""

    number: int  # its place in the whole list, 1 first
    members: list[Submission]
    links: list[Flag]
    pairs: int
    score: float


@dataclass(frozen=True)
class SimilarityPage(Page):
    """One page of clusters, with what the pager macro asks of it."""

    work: SimilarWork
    clusters: list[ClusterView]


def similarity_page(
    assignment: Assignment,
    cohort: Cohort | None = None,
    page: int = 1,
    per_page: int | None = None,
) -> SimilarityPage:
    """One page of the clusters of near-identical latest submissions (of the cohort, if given),
    most suspicious first, CLUSTERS_PER_PAGE unless told; a page out of range is the nearest."""
    work = similar_work(assignment, cohort)
    per_page = per_page or CLUSTERS_PER_PAGE
    pages = max(1, math.ceil(len(work.clusters) / per_page))
    page = min(max(page, 1), pages)
    first = (page - 1) * per_page
    shown = work.clusters[first : first + per_page]
    ids = {m for c in shown for m in c.members}
    subs = {
        s.id: s
        for s in db.session.scalars(
            sa.select(Submission)
            .where(Submission.id.in_(ids))
            .options(selectinload(Submission.user), selectinload(Submission.cohort))
        )
    }
    views = [
        ClusterView(
            first + n,
            sorted((subs[m] for m in c.members), key=lambda s: (s.user.name, s.user.email)),
            [Flag(subs[link.a], subs[link.b], link.score) for link in c.links],
            c.pairs,
            c.score,
        )
        for n, c in enumerate(shown, 1)
    ]
    return SimilarityPage(page, pages, work=work, clusters=views)


def similar_work(assignment: Assignment, cohort: Cohort | None = None) -> SimilarWork:
    """The similarity of the latest submissions (of the cohort, if given), from this app's
    cache while its inputs are unchanged (see _stamp)."""
    caches: _Caches = current_app.extensions.setdefault("lms.similarity", _Caches())
    key = (assignment.id, cohort.id if cohort else None)
    stamp = _stamp(assignment, cohort)
    entry = caches.results.get(key)
    if entry is not None and entry[0] == stamp:
        return entry[1]
    found = _similar_work(assignment, cohort, caches.files)
    caches.results.put(key, (stamp, found))
    return found


def _stamp(assignment: Assignment, cohort: Cohort | None) -> tuple[object, ...]:
    """A cheap fingerprint of what a SimilarWork is computed from: the latest submissions (how
    many, the newest id and time: a new or erased submission changes one of them; submissions
    are never edited) and the assignment's content (its reference solution and releases)."""
    count, newest_id, newest_at = db.session.execute(
        sa.select(
            sa.func.count(), sa.func.max(Submission.id), sa.func.max(Submission.submitted_at)
        ).where(Submission.id.in_(_latest_ids(assignment, cohort)))
    ).one()
    return (count, newest_id, newest_at, assignment.version, assignment.content_hash)


class _Lru(Generic[K, V]):
    """A map of at most `size` entries, the least recently used dropped first; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


# A notebook file's answers, by assignment, version, file name and content digest.
FileKey = tuple[int, int, str, str]


class _Caches:
    """This app process's similarity caches (in app.extensions, shared by its threads): each
    SimilarWork with the stamp of its inputs, by (assignment, cohort); and each notebook file's
    normalised answers, so that after a new submission only its file is read and tokenised
    again. In-process, because queries only read: each process computes its own."""

    def __init__(self) -> None:
        self.results: _Lru[tuple[int, int | None], tuple[object, SimilarWork]] = _Lru(CACHE_SIZE)
        self.files: _Lru[FileKey, tuple[similarity.Answer, ...]] = _Lru(FILE_CACHE_SIZE)


def _similar_work(
    assignment: Assignment,
    cohort: Cohort | None,
    files: _Lru[FileKey, tuple[similarity.Answer, ...]],
) -> SimilarWork:
    rows = db.session.execute(
        sa.select(Submission.id, Submission.version, Submission.files).where(
            Submission.id.in_(_latest_ids(assignment, cohort))
        )
    ).tuples()
    releases = _Releases(assignment)
    answers = {
        sid: _file_answers(assignment.id, version, stored, releases, files)
        for sid, version, stored in rows
    }
    reference = _reference(assignment, releases)
    minimum = similarity.shared_minimum(len(answers))
    shared = similarity.shared_answers(answers.values(), minimum)
    work = SimilarWork((), len(answers), reference, shared - reference, minimum, 0, 0)
    reasons = Counter(work.left_out(a) for each in answers.values() for a in each if a.tokens)
    left_out = reference | shared
    prints = [similarity.fingerprint_of(sid, each, left_out) for sid, each in answers.items()]
    return replace(
        work,
        clusters=tuple(similarity.clusters(similarity.flag(prints))),
        left_out_reference=reasons["reference"],
        left_out_shared=reasons["shared"],
    )


def _file_answers(
    assignment_id: int,
    version: int,
    stored: dict[str, str],
    releases: _Releases,
    cache: _Lru[FileKey, tuple[similarity.Answer, ...]],
) -> list[similarity.Answer]:
    """A submission's answers (similarity.own_code), notebook by notebook, each file worked
    out once (cached: files are stored by content)."""
    out: list[similarity.Answer] = []
    for filename, digest in sorted(stored.items()):
        if not filename.endswith(".ipynb"):
            continue
        key = (assignment_id, version, filename, digest)
        found = cache.get(key)
        if found is None:
            parsed = _parse(blobs.get, digest)
            name = filename.removesuffix(".ipynb")
            code = similarity.own_code({name: parsed}, releases.of(version)) if parsed else []
            found = tuple(c.answer for c in code)
            cache.put(key, found)
        out.extend(found)
    return out


def _reference(assignment: Assignment, releases: _Releases) -> frozenset[similarity.Answer]:
    """The reference solution's answers: the solution cells of the assignment's source
    notebooks (in the courses folder; the release has them stripped). Submissions of older
    versions are held against the current source too: an answer that is the reference now is
    no evidence of copying either."""
    folder = Path(current_app.config["COURSES_DIR"]) / assignment.course.slug / assignment.slug
    sources = {}
    for path in sorted(folder.glob("*.ipynb")):
        parsed = _parse(lambda p: p.read_bytes(), path)
        if parsed:
            sources[path.stem] = parsed
    return similarity.reference_answers(sources, releases.of(assignment.version))


def _parse(read: Callable[[T], bytes], where: T) -> dict[str, Any] | None:
    """A notebook's JSON, or None when it cannot be read or is not a notebook object."""
    try:
        parsed = json.loads(read(where))
    except (OSError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _notebooks(submission: Submission) -> dict[str, dict[str, Any]]:
    """The submission's notebooks by name (without .ipynb), parsed; unreadable ones left out."""
    out = {}
    for filename, digest in submission.files.items():
        if filename.endswith(".ipynb") and (parsed := _parse(blobs.get, digest)) is not None:
            out[filename.removesuffix(".ipynb")] = parsed
    return out


def _release_notebooks(release: Release | None) -> dict[str, dict[str, Any]]:
    if release is None:
        return {}
    out = {}
    for name in storage().list(release.path):
        if "/" in name or not name.endswith(".ipynb"):
            continue
        parsed = _parse(storage().read, f"{release.path}/{name}")
        if parsed is not None:
            out[name.removesuffix(".ipynb")] = parsed
    return out


class _Releases:
    """The release notebooks of each version of one assignment, read once."""

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self.loaded: dict[int, dict[str, dict[str, Any]]] = {}

    def of(self, version: int) -> dict[str, dict[str, Any]]:
        if version not in self.loaded:
            release = next(
                (r for r in self.assignment.releases if r.version == version),
                self.assignment.current_release,
            )
            self.loaded[version] = _release_notebooks(release)
        return self.loaded[version]


def pair_score(a: Submission, b: Submission, work: SimilarWork | None = None) -> float:
    """How alike two submissions' code is (0..1), as the clusters measure it: less the answers
    work left out (none without it)."""
    left_out: frozenset[similarity.Answer] = work.reference | work.shared if work else frozenset()
    releases = _Releases(a.assignment)
    return similarity.similarity(
        similarity.fingerprint(a.id, _notebooks(a), releases.of(a.version), left_out),
        similarity.fingerprint(b.id, _notebooks(b), releases.of(b.version), left_out),
    )


def side_by_side(a: Submission, b: Submission, work: SimilarWork | None = None) -> list[CellPair]:
    """The learners' answer cells, paired by notebook and grade_id (cells without nbgrader
    marks by their order), in a's order with b's other cells after; each with why it was left
    out of the comparison, if work left it out."""
    left, right = _answers(a, work), _answers(b, work)
    keys = list(left) + [k for k in right if k not in left]
    none = (None, None)
    return [
        CellPair(
            k[0],
            k[1],
            left.get(k, none)[0],
            right.get(k, none)[0],
            left.get(k, none)[1],
            right.get(k, none)[1],
        )
        for k in keys
    ]


def _answers(
    sub: Submission, work: SimilarWork | None
) -> dict[tuple[str, str, int], tuple[str, str | None]]:
    """(notebook, grade_id, n) -> (source, why left out) of the submission's answer cells; n
    numbers the cells without nbgrader marks (0 for marked ones)."""
    out: dict[tuple[str, str, int], tuple[str, str | None]] = {}
    releases = _Releases(sub.assignment)
    for name, nb in sorted(_notebooks(sub).items()):
        unmarked = 0
        for code in similarity.own_code({name: nb}, releases.of(sub.version)):
            cell = code.cell
            if not cell.key:
                unmarked += 1
            why = work.left_out(code.answer) if work and code.answer.tokens else None
            out[(name, cell.key, 0 if cell.key else unmarked)] = (cell.source, why)
    return out

"""The course catalogue: read courses/ (course.toml + nbgrader notebooks) and sync it in.

load() only reads and validates; sync() writes. A sync is all-or-nothing: any problem in the
folder, or any change to a released assignment without force, and nothing is written.

Over 400 lines on purpose: reading and validating a course folder and syncing it share the
spec types; a sync is only as safe as the validation kept beside it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from autograder.notebooks import GradedCellSpec, NotebookError, graded_cells
from lms.extensions import db
from lms.models import (
    Assignment,
    AssignmentChange,
    AssignmentNotebook,
    CellKind,
    Course,
    Grade,
    GradedCell,
    Level,
    Release,
    utcnow,
)
from lms.services import ServiceError, programs

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
COURSE_KEYS = {"title", "summary", "language", "level", "assignments", "assignment", "gpu_on_cpu"}
ASSIGNMENT_KEYS = {
    "title",
    "points",
    "pass_mark",
    "gpu",
    "preload",
    "due_days",
    "instant_feedback",
}
IGNORED_NAMES = {".ipynb_checkpoints", "__pycache__", ".DS_Store"}


@dataclass(frozen=True)
class AssignmentSpec:
    slug: str
    title: str
    points: float
    pass_mark: float
    gpu: bool
    preload: tuple[str, ...]
    due_days: int
    instant_feedback: bool
    folder: Path
    notebooks: dict[str, list[GradedCellSpec]]
    content_hash: str


@dataclass(frozen=True)
class CourseSpec:
    slug: str
    title: str
    summary: str
    language: str
    level: Level
    folder: Path
    assignments: tuple[AssignmentSpec, ...]
    # Its GPU assignments may be graded on CPU workers when no GPU worker is alive.
    gpu_on_cpu: bool = False


class CatalogError(ServiceError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        return "; ".join(self.problems)


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    scheduled: int = 0


def load(root: Path) -> tuple[list[CourseSpec], list[str]]:
    """Every course under root, and every problem found (as 'course[/assignment]: message')."""
    courses: list[CourseSpec] = []
    problems: list[str] = []
    if not root.is_dir():
        return [], [f"{root}: no such folder"]
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in IGNORED_NAMES):
        course = _load_course(folder, problems)
        if course is not None:
            courses.append(course)
    if not courses and not problems:
        problems.append(f"{root}: no courses (folders with a course.toml)")
    return courses, problems


def _load_course(folder: Path, problems: list[str]) -> CourseSpec | None:
    name = folder.name
    toml_path = folder / "course.toml"
    if not toml_path.is_file():
        problems.append(f"{name}: no course.toml")
        return None
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        problems.append(f"{name}: course.toml is not valid TOML ({e})")
        return None
    before = len(problems)
    if not SLUG_RE.match(name):
        problems.append(f"{name}: folder name is not a slug (lowercase letters, digits, hyphens)")
    for key in sorted(set(data) - COURSE_KEYS):
        problems.append(f"{name}: unknown key {key!r} in course.toml")
    title = _require(data, "title", str, name, problems)
    summary = data.get("summary", "")
    language = data.get("language", "en")
    level = data.get("level", "beginner")
    gpu_on_cpu = data.get("gpu_on_cpu", False)
    if not isinstance(gpu_on_cpu, bool):
        problems.append(f"{name}: 'gpu_on_cpu' must be true or false")
    if not isinstance(summary, str):
        problems.append(f"{name}: summary must be text")
    if not isinstance(language, str) or not re.match(r"^[a-z]{2}$", language):
        problems.append(f"{name}: language must be a two-letter code such as 'en'")
    if level not in {lv.value for lv in Level}:
        problems.append(f"{name}: level must be one of {', '.join(lv.value for lv in Level)}")
    order = data.get("assignments")
    tables = data.get("assignment", {})
    if not isinstance(order, list) or not all(isinstance(s, str) for s in order) or not order:
        problems.append(f"{name}: 'assignments' must list the assignment slugs in order")
        order = []
    if not isinstance(tables, dict):
        problems.append(f"{name}: [assignment.<slug>] tables expected")
        tables = {}
    for slug in sorted({s for s in order if order.count(s) > 1}):
        problems.append(f"{name}: assignment {slug!r} is listed twice")
    for slug in sorted(set(tables) - set(order)):
        problems.append(f"{name}: [assignment.{slug}] is not in the 'assignments' list")
    folders = {p.name for p in folder.iterdir() if p.is_dir() and p.name not in IGNORED_NAMES}
    for extra in sorted(folders - set(order)):
        problems.append(f"{name}/{extra}: folder is not in the 'assignments' list")
    assignments = []
    for slug in dict.fromkeys(order):
        table = tables.get(slug)
        if not isinstance(table, dict):
            problems.append(f"{name}/{slug}: no [assignment.{slug}] table in course.toml")
            continue
        spec = _load_assignment(folder / slug, table, problems)
        if spec is not None:
            assignments.append(spec)
    if assignments and not any(
        c.kind == "manual" for a in assignments for cells in a.notebooks.values() for c in cells
    ):
        problems.append(f"{name}: no manually graded written answer in any assignment")
    if len(problems) > before or title is None:
        return None
    return CourseSpec(
        slug=name,
        title=title,
        summary=str(summary).strip(),
        language=str(language),
        level=Level(level),
        folder=folder,
        assignments=tuple(assignments),
        gpu_on_cpu=gpu_on_cpu,
    )


def _require(data: dict[str, Any], key: str, kind: type, where: str, problems: list[str]) -> Any:
    value = data.get(key)
    if value is None:
        problems.append(f"{where}: '{key}' is missing")
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        problems.append(f"{where}: '{key}' must be {kind.__name__}, not {value!r}")
        return None
    return value


def _load_assignment(
    folder: Path, table: dict[str, Any], problems: list[str]
) -> AssignmentSpec | None:
    where = f"{folder.parent.name}/{folder.name}"
    before = len(problems)
    if not SLUG_RE.match(folder.name):
        problems.append(f"{where}: assignment slug is not lowercase letters, digits, hyphens")
    for key in sorted(set(table) - ASSIGNMENT_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    title = _require(table, "title", str, where, problems)
    points = _require(table, "points", float, where, problems)
    pass_mark = _require(table, "pass_mark", float, where, problems)
    gpu = table.get("gpu", False)
    preload = table.get("preload", [])
    due_days = table.get("due_days", 14)
    instant = table.get("instant_feedback", False)
    if not isinstance(gpu, bool) or not isinstance(instant, bool):
        problems.append(f"{where}: 'gpu' and 'instant_feedback' must be true or false")
    if not isinstance(preload, list) or not all(
        isinstance(m, str) and re.match(r"^[A-Za-z_][\w.]*$", m) for m in preload
    ):
        problems.append(f"{where}: 'preload' must be a list of module names")
        preload = []
    if isinstance(due_days, bool) or not isinstance(due_days, int) or due_days < 0:
        problems.append(f"{where}: 'due_days' must be a whole number of days, 0 or more")
    if points is not None and pass_mark is not None and not 0 <= pass_mark <= points:
        problems.append(f"{where}: pass_mark {pass_mark} must be between 0 and points {points}")
    if not folder.is_dir():
        problems.append(f"{where}: no folder {folder}")
        return None
    notebooks: dict[str, list[GradedCellSpec]] = {}
    for path in sorted(folder.glob("*.ipynb")):
        try:
            notebooks[path.stem] = graded_cells(path)
        except NotebookError as e:
            problems.append(f"{where}: {e}")
    if not notebooks and len(problems) == before:
        problems.append(f"{where}: no notebook (.ipynb) in the folder")
    total = sum(c.points for cells in notebooks.values() for c in cells)
    if notebooks and points is not None and abs(total - points) > 1e-9:
        problems.append(f"{where}: course.toml says {points:g} points, the notebooks {total:g}")
    if notebooks and not any(c.kind == "autograded" for cs in notebooks.values() for c in cs):
        problems.append(f"{where}: no autograded test cell")
    if len(problems) > before:
        return None
    return AssignmentSpec(
        slug=folder.name,
        title=title,
        points=points,
        pass_mark=pass_mark,
        gpu=gpu,
        preload=tuple(preload),
        due_days=due_days,
        instant_feedback=instant,
        folder=folder,
        notebooks=notebooks,
        content_hash=content_hash(folder, table),
    )


def content_hash(folder: Path, table: dict[str, Any]) -> str:
    """sha256 of the folder's files and the assignment's course.toml settings (both grade)."""
    digest = hashlib.sha256(json.dumps(table, sort_keys=True, default=str).encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not IGNORED_NAMES & set(path.relative_to(folder).parts):
            digest.update(b"\0" + str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def current_hash(course_folder: Path, slug: str) -> str | None:
    """The content hash courses/ holds now for one assignment; None if it is not there."""
    try:
        data = tomllib.loads((course_folder / "course.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    table = data.get("assignment", {}).get(slug)
    folder = course_folder / slug
    if not isinstance(table, dict) or not folder.is_dir():
        return None
    return content_hash(folder, table)


def sync(root: Path, *, force: bool = False, actor: str = "cli") -> SyncReport:
    """Bring the database in line with courses/; see the module docstring for the rules."""
    specs, problems = load(root)
    if problems:
        raise CatalogError(problems)
    report = SyncReport()
    try:
        for spec in specs:
            _sync_course(spec, force, actor, report, problems)
        if problems:
            raise CatalogError(problems)
        report.scheduled = programs.schedule_cohorts()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return report


def _sync_course(
    spec: CourseSpec, force: bool, actor: str, report: SyncReport, problems: list[str]
) -> None:
    course = db.session.scalar(sa.select(Course).where(Course.slug == spec.slug))
    if course is None:
        course = Course(slug=spec.slug, title=spec.title)
        db.session.add(course)
    course.title, course.summary = spec.title, spec.summary
    course.language, course.level, course.synced_at = spec.language, spec.level, utcnow()
    course.gpu_on_cpu = spec.gpu_on_cpu
    existing = {a.slug: a for a in course.assignments}
    for position, a_spec in enumerate(spec.assignments):
        key = f"{spec.slug}/{a_spec.slug}"
        assignment = existing.pop(a_spec.slug, None)
        if assignment is None:
            assignment = Assignment(course=course, slug=a_spec.slug, version=1)
            db.session.add(assignment)
            report.created.append(key)
        elif assignment.content_hash == a_spec.content_hash and assignment.active:
            assignment.position = position
            report.unchanged.append(key)
            continue
        elif graded := _graded_cells_removed(assignment, a_spec):
            problems.append(
                f"{key}: learners have grades for {', '.join(graded)}, which the new content "
                "removes; keep those cells (grades are never deleted)"
            )
            continue
        elif _is_released(assignment):
            if not force:
                problems.append(
                    f"{key}: version {assignment.version} is released and its content changed; "
                    "changing it changes grades: sync with --force to make a new version"
                )
                continue
            db.session.add(
                AssignmentChange(
                    assignment=assignment,
                    changed_by=actor,
                    old_hash=assignment.content_hash,
                    new_hash=a_spec.content_hash,
                    old_version=assignment.version,
                    new_version=assignment.version + 1,
                    details=_cell_changes(assignment, a_spec),
                )
            )
            assignment.version += 1
            report.new_versions.append(key)
        else:
            report.updated.append(key)
        _apply(assignment, a_spec, position)
    for gone in existing.values():
        if gone.active:
            gone.active = False
            report.deactivated.append(f"{spec.slug}/{gone.slug}")


def _graded_cells_removed(assignment: Assignment, spec: AssignmentSpec) -> list[str]:
    """notebook:grade_id of each cell that the new content drops although it has grades."""
    if assignment.id is None:
        return []
    kept = {(nb, c.grade_id) for nb, cells in spec.notebooks.items() for c in cells}
    dropped = {
        c.id: f"{nb.name}:{c.grade_id}"
        for nb in assignment.notebooks
        for c in nb.cells
        if (nb.name, c.grade_id) not in kept
    }
    if not dropped:
        return []
    with_grades = db.session.scalars(
        sa.select(Grade.cell_id).where(Grade.cell_id.in_(dropped)).distinct()
    )
    return sorted(dropped[cell_id] for cell_id in with_grades)


def _is_released(assignment: Assignment) -> bool:
    return (
        db.session.scalar(
            sa.select(Release.id).where(
                Release.assignment_id == assignment.id, Release.version == assignment.version
            )
        )
        is not None
    )


def _cell_changes(assignment: Assignment, spec: AssignmentSpec) -> dict[str, Any]:
    old = {f"{nb.name}:{c.grade_id}": c.points for nb in assignment.notebooks for c in nb.cells}
    new = {f"{nb}:{c.grade_id}": c.points for nb, cells in spec.notebooks.items() for c in cells}
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "points_changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
        "points": [assignment.points, spec.points],
    }


def _apply(assignment: Assignment, spec: AssignmentSpec, position: int) -> None:
    assignment.title, assignment.position = spec.title, position
    assignment.points, assignment.pass_mark = spec.points, spec.pass_mark
    assignment.gpu, assignment.preload = spec.gpu, list(spec.preload)
    assignment.due_days, assignment.instant_feedback = spec.due_days, spec.instant_feedback
    assignment.content_hash, assignment.active = spec.content_hash, True
    # Cells are matched by grade_id so rows (and later the grades that point at them) survive.
    notebooks = {nb.name: nb for nb in assignment.notebooks}
    for name, cells in spec.notebooks.items():
        notebook = notebooks.pop(name, None) or AssignmentNotebook(name=name)
        if notebook not in assignment.notebooks:
            assignment.notebooks.append(notebook)
        by_id = {c.grade_id: c for c in notebook.cells}
        for cell_position, cell in enumerate(cells):
            row = by_id.pop(cell.grade_id, None) or GradedCell(grade_id=cell.grade_id, points=0)
            if row not in notebook.cells:
                notebook.cells.append(row)
            row.position, row.points, row.kind = cell_position, cell.points, CellKind(cell.kind)
        for stale in by_id.values():
            notebook.cells.remove(stale)
    for stale_notebook in notebooks.values():
        assignment.notebooks.remove(stale_notebook)

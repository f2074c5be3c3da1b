"""A released assignment in a cohort with learners and an instructor, for grading tests.

Built through the services as the app builds it: courses/ synced, released with nbgrader,
a cohort taking the course, learners enrolled. Submissions are the release notebook with the
answer cell filled in, as a learner would save it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from autograder.release import generate_release
from lms.extensions import db
from lms.models import (
    Assignment,
    Cohort,
    CohortAssignment,
    GradingJob,
    JobState,
    User,
    utcnow,
)
from lms.services import catalog, releases
from lms.services.submissions import Upload
from lms.storage import storage
from tests import factories
from tests.course_builder import write_course

RIGHT = "def double(x):\n    return int(2 * x)\n"
WRONG = "def double(x):\n    return x\n"
CRASHING = "raise RuntimeError('learner code crashed')\n"
NOTEBOOK = "double-it.ipynb"


@dataclass
class World:
    assignment: Assignment
    cohort: Cohort
    scheduled: CohortAssignment
    instructor: User
    learners: list[User]


def build(courses_dir: Path, learners: int = 2, **assignment_settings: Any) -> World:
    write_course(courses_dir, assignments={"double-it": assignment_settings})
    catalog.sync(courses_dir)
    assignment = db.session.scalar(sa.select(Assignment))
    assert assignment is not None
    _reuse_release(assignment)
    releases.release(assignment)
    course = assignment.course
    cohort = factories.cohort(factories.program(), courses=[course])
    scheduled = db.session.scalar(sa.select(CohortAssignment))
    assert scheduled is not None
    # Open since yesterday, due in a week: on time unless a test moves the dates.
    scheduled.opens_at = utcnow() - timedelta(days=1)
    scheduled.due_at = utcnow() + timedelta(days=7)
    db.session.commit()
    people = [factories.learner(cohort, f"learner{i}@test.org") for i in range(learners)]
    return World(assignment, cohort, scheduled, factories.instructor(course), people)


_generated: dict[str, Path] = {}


def _reuse_release(assignment: Assignment) -> None:
    """nbgrader takes seconds to generate a release: a test run generates each content
    version once and copies it where releases.release() finds it already made."""
    cached = _generated.get(assignment.content_hash)
    if cached is None:
        cached = Path(tempfile.mkdtemp(prefix="release-cache-")) / "release"
        source = releases.courses_root() / assignment.course.slug / assignment.slug
        generate_release(source, cached)
        _generated[assignment.content_hash] = cached
    storage().put_folder(releases.release_key(assignment, assignment.version), cached)


def release_notebook(assignment: Assignment) -> dict[str, Any]:
    release = assignment.current_release
    assert release is not None
    notebook: dict[str, Any] = json.loads(storage().read(f"{release.path}/{NOTEBOOK}"))
    return notebook


def answer(assignment: Assignment, code: str) -> Upload:
    """The release notebook with the answer cell replaced by `code`."""
    nb = release_notebook(assignment)
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "double":
            cell["source"] = code
    return Upload(NOTEBOOK, json.dumps(nb).encode())


def grade_queued() -> int:
    """Grade every queued job here, in this process, as `flask lms worker` would (real
    autograder, real sandbox). Returns how many were graded. Use with the `graders` fixture,
    which closes the warm kernel pools at the end of the test."""
    from lms import worker

    ids = list(
        db.session.scalars(sa.select(GradingJob.id).where(GradingJob.state == JobState.QUEUED))
    )
    for job_id in ids:
        worker.run_job(job_id)
    db.session.expire_all()
    return len(ids)

"""`flask --app wsgi lms <verb>`: the command line for admins and scripts, one module per area.

Commands are thin: they parse options, call services, and print one line per outcome (with a
progress bar for long work). A database that is missing, unreachable or not migrated is said
in one line by the `lms` group, whatever the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import click
import sqlalchemy as sa

from lms.extensions import db
from lms.models import Assignment, Course


def database_problem(error: sa.exc.DBAPIError) -> str | None:
    """One line for a command that met a database it cannot use, or None for any other error
    (a real bug keeps its traceback)."""
    where = db.engine.url.render_as_string(hide_password=True)
    text = str(error.orig).lower()
    if isinstance(error, sa.exc.OperationalError) and any(
        words in text
        for words in ("connection", "could not connect", "unable to open", "timeout", "resolve")
    ):
        first = str(error.orig).strip().splitlines()[0]
        return f"Cannot reach the database {where}: {first}"
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"The database {where} has no tables yet: run `flask --app wsgi db upgrade` first."
    if "no such column" in text or ("column" in text and "does not exist" in text):
        return (
            f"The database {where} is not migrated to this version: "
            "run `flask --app wsgi db upgrade` first."
        )
    return None


class _Commands(click.Group):
    """The `lms` group: a database that is missing, unreachable or not migrated is said in
    one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except sa.exc.DBAPIError as e:
            problem = database_problem(e)
            if problem is None:
                raise
            raise click.ClickException(problem) from None


@click.group(cls=_Commands)
def lms() -> None:
    """Manage the LMS."""


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def courses_root() -> Path:
    from flask import current_app

    return Path(current_app.config["COURSES_DIR"])


def find_assignment(spec: str) -> Assignment:
    """COURSE/ASSIGNMENT (or an assignment slug that only one course has)."""
    course_slug, _, slug = spec.rpartition("/")
    query = sa.select(Assignment).join(Course).where(Assignment.slug == slug)
    if course_slug:
        query = query.where(Course.slug == course_slug)
    found = list(db.session.scalars(query))
    if len(found) != 1:
        fail(
            f"No assignment {spec!r}." if not found else f"{spec!r} is ambiguous: use COURSE/SLUG."
        )
    return found[0]


# The commands, registered on `lms` as their modules load.
from lms.commands import courses, demo, exports, grading, people, processes, programs  # noqa: E402, F401, I001

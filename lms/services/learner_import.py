"""Import learners from CSV into a cohort: all rows or none, and re-imports change nothing.

The file is checked whole before anything is written; every bad row is reported with its line
number, as a code and its values, said in the reader's language where it is shown
(RowError.message). Writes go in bulk (a few statements per thousand rows), so 50,000 rows
take seconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.exc import IntegrityError

from lms.extensions import db
from lms.models import AuditEvent, Cohort, Enrolment, EnrolmentStatus, Organisation, User, utcnow
from lms.services import ServiceError
from lms.services.users import is_valid_email, normalize_email

COLUMNS = ("email", "name", "organisation")
REQUIRED_COLUMNS = ("email",)
# Spellings people use in spreadsheets, mapped to our column names.
COLUMN_ALIASES = {
    "e-mail": "email",
    "email address": "email",
    "full name": "name",
    "full_name": "name",
    "organization": "organisation",
    "org": "organisation",
}
MAX_NAME_LENGTH = 200
CHUNK = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class RowError:
    """A problem of the file at a line: a code (see describe) and the values its message
    names. Kept untranslated, so that each page, mail or terminal says it in its reader's
    language."""

    line: int
    code: str
    params: dict[str, str | int] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return describe(self)

    def __str__(self) -> str:
        return str(_("line %(line)d: %(problem)s", line=self.line, problem=self.message))


def describe(error: RowError) -> str:
    """The problem in the reader's language (gettext's: the request's, else English)."""
    p = error.params
    messages: dict[str, Callable[[], str]] = {
        "not-utf8": lambda: _("not valid UTF-8 text; save the file as 'CSV UTF-8' and retry"),
        "empty-file": lambda: _("the file is empty; the first line must name the columns"),
        "unreadable-file": lambda: _("not a readable CSV file (%(reason)s)", **p),
        "unknown-columns": lambda: _("unknown columns: %(columns)s; allowed: %(allowed)s", **p),
        "repeated-columns": lambda: _("columns given twice: %(columns)s", **p),
        "missing-columns": lambda: _("missing required columns: %(columns)s", **p),
        "field-count": lambda: ngettext(
            "expected %(num)d field, found %(found)d",
            "expected %(num)d fields, found %(found)d",
            int(p["num"]),
            found=p["found"],
        ),
        "missing-email": lambda: _("missing email"),
        "invalid-email": lambda: _("not a valid email address: '%(email)s'", **p),
        "duplicate-email": lambda: _("duplicate email %(email)s (first on line %(first)d)", **p),
        "long-name": lambda: _("name longer than %(num)d characters", **p),
        "unknown-organisation": lambda: _("unknown organisation '%(name)s'", **p),
        "unreadable-row": lambda: _("not a readable CSV row (%(reason)s)", **p),
        "no-learners": lambda: _("no learners in the file"),
        "concurrent-change": lambda: _(
            "another change to these learners happened at the same time; retry"
        ),
    }
    return messages[error.code]()


@dataclass(frozen=True)
class LearnerRow:
    line: int
    email: str
    name: str
    organisation_id: int | None


@dataclass(frozen=True)
class ImportReport:
    rows: int
    users_created: int
    users_existing: int
    enrolled: int
    already_enrolled: int


class ImportRejected(ServiceError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(errors)
        self.errors = errors

    def __str__(self) -> str:
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = len(self.errors) - 5
        if more > 0:
            return str(
                ngettext(
                    "Nothing was imported. %(problems)s; and %(num)d more problem",
                    "Nothing was imported. %(problems)s; and %(num)d more problems",
                    more,
                    problems=shown,
                )
            )
        return str(_("Nothing was imported. %(problems)s", problems=shown))


def parse(data: bytes) -> tuple[list[LearnerRow], list[RowError]]:
    """Check the whole file; rows are only usable when the error list is empty."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], _encoding_errors(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    errors: list[RowError] = []
    try:
        header = next(reader)
    except StopIteration:
        return [], [RowError(1, "empty-file")]
    except csv.Error as e:
        return [], [RowError(1, "unreadable-file", {"reason": str(e)})]
    columns = [COLUMN_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    unknown = [h for h, c in zip(header, columns, strict=True) if c not in COLUMNS]
    if unknown:
        errors.append(
            RowError(
                1,
                "unknown-columns",
                {"columns": ", ".join(repr(u) for u in unknown), "allowed": ", ".join(COLUMNS)},
            )
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        errors.append(RowError(1, "repeated-columns", {"columns": ", ".join(duplicated)}))
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        errors.append(RowError(1, "missing-columns", {"columns": ", ".join(missing)}))
    if errors:
        return [], errors

    index = {c: i for i, c in enumerate(columns)}
    organisations = _organisation_lookup()
    rows: list[LearnerRow] = []
    first_line_of: dict[str, int] = {}
    line = 1
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(columns):
                errors.append(
                    RowError(line, "field-count", {"num": len(columns), "found": len(record)})
                )
                continue
            email = normalize_email(record[index["email"]])
            name = record[index["name"]].strip() if "name" in index else ""
            org_text = record[index["organisation"]].strip() if "organisation" in index else ""
            if not email:
                errors.append(RowError(line, "missing-email"))
                continue
            if not is_valid_email(email):
                errors.append(RowError(line, "invalid-email", {"email": email}))
                continue
            if email in first_line_of:
                errors.append(
                    RowError(
                        line, "duplicate-email", {"email": email, "first": first_line_of[email]}
                    )
                )
                continue
            first_line_of[email] = line
            if len(name) > MAX_NAME_LENGTH:
                errors.append(RowError(line, "long-name", {"num": MAX_NAME_LENGTH}))
                continue
            organisation_id = None
            if org_text:
                organisation_id = organisations.get(org_text.lower())
                if organisation_id is None:
                    errors.append(RowError(line, "unknown-organisation", {"name": org_text}))
                    continue
            rows.append(LearnerRow(line, email, name or email.split("@")[0], organisation_id))
    except csv.Error as e:
        errors.append(RowError(line + 1, "unreadable-row", {"reason": str(e)}))
    if not rows and not errors:
        errors.append(RowError(2, "no-learners"))
    return rows, errors


def _encoding_errors(data: bytes) -> list[RowError]:
    errors = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(RowError(number, "not-utf8"))
    return errors


def _organisation_lookup() -> dict[str, int]:
    """Organisation ids by lowercased name and by slug."""
    lookup: dict[str, int] = {}
    for org_id, name, slug in db.session.execute(
        sa.select(Organisation.id, Organisation.name, Organisation.slug)
    ):
        lookup[name.lower()] = org_id
        lookup[slug] = org_id
    return lookup


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _user_ids(emails: Iterable[str]) -> dict[str, int]:
    query = sa.select(User.email, User.id).where(User.email.in_(list(emails)))
    return {email: user_id for email, user_id in db.session.execute(query).tuples()}


def import_learners(
    cohort: Cohort,
    data: bytes,
    on_progress: Callable[[int], None] | None = None,
    by: User | None = None,
) -> ImportReport:
    """Create missing users and enrol every row's learner in the cohort, in one transaction.
    Each person created or enrolled gets an audit event naming `by` (None: the command line).

    Raises ImportRejected, having written nothing, when any row is bad. Existing users are
    matched by email and left as they are; learners already in the cohort are left as they are.
    on_progress(n) is called as each batch of n rows is written.
    """
    rows, errors = parse(data)
    if errors:
        raise ImportRejected(errors)
    already = set(
        db.session.scalars(sa.select(Enrolment.user_id).where(Enrolment.cohort_id == cohort.id))
    )
    created = existing = enrolled = 0
    cohort_id = cohort.id
    try:
        for chunk in _chunks(rows, CHUNK):
            now = utcnow()
            ids = _user_ids(r.email for r in chunk)
            new_rows = [r for r in chunk if r.email not in ids]
            existing += len(chunk) - len(new_rows)
            if new_rows:
                db.session.execute(
                    sa.insert(User),
                    [
                        {
                            "email": r.email,
                            "name": r.name,
                            "organisation_id": r.organisation_id,
                            "active": True,
                            "created_at": now,
                        }
                        for r in new_rows
                    ],
                )
                created += len(new_rows)
                ids.update(_user_ids(r.email for r in new_rows))
            new_ids = {ids[r.email] for r in new_rows}
            to_enrol = [ids[r.email] for r in chunk if ids[r.email] not in already]
            if to_enrol:
                db.session.execute(
                    sa.insert(AuditEvent),
                    [
                        {
                            "at": now,
                            "actor_id": by.id if by is not None else None,
                            "subject_id": user_id,
                            "action": "imported" if user_id in new_ids else "enrolled",
                            "detail": f"cohort {cohort.slug} (CSV import)",
                        }
                        for user_id in to_enrol
                    ],
                )
                db.session.execute(
                    sa.insert(Enrolment),
                    [
                        {
                            "user_id": user_id,
                            "cohort_id": cohort_id,
                            "status": EnrolmentStatus.ENROLLED,
                            "enrolled_at": now,
                        }
                        for user_id in to_enrol
                    ],
                )
                already.update(to_enrol)
                enrolled += len(to_enrol)
            if on_progress is not None:
                on_progress(len(chunk))
        db.session.commit()
    except IntegrityError as e:
        db.session.rollback()
        raise ImportRejected([RowError(0, "concurrent-change")]) from e
    except BaseException:
        db.session.rollback()
        raise
    return ImportReport(
        rows=len(rows),
        users_created=created,
        users_existing=existing,
        enrolled=enrolled,
        already_enrolled=len(rows) - enrolled,
    )

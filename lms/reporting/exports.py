"""Progress reports (lms.reporting.report.Report) written as files: CSV here, XLSX in
xlsx_export and PDF in pdf_export, all through write().

- CSV: the learner rows, UTF-8 with a BOM (so Excel reads Korean and Vietnamese), ISO dates.
  Every text cell that a spreadsheet would read as a formula (it starts with = + - @, a tab or
  a carriage return) gets a leading apostrophe (OWASP's advice on CSV injection). Every text
  field is quoted (numbers stay bare), and inside text, wherever a spreadsheet splitting on
  another character (";" in many locales, a tab, "|") or a line break would start a new cell
  with = + - @ or a quote, an apostrophe goes before that character too.
- XLSX and PDF: see their modules.

Flask-free apart from gettext for the labels (outside a request they stay in English). The
writers stream: the learner rows are produced by the report as they are written, and
`on_progress(rows_written)` is called every PROGRESS_EVERY rows and once at the end.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flask_babel import gettext as _

from lms.reporting.report import Report, Table

if TYPE_CHECKING:
    pass

ProgressCallback = Callable[[int], None]

# Report the rows written this often (and once at the end).
PROGRESS_EVERY = 2000

FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
}

# The first characters that make a spreadsheet read a cell as a formula (OWASP).
RISKY = frozenset("=+-@\t\r")
# Inside text: a character that another reader splits cells or rows on (a ";" or "|" list
# separator, a tab, a line break), then spaces, then a formula character or a quote (which
# would open a quoted cell starting with one). An apostrophe goes before that character.
_SPLIT_THEN_RISKY = re.compile(r'([;|\t\r\n] *)(?=[=+\-@\t\r"])')


def safe_text(value: str) -> str:
    """A text cell for CSV that no spreadsheet runs as a formula: text starting with = + - @,
    a tab or a carriage return gets a leading apostrophe, and so does such a character (or a
    quote) right after a ; | tab or line break inside the text. Other text is unchanged."""
    if value[:1] in RISKY:
        value = "'" + value
    return _SPLIT_THEN_RISKY.sub(r"\1'", value)


def write(
    report: Report,
    fmt: str,
    stream: IO[bytes] | str | Path,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Write the report in one of FORMATS (a binary stream; XLSX also takes a path)."""
    if fmt == "csv":
        write_csv(report, _binary(stream), on_progress)
    elif fmt == "xlsx":
        from lms.reporting.xlsx_export import write_xlsx  # XlsxWriter: loaded when asked for

        write_xlsx(report, stream, on_progress)
    elif fmt == "pdf":
        from lms.reporting.pdf_export import write_pdf  # fpdf2: loaded when asked for

        write_pdf(report, _binary(stream), on_progress)
    else:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


def _binary(stream: IO[bytes] | str | Path) -> IO[bytes]:
    if isinstance(stream, str | Path):
        raise TypeError("CSV and PDF are written to a binary stream")
    return stream


def rows_with_progress(
    table: Table, on_progress: ProgressCallback | None, every: int = PROGRESS_EVERY
) -> Iterable[Sequence[Any]]:
    """The table's rows, calling on_progress(rows so far) every `every` rows and at the end."""
    done = 0
    for done, row in enumerate(table.rows(), 1):  # noqa: B007 - done is used after the loop
        yield row
        if on_progress is not None and done % every == 0:
            on_progress(done)
    if on_progress is not None:
        on_progress(done)


# --- CSV --------------------------------------------------------------------------------


def write_csv(
    report: Report, stream: IO[bytes], on_progress: ProgressCallback | None = None
) -> None:
    """The learner rows under their header (the summary as label, value pairs when the
    report has no learner table)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        # Every text field quoted, numbers bare (None and dates are written quoted too).
        writer = csv.writer(text, quoting=csv.QUOTE_NONNUMERIC)
        table = report.learners
        if table is None:
            writer.writerow([safe_text(_("Figure")), safe_text(_("Value"))])
            writer.writerows(_csv_row((label, value)) for label, value in report.summary)
            if on_progress is not None:
                on_progress(0)
            return
        writer.writerow([safe_text(column.label) for column in table.columns])
        writer.writerows(map(_csv_row, rows_with_progress(table, on_progress)))
    finally:
        text.flush()
        text.detach()  # the caller's stream stays open


def _csv_row(row: Sequence[Any]) -> list[Any]:
    # One pass: 50,000 rows in a fraction of a second. csv writes numbers with repr (plain
    # digits), dates as ISO and None as "".
    return [
        safe_text(v) if isinstance(v, str) else (_iso(v) if isinstance(v, datetime) else v)
        for v in row
    ]


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC without the offset ("2026-05-01 12:00:00"), which spreadsheets read
    as a date and time."""
    if moment.tzinfo is not None and moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(sep=" ", timespec="seconds")[:19]


def naive_utc(moment: datetime) -> datetime:
    """The moment in UTC without its zone (what XLSX cells and PDF text hold)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)

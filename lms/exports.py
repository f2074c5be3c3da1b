"""Progress reports (lms.report.Report) written as files: CSV, XLSX and PDF.

- CSV: the learner rows, UTF-8 with a BOM (so Excel reads Korean and Vietnamese), ISO dates.
  Every text cell that a spreadsheet would read as a formula (it starts with = + - @, a tab or
  a carriage return) gets a leading apostrophe (OWASP's advice on CSV injection). Every text
  field is quoted (numbers stay bare), and inside text, wherever a spreadsheet splitting on
  another character (";" in many locales, a tab, "|") or a line break would start a new cell
  with = + - @ or a quote, an apostrophe goes before that character too.
- XLSX (XlsxWriter, constant memory): a summary sheet with the funnel and the weekly
  completions as tables and native charts, a sheet per small table and the learner rows.
  Every text cell is written as a string, never as a formula, and keeps its characters.
- PDF (fpdf2): the summary, the charts (lms.charts, as PNG), the small tables and, for small
  cohort and course reports, the learners; A4, DejaVu Sans (with a CJK font where the system
  has one), page numbers in the footer.

Flask-free apart from gettext for the labels (outside a request they stay in English). The
writers stream: the learner rows are produced by the report as they are written, and
`on_progress(rows_written)` is called every PROGRESS_EVERY rows and once at the end.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from flask_babel import gettext as _

from lms import pdf_fonts
from lms.report import Column, ColumnKind, Report, Table

if TYPE_CHECKING:
    from fpdf import FPDF
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

ProgressCallback = Callable[[int], None]

# Report the rows written this often (and once at the end).
PROGRESS_EVERY = 2000
# The PDF lists the learners of a cohort or course report up to this many; past it, it says
# that the list is in the CSV and XLSX exports.
PDF_MAX_LEARNERS = 2000

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
        write_xlsx(report, stream, on_progress)
    elif fmt == "pdf":
        write_pdf(report, _binary(stream), on_progress)
    else:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


def _binary(stream: IO[bytes] | str | Path) -> IO[bytes]:
    if isinstance(stream, str | Path):
        raise TypeError("CSV and PDF are written to a binary stream")
    return stream


def _rows(
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
        writer.writerows(map(_csv_row, _rows(table, on_progress)))
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


# --- XLSX -------------------------------------------------------------------------------

_NUMBER_FORMATS: dict[ColumnKind, str] = {
    "int": "#,##0",
    "float": "#,##0.0#",
    "percent": "0.0%",
    "text": "General",
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
}
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_name(title: str, taken: set[str]) -> str:
    """A valid, unique worksheet name: at most 31 characters, none of []:*?/\\, not starting
    or ending with an apostrophe, not empty; unique ignoring case."""
    name = " ".join(_BAD_SHEET_CHARS.sub(" ", title).split()).strip("'").strip() or _("Sheet")
    name = name[:31].strip()
    candidate, n = name, 2
    while candidate.casefold() in taken or candidate.casefold() == "history":
        suffix = f" ({n})"
        candidate = name[: 31 - len(suffix)].rstrip() + suffix
        n += 1
    taken.add(candidate.casefold())
    return candidate


class _XlsxCells:
    """Writes plain values into a worksheet with the right cell type: text is always a string
    cell (never a formula, never a number or a URL), numbers numbers, dates dates."""

    def __init__(self, workbook: Any) -> None:
        self.formats: dict[str, Format] = {}
        self.workbook = workbook

    def format(self, num_format: str, bold: bool = False) -> Format:
        key = f"{num_format}|{bold}"
        if key not in self.formats:
            properties: dict[str, Any] = {"num_format": num_format}
            if bold:
                properties["bold"] = True
            self.formats[key] = self.workbook.add_format(properties)
        return self.formats[key]

    def text(self, sheet: Worksheet, row: int, col: int, value: str, fmt: Any = None) -> None:
        if value.startswith("<r>") and value.endswith("</r>") and len(value) > 6:
            # In constant-memory mode XlsxWriter copies such text into the XML as it is (it
            # takes it for its own rich string markup): written as a rich string, it is
            # escaped like any other text and reads back unchanged.
            sheet.write_rich_string(row, col, value[:1], value[1:-1], value[-1:])
        elif fmt is None:
            sheet.write_string(row, col, value)
        else:
            sheet.write_string(row, col, value, fmt)

    def write(
        self, sheet: Worksheet, row: int, col: int, value: Any, kind: ColumnKind | None = None
    ) -> None:
        if value is None:
            return
        if isinstance(value, str):
            self.text(sheet, row, col, str(value))
        elif isinstance(value, bool):
            sheet.write_boolean(row, col, value)
        elif isinstance(value, int | float | Decimal):
            if float(value) - float(value) != 0:
                return  # NaN and infinities stay empty
            number_kind: ColumnKind = (
                kind
                if kind in ("int", "float", "percent")
                else ("int" if isinstance(value, int) else "float")
            )
            sheet.write_number(row, col, float(value), self.format(_NUMBER_FORMATS[number_kind]))
        elif isinstance(value, datetime):
            sheet.write_datetime(row, col, _naive_utc(value), self.format("yyyy-mm-dd hh:mm"))
        elif isinstance(value, date):
            sheet.write_datetime(row, col, value, self.format("yyyy-mm-dd"))
        else:
            self.text(sheet, row, col, str(value))


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def write_xlsx(
    report: Report,
    target: IO[bytes] | str | Path,
    on_progress: ProgressCallback | None = None,
) -> None:
    """A Summary sheet (title, figures, funnel and weekly completions with native charts), a
    sheet per small table and a Learners sheet (frozen bold header, filters, typed columns)."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(target) if isinstance(target, Path) else target,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    workbook.set_properties(
        {"title": report.title, "created": _naive_utc(report.generated_at), "comments": ""}
    )
    cells = _XlsxCells(workbook)
    taken: set[str] = set()
    _xlsx_summary(report, workbook, cells, sheet_name(_("Summary"), taken))
    for table in report.tables:
        _xlsx_table(workbook, cells, sheet_name(table.title, taken), table, None)
    if report.learners is not None:
        _xlsx_table(workbook, cells, sheet_name(_("Learners"), taken), report.learners, on_progress)
    elif on_progress is not None:
        on_progress(0)
    workbook.close()


def _xlsx_summary(report: Report, workbook: Any, cells: _XlsxCells, name: str) -> None:
    sheet = workbook.add_worksheet(name)
    title = workbook.add_format({"bold": True, "font_size": 14})
    bold = workbook.add_format({"bold": True})
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 2, 16)
    cells.text(sheet, 0, 0, report.title, title)
    cells.text(sheet, 1, 0, _("Generated at (UTC)"))
    cells.write(sheet, 1, 1, report.generated_at)
    row = 3
    for label, value in report.summary:
        cells.text(sheet, row, 0, str(label))
        cells.write(sheet, row, 1, value)
        row += 1

    chart_row = 3
    if report.funnel:
        row += 1
        cells.text(sheet, row, 0, _("Stage"), bold)
        cells.text(sheet, row, 1, _("Learners"), bold)
        first = row + 1
        for stage, count in report.funnel:
            row += 1
            cells.text(sheet, row, 0, stage)
            cells.write(sheet, row, 1, count, "int")
        bars = workbook.add_chart({"type": "bar"})
        bars.add_series(
            {
                "name": _("Learners"),
                "categories": [name, first, 0, row, 0],
                "values": [name, first, 1, row, 1],
                "fill": {"color": "#1f5fa8"},
                "data_labels": {"value": True, "num_format": "#,##0"},
            }
        )
        bars.set_title({"name": _("Funnel")})
        bars.set_legend({"none": True})
        bars.set_y_axis({"reverse": True})  # the target on top, as on the dashboard
        bars.set_x_axis({"num_format": "#,##0", "min": 0})
        bars.set_size({"width": 560, "height": 300})
        sheet.insert_chart(chart_row, 4, bars)
        chart_row += 17

    if report.weekly:
        forecast = report.forecast
        row += 2
        cells.text(sheet, row, 0, _("Week (starting Monday)"), bold)
        cells.text(sheet, row, 1, _("Completed (cumulative)"), bold)
        if forecast is not None:
            cells.text(sheet, row, 2, _("Straight line to the target"), bold)
        first = row + 1
        start = report.start or report.weekly[0][0]
        for monday, count in report.weekly:
            row += 1
            cells.write(sheet, row, 0, monday)
            cells.write(sheet, row, 1, count, "int")
            if forecast is not None:
                line = _straight_line(start, forecast.target_date, forecast.target, monday)
                cells.write(sheet, row, 2, line, "int")
        lines = workbook.add_chart({"type": "line"})
        lines.add_series(
            {
                "name": [name, first - 1, 1],
                "categories": [name, first, 0, row, 0],
                "values": [name, first, 1, row, 1],
                "line": {"color": "#1f5fa8", "width": 2.25},
            }
        )
        if forecast is not None:
            lines.add_series(
                {
                    "name": [name, first - 1, 2],
                    "categories": [name, first, 0, row, 0],
                    "values": [name, first, 2, row, 2],
                    "line": {"color": "#555555", "width": 1.5, "dash_type": "dash"},
                }
            )
        lines.set_title({"name": _("Completions by week")})
        lines.set_x_axis({"date_axis": True, "num_format": "yyyy-mm-dd"})
        lines.set_y_axis({"num_format": "#,##0", "min": 0})
        lines.set_legend({"position": "bottom"})
        lines.set_size({"width": 560, "height": 320})
        sheet.insert_chart(chart_row, 4, lines)


def _straight_line(start: date, target_date: date, target: int, monday: date) -> int:
    """Where the straight line from `start` (none completed) to the target on the target
    date stands at the end of the week that starts on `monday`."""
    span = (target_date - start).days
    if span <= 0:
        return target
    elapsed = (monday + timedelta(days=6) - start).days
    return round(max(0.0, min(1.0, elapsed / span)) * target)


def _xlsx_table(
    workbook: Any,
    cells: _XlsxCells,
    name: str,
    table: Table,
    on_progress: ProgressCallback | None,
) -> None:
    sheet = workbook.add_worksheet(name)
    header = workbook.add_format({"bold": True, "bg_color": "#e8edf3", "bottom": 1})
    columns = list(table.columns)
    formats = [cells.format(_NUMBER_FORMATS[column.kind]) for column in columns]
    for index, column in enumerate(columns):
        width = max(column.width, min(len(column.label) + 2, 40))
        sheet.set_column(index, index, width, formats[index] if column.kind != "text" else None)
        cells.text(sheet, 0, index, column.label, header)
    sheet.freeze_panes(1, 0)
    rows = _rows(table, on_progress)
    if columns and _XlsxRows.fits(sheet):
        last = _XlsxRows(sheet, columns, formats, cells).write(rows)
    else:  # pragma: no cover - only with another XlsxWriter than the pinned one
        last = 0
        for last, values in enumerate(rows, 1):  # noqa: B007
            for col, value in enumerate(values):
                cells.write(sheet, last, col, value, columns[col].kind)
    if columns:
        sheet.autofilter(0, 0, max(last, 1), len(columns) - 1)


_EXCEL_EPOCH = date(1899, 12, 30).toordinal()
# Text that needs more than the plain <t>...</t>: XML's special characters, control
# characters, Excel's own _xHHHH_ escapes, leading or trailing white space.
_XML_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_|^\s|\s$")
_XML_ESCAPED = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_XML_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_XLSX_MAX_TEXT = 32767


class _XlsxRows:
    """Writes the rows of a table sheet straight into the worksheet's XML, as XlsxWriter's
    constant-memory mode does for one row at a time, but several times faster (50,000 rows of
    a dozen columns in under two seconds instead of six): the cells are known to be plain
    values, so the per-cell bookkeeping of the public API is not needed.

    Relies on XlsxWriter's internals (checked by `fits`; pinned in requirements.txt); the
    tests read every kind of cell back with openpyxl. Text is always an inline string cell:
    never a formula, never a number, escaped like XlsxWriter escapes it."""

    @staticmethod
    def fits(sheet: Any) -> bool:
        return (
            getattr(sheet, "constant_memory", False)
            and getattr(sheet, "excel_version", None) == 2007
            and not getattr(sheet, "date_1904", True)
            and hasattr(sheet, "_write_single_row")
            and hasattr(sheet, "_check_dimensions")
            and getattr(sheet, "previous_row", None) == 0
            and hasattr(sheet, "fh")
        )

    def __init__(
        self, sheet: Any, columns: Sequence[Column], formats: Sequence[Format], cells: _XlsxCells
    ) -> None:
        from xlsxwriter.utility import xl_col_to_name

        self.sheet = sheet
        self.names = [xl_col_to_name(index) for index in range(len(columns))]
        number = {"int", "float", "percent"}
        # Style ids: numbers in their column's format (ints in text columns as integers),
        # dates and times in theirs whatever the column says.
        self.number_style = [
            (fmt if column.kind in number else cells.format("#,##0.##"))._get_xf_index()
            for column, fmt in zip(columns, formats, strict=True)
        ]
        self.date_style = cells.format("yyyy-mm-dd")._get_xf_index()
        self.datetime_style = cells.format("yyyy-mm-dd hh:mm")._get_xf_index()
        self.columns = columns
        self.cells = cells

    def write(self, rows: Iterable[Sequence[Any]]) -> int:
        sheet = self.sheet
        sheet._write_single_row(1)  # the header row goes out; rows are ours from here on
        names, number_style = self.names, self.number_style
        date_style, datetime_style = self.date_style, self.datetime_style
        special, text_cell = _XML_SPECIAL.search, self._text
        write = sheet.fh.write
        last = 0
        for last, values in enumerate(rows, 1):  # noqa: B007
            r = last + 1
            parts = [f'<row r="{r}">']
            add = parts.append
            for col, value in enumerate(values):
                kind = type(value)
                if kind is str:
                    if special(value) or len(value) > _XLSX_MAX_TEXT:
                        add(text_cell(names[col], r, value))
                    else:
                        add(f'<c r="{names[col]}{r}" t="inlineStr"><is><t>{value}</t></is></c>')
                elif kind is int:
                    add(f'<c r="{names[col]}{r}" s="{number_style[col]}"><v>{value}</v></c>')
                elif kind is float:
                    if value - value == 0:  # not NaN nor infinite: those stay empty
                        add(
                            f'<c r="{names[col]}{r}" s="{number_style[col]}">'
                            f"<v>{value:.16G}</v></c>"
                        )
                elif value is None:
                    continue
                elif kind is datetime:
                    add(
                        f'<c r="{names[col]}{r}" s="{datetime_style}">'
                        f"<v>{_excel_serial(value):.16G}</v></c>"
                    )
                elif kind is date:
                    add(
                        f'<c r="{names[col]}{r}" s="{date_style}">'
                        f"<v>{value.toordinal() - _EXCEL_EPOCH}</v></c>"
                    )
                else:
                    add(self._other(names[col], r, col, value))
            add("</row>")
            write("".join(parts))
        if last:
            sheet._check_dimensions(last, len(self.columns) - 1)
            sheet.previous_row = last
        return last

    @staticmethod
    def _text(name: str, r: int, value: str) -> str:
        value = value[:_XLSX_MAX_TEXT]
        preserve = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
        value = _XML_ESCAPED.sub(r"_x005F\1", value)
        value = _XML_CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", value)
        value = value.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f'<c r="{name}{r}" t="inlineStr"><is><t{preserve}>{value}</t></is></c>'

    def _other(self, name: str, r: int, col: int, value: Any) -> str:
        if isinstance(value, bool):
            return f'<c r="{name}{r}" t="b"><v>{int(value)}</v></c>'
        if isinstance(value, str):  # a str subclass, such as a StrEnum
            return self._text(name, r, str(value))
        if isinstance(value, int | float | Decimal):
            number = float(value)
            if number - number != 0:
                return ""
            return f'<c r="{name}{r}" s="{self.number_style[col]}"><v>{number:.16G}</v></c>'
        if isinstance(value, datetime):
            serial = f"{_excel_serial(value):.16G}"
            return f'<c r="{name}{r}" s="{self.datetime_style}"><v>{serial}</v></c>'
        if isinstance(value, date):
            days = value.toordinal() - _EXCEL_EPOCH
            return f'<c r="{name}{r}" s="{self.date_style}"><v>{days}</v></c>'
        return self._text(name, r, str(value))


def _excel_serial(moment: datetime) -> float:
    """Days since Excel's epoch (1899-12-30), the time of day as the fraction; UTC."""
    moment = _naive_utc(moment)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    return moment.toordinal() - _EXCEL_EPOCH + seconds / 86400


# --- PDF --------------------------------------------------------------------------------

GREY = (85, 85, 85)
HEADING_FILL = (232, 237, 243)
STRIPE_FILL = (246, 248, 250)


def _pdf_document(report: Report) -> FPDF:
    from fpdf import FPDF

    page_label = _("Page %(page)s of %(pages)s")
    title = _pdf_clean(report.title)

    class Document(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(pdf_fonts.FAMILY, size=8)
            self.set_text_color(*GREY)
            text = str(page_label) % {"page": self.page_no(), "pages": "{nb}"}
            self.cell(0, 8, f"{title} · {text}", align="C")
            self.set_text_color(0, 0, 0)

    pdf = Document(orientation="portrait", unit="mm", format="A4")
    pdf_fonts.add_fonts(pdf)
    pdf.set_title(report.title)
    pdf.set_creator(_("AI Engineer Academy"))
    pdf.set_creation_date(report.generated_at)
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=18)
    return pdf


_PDF_BLANKS = re.compile(r"[\x00-\x1f\x7f]+")


def _pdf_clean(text: str) -> str:
    """One line of text: control characters (tabs, line breaks) become spaces."""
    return _PDF_BLANKS.sub(" ", text) if not text.isprintable() else text


def _pdf_text(value: Any, kind: ColumnKind = "text") -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _pdf_clean(value)
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, int | float | Decimal):
        if float(value) - float(value) != 0:
            return ""
        if kind == "percent":
            return f"{float(value):.1%}"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{float(value):,.1f}"
    if isinstance(value, datetime):
        return _naive_utc(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return _pdf_clean(str(value))


def write_pdf(
    report: Report, stream: IO[bytes], on_progress: ProgressCallback | None = None
) -> None:
    """Title, date, summary figures, the funnel and completions charts, the small tables
    (header repeated on every page) and, for cohort and course reports of at most
    PDF_MAX_LEARNERS learners, the learners."""
    pdf = _pdf_document(report)
    pdf.add_page()
    pdf.set_font(pdf_fonts.FAMILY, "B", 16)
    pdf.multi_cell(0, 8, _pdf_clean(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf_fonts.FAMILY, "", 9)
    pdf.set_text_color(*GREY)
    generated = _naive_utc(report.generated_at).strftime("%Y-%m-%d %H:%M")
    pdf.cell(0, 6, _("Generated at %(moment)s UTC", moment=generated))
    pdf.ln(8)
    pdf.set_text_color(0, 0, 0)

    if report.summary:
        pdf.set_font(pdf_fonts.FAMILY, "", 10)
        for label, value in report.summary:
            pdf.cell(75, 6, _pdf_clean(str(label)))
            pdf.cell(40, 6, _pdf_text(value), align="R")
            pdf.ln(6)
        pdf.ln(3)

    for png, width, height in _pdf_charts(report):
        if pdf.will_page_break(height):
            pdf.add_page()
        pdf.image(io.BytesIO(png), w=width, h=height)
        pdf.ln(3)

    if report.forecast is None and report.weekly:
        weekly_columns = [
            Column(_("Week (starting Monday)"), "date", 16),
            Column(_("Completed (cumulative)"), "int", 16),
        ]
        _PdfTable(pdf, _("Completions by week"), weekly_columns).write(report.weekly)

    for small in report.tables:
        _PdfTable(pdf, small.title, small.columns).write(small.rows())

    learners = report.learners
    if learners is not None and report.scope != "program" and learners.count <= PDF_MAX_LEARNERS:
        _PdfTable(pdf, learners.title, learners.columns).write(_rows(learners, on_progress))
    else:
        if learners is not None:
            pdf.ln(4)
            pdf.set_font(pdf_fonts.FAMILY, "", 10)
            pdf.multi_cell(
                0,
                6,
                _(
                    "The list of the %(count)s learners is in the CSV and Excel (XLSX) exports.",
                    count=f"{learners.count:,}",
                ),
                new_x="LMARGIN",
                new_y="NEXT",
            )
        if on_progress is not None:
            on_progress(learners.count if learners is not None else 0)
    stream.write(pdf.output())


def _pdf_charts(report: Report) -> list[tuple[bytes, float, float]]:
    """(PNG, width, height in mm) of the funnel and, for a report with a forecast, of the
    completions against the straight line to the target."""
    from lms import charts

    figures = []
    if report.funnel:
        figures.append(charts.funnel(report.funnel, _("Funnel")))
    forecast = report.forecast
    if forecast is not None:
        today = report.generated_at.date()
        start = report.start or (report.weekly[0][0] if report.weekly else today)
        labels = charts.CompletionsLabels(
            title=_("Completions against the target"),
            completed=_("Completed"),
            straight_line=_("Straight line to the target"),
            forecast=_("Forecast at %(rate)s a week", rate=f"{forecast.rate_per_week:,.1f}"),
            target=_("Target %(target)s", target=f"{forecast.target:,}"),
            learners=_("Learners"),
        )
        figures.append(
            charts.completions(
                report.weekly,
                start=start,
                today=today,
                target=forecast.target,
                target_date=forecast.target_date,
                forecast_date=forecast.forecast_date,
                labels=labels,
            )
        )
    found = []
    for figure in figures:
        inches_wide, inches_high = figure.get_size_inches()
        width = 180.0
        found.append((charts.to_png(figure), width, width * inches_high / inches_wide))
    return found


class _PdfTable:
    """A titled table drawn row by row: one line per row (text cut with an ellipsis to fit
    its column), striped, the header row repeated at the top of every page it runs over.
    Wide tables get landscape pages; columns that still do not fit (scores per assignment
    first) are left out, with a line saying that the CSV and XLSX have them. Far faster than
    fpdf2's general table (2,000 learners in about a second): cells are placed with
    FPDF.text, not laid out."""

    # The narrowest a text column gets (mm), so that it still says something.
    MIN_TEXT = 18.0

    def __init__(self, pdf: FPDF, title: str, columns: Sequence[Column]) -> None:
        self.pdf = pdf
        self.title = _pdf_clean(title)
        self.all_columns = list(columns)
        hints = sum(max(column.width, 4) for column in columns)
        self.landscape = hints > 110
        self.size = 9.0 if hints <= 110 else (8.0 if hints <= 170 else 7.0)
        self.line = self.size * 0.48  # mm
        self.pad = 1.0
        self.shown: list[int] = []
        self.widths: list[float] = []
        self._cjk = pdf_fonts.FALLBACK in pdf.fonts

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        from fpdf.enums import PageOrientation

        pdf = self.pdf
        orientation = PageOrientation.LANDSCAPE if self.landscape else PageOrientation.PORTRAIT
        if pdf.cur_orientation != orientation or pdf.will_page_break(40):
            pdf.add_page(orientation="landscape" if self.landscape else "portrait")
        else:
            pdf.ln(4)
        self.shown, self.widths = self._layout()
        columns = [self.all_columns[i] for i in self.shown]
        self.right = [c.kind not in ("text", "date", "datetime") for c in columns]
        self.kinds = [c.kind for c in columns]
        self.labels = [_pdf_clean(c.label) for c in columns]
        pdf.set_font(pdf_fonts.FAMILY, "B", 12)
        pdf.multi_cell(0, 7, self.title, new_x="LMARGIN", new_y="NEXT")
        left_out = len(self.all_columns) - len(self.shown)
        if left_out:
            pdf.set_font(pdf_fonts.FAMILY, "", 8)
            pdf.set_text_color(*GREY)
            note = _(
                "%(count)s more columns (such as the scores per assignment) are in the CSV "
                "and Excel (XLSX) exports.",
                count=left_out,
            )
            pdf.multi_cell(0, 4.5, note, new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
        self._header()
        pdf.set_font(pdf_fonts.FAMILY, "", self.size)
        y = pdf.get_y()
        bottom = pdf.page_break_trigger
        stripe = False
        pdf.set_fill_color(*STRIPE_FILL)
        everything = len(self.shown) == len(self.all_columns)
        shown = self.shown
        for values in rows:
            if y + self.line > bottom:
                pdf.add_page(orientation="landscape" if self.landscape else "portrait")
                self._header()
                pdf.set_font(pdf_fonts.FAMILY, "", self.size)
                pdf.set_fill_color(*STRIPE_FILL)
                y = pdf.get_y()
            if stripe:
                pdf.rect(pdf.l_margin, y, pdf.epw, self.line, style="F")
            stripe = not stripe
            self._row(values if everything else [values[i] for i in shown], y)
            y += self.line
        pdf.set_xy(pdf.l_margin, y + 2)

    def _layout(self) -> tuple[list[int], list[float]]:
        """The columns shown and their widths. Dates and numbers get the room they need, so
        are never cut, and no word of a header is broken; text columns share what is left
        by their width hints."""
        pdf = self.pdf
        samples = {
            "date": "2026-12-31",
            "datetime": "2026-12-31 23:59",
            "int": "100,000",
            "float": "1,000.0",
            "percent": "100.0%",
        }
        columns = self.all_columns
        pdf.set_font(pdf_fonts.FAMILY, "", self.size)
        # Text: room for about its width hint in characters (up to 30), at least MIN_TEXT.
        per_char = self.size * 0.18
        needed = [
            pdf.get_string_width(samples[c.kind])
            if c.kind in samples
            else max(self.MIN_TEXT, min(c.width, 30) * per_char)
            for c in columns
        ]
        pdf.set_font(pdf_fonts.FAMILY, "B", self.size)
        for index, column in enumerate(columns):
            words = _pdf_clean(column.label).split() or [""]
            longest = max(pdf.get_string_width(word) for word in words)
            needed[index] = max(needed[index], min(longest, 40.0)) + 2 * self.pad
        shown = list(range(len(columns)))
        # Too wide: leave out scores (float columns) from the right, then any column but
        # the first from the right.
        for kinds in (("float",), None):
            for index in reversed(list(shown)):
                if sum(needed[i] for i in shown) <= pdf.epw or len(shown) == 1:
                    break
                if index != shown[0] and (kinds is None or columns[index].kind in kinds):
                    shown.remove(index)
        widths = [needed[i] for i in shown]
        room = pdf.epw - sum(widths)
        text = [n for n, i in enumerate(shown) if columns[i].kind == "text"]
        if room <= 0 or not text:
            total = sum(widths) or 1.0
            return shown, [width * pdf.epw / total for width in widths]
        hints = sum(max(columns[shown[n]].width, 4) for n in text)
        for n in text:
            widths[n] += room * max(columns[shown[n]].width, 4) / hints
        return shown, widths

    def _header(self) -> None:
        pdf = self.pdf
        pdf.set_font(pdf_fonts.FAMILY, "B", self.size)
        lines = [
            cast(
                list[str],
                pdf.multi_cell(width, self.line, label, dry_run=True, output="LINES"),
            )
            for width, label in zip(self.widths, self.labels, strict=True)
        ]
        height = self.line * min(3, max((len(x) for x in lines), default=1)) + 1
        x, y = pdf.l_margin, pdf.get_y()
        pdf.set_fill_color(*HEADING_FILL)
        pdf.rect(x, y, pdf.epw, height, style="F")
        for width, right, text in zip(self.widths, self.right, lines, strict=True):
            for number, line in enumerate(text[:3]):
                self._put(line, x, y + 0.5 + number * self.line, width, right)
            x += width
        pdf.set_draw_color(120, 120, 120)
        pdf.line(pdf.l_margin, y + height, pdf.l_margin + pdf.epw, y + height)
        pdf.set_xy(pdf.l_margin, y + height + 0.5)

    def _row(self, values: Sequence[Any], y: float) -> None:
        x = self.pdf.l_margin
        for width, right, kind, value in zip(
            self.widths, self.right, self.kinds, values, strict=False
        ):
            if value is not None:
                self._put(_pdf_text(value, kind), x, y, width, right)
            x += width

    def _put(self, text: str, x: float, y: float, width: float, right: bool) -> None:
        if not text:
            return
        pdf = self.pdf
        room = width - 2 * self.pad
        text, used = self._fit(text, room)
        left = x + self.pad + (room - used if right else 0)
        if self._cjk and not text.isascii() and any(_is_cjk(ch) for ch in text):
            # FPDF.text has no fallback fonts; cell does.
            pdf.set_xy(left, y)
            pdf.cell(used, self.line, text)
        else:
            pdf.text(left, y + self.line * 0.72, text)

    def _fit(self, text: str, room: float) -> tuple[str, float]:
        """The text, cut with an ellipsis when wider than room, and its width."""
        width = self.pdf.get_string_width(text)
        if width <= room:
            return text, width
        low, high = 0, len(text)
        while low < high:  # the longest prefix that fits with the ellipsis
            middle = (low + high + 1) // 2
            if self.pdf.get_string_width(text[:middle] + "…") <= room:
                low = middle
            else:
                high = middle - 1
        cut = text[:low].rstrip() + "…"
        return cut, self.pdf.get_string_width(cut)


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x1100 <= code <= 0x11FF or code >= 0x2E80

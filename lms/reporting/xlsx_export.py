"""Progress reports as XLSX (XlsxWriter, constant memory): a summary sheet with the funnel and
the weekly completions as tables and native charts, a sheet per small table and the learner
rows. Every text cell is written as a string, never as a formula, and keeps its characters.
Called through lms.reporting.exports.write."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flask_babel import gettext as _

from lms.reporting.report import Column, ColumnKind, Report, Table

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

from lms.reporting.exports import ProgressCallback, naive_utc, rows_with_progress

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
            sheet.write_datetime(row, col, naive_utc(value), self.format("yyyy-mm-dd hh:mm"))
        elif isinstance(value, date):
            sheet.write_datetime(row, col, value, self.format("yyyy-mm-dd"))
        else:
            self.text(sheet, row, col, str(value))


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
        {"title": report.title, "created": naive_utc(report.generated_at), "comments": ""}
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
    rows = rows_with_progress(table, on_progress)
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
    moment = naive_utc(moment)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6
    return moment.toordinal() - _EXCEL_EPOCH + seconds / 86400

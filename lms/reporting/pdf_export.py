"""Progress reports as PDF (fpdf2): the summary, the charts (lms.reporting.charts, as PNG),
the small tables and, for small cohort and course reports, the learners; A4, DejaVu Sans (with
a CJK font where the system has one), page numbers in the footer. Called through
lms.reporting.exports.write."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, cast

from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _

from lms import formatting
from lms.reporting import pdf_fonts
from lms.reporting.report import Column, ColumnKind, Report

if TYPE_CHECKING:
    from fpdf import FPDF

from lms.reporting.exports import ProgressCallback, rows_with_progress

# The PDF lists the learners of a cohort or course report up to this many; past it, it says
# that the list is in the CSV and XLSX exports.
PDF_MAX_LEARNERS = 2000

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
        # In the reader's language: "1.234,5" in Vietnamese, "1,234.5" in English.
        if kind == "percent":
            return str(format_percent(float(value), "#,##0.0%"))
        if isinstance(value, int):
            return str(format_decimal(value, "#,##0"))
        return str(format_decimal(float(value), "#,##0.0"))
    if isinstance(value, datetime):
        return formatting.moment_in_table(value)
    if isinstance(value, date):
        return formatting.day(value)
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
    pdf.cell(
        0,
        6,
        _(
            "Generated at %(moment)s; times in %(zone)s",
            moment=formatting.when(report.generated_at),
            zone=formatting.time_zone_name(),
        ),
    )
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
        rows = rows_with_progress(learners, on_progress)
        _PdfTable(pdf, learners.title, learners.columns).write(rows)
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
    from lms.reporting import charts

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

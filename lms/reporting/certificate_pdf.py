"""The PDF of a certificate (fpdf2): landscape A4 stating the learner, program, cohort, day of
completion, each course with its score, the day of issue, the verification code and the URL
of the public verification page. Labels and dates are in the reader's language.

Text is set in DejaVu Sans, read from matplotlib's own font folder (no system font needed), so
Latin, Vietnamese and Cyrillic names render. DejaVu has no Hangul or CJK ideographs: when a CJK
font is installed on the system (fonts-nanum, fonts-noto-cjk, fonts-unfonts-core or
fonts-baekmuk on Debian) it is the fallback for those glyphs; without one, Korean, Chinese and
Japanese characters are left out of the PDF (the verification page still shows them).

fpdf2 is imported when a PDF is made, not when the web process starts (it takes a while).
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import date
from typing import TYPE_CHECKING, Any

from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _

from lms.models import Certificate
from lms.reporting import pdf_fonts

if TYPE_CHECKING:
    from fpdf import FPDF

log = logging.getLogger(__name__)

ACCENT = (11, 92, 173)  # the site's accent colour
INK = (27, 31, 36)
MUTED = (74, 83, 96)
SOFT = (243, 246, 249)

PAGE_W, PAGE_H = 297.0, 210.0  # A4 landscape, mm
MARGIN = 24.0
CONTENT_W = PAGE_W - 2 * MARGIN
FOOTER_TOP = 168.0  # the issue date, code and URL sit below this line on the first page


def score_text(course: dict[str, Any]) -> str:
    """A course line's score as printed: "17.5 / 20" (in the reader's number format)."""
    maximum = float(course.get("max_score") or 0)
    if maximum <= 0:
        return "—"
    return f"{_number(course.get('score') or 0)} / {_number(maximum)}"


def _number(value: float) -> str:
    return str(format_decimal(round(float(value), 2), format="#,##0.##"))


def long_date(day: date) -> str:
    return str(format_date(day, format="long"))


def render(certificate: Certificate, verify_url: str) -> bytes:
    """The certificate as PDF bytes. Needs a request or app context (labels, dates)."""
    try:
        return _render(certificate, verify_url, fallback=True)
    except Exception:
        if pdf_fonts.cjk_font() is None:
            raise
        # A CJK font fpdf2 cannot embed must not cost the learner the certificate.
        log.exception("fallback font %s failed; made without it", pdf_fonts.cjk_font())
        return _render(certificate, verify_url, fallback=False)


def _text(value: str) -> str:
    # Precomposed letters: DejaVu has them all (Vietnamese ễ, ặ ...); text is not shaped.
    return unicodedata.normalize("NFC", value)


def _render(certificate: Certificate, verify_url: str, fallback: bool) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    class Page(FPDF):
        def header(self) -> None:  # a double frame on every page
            self.set_draw_color(*ACCENT)
            self.set_line_width(1.2)
            self.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
            self.set_line_width(0.3)
            self.rect(13, 13, PAGE_W - 26, PAGE_H - 26)

    pdf = Page(orientation="landscape", unit="mm", format="A4")
    pdf_fonts.add_fonts(pdf, fallback)

    title = _("Certificate of completion")
    learner = _text(certificate.learner_name)
    pdf.set_title(f"{title} — {learner}")
    pdf.set_author(_("AI Engineer Academy"))
    pdf.set_subject(_text(f"{certificate.program_name} — {certificate.cohort_name}"))
    pdf.set_creator("AI Engineer Academy")
    pdf.set_lang(str(get_locale() or "en"))
    pdf.set_creation_date(certificate.issued_at)
    pdf.set_margins(MARGIN, 20, MARGIN)
    pdf.set_auto_page_break(True, margin=PAGE_H - FOOTER_TOP + 4)
    pdf.add_page()

    def line(
        text: str,
        size: float,
        *,
        bold: bool = False,
        color: tuple[int, ...] = INK,
        height: float | None = None,
    ) -> None:
        pdf.set_font(pdf_fonts.FAMILY, "B" if bold else "", size)
        pdf.set_text_color(*color)
        pdf.set_x(MARGIN)
        pdf.multi_cell(
            CONTENT_W, height or size * 0.5, _text(text), align="C", new_x="LMARGIN", new_y="NEXT"
        )

    pdf.set_y(20)
    line(_("AI Engineer Academy").upper(), 11, bold=True, color=ACCENT)
    pdf.ln(3)
    line(title, 28, bold=True)
    pdf.ln(4)
    line(_("This certifies that"), 12, color=MUTED)
    pdf.ln(2)
    line(learner, _fitting(pdf, learner, 26, CONTENT_W), bold=True, color=ACCENT)
    pdf.ln(2)
    line(_("has completed the program"), 12, color=MUTED)
    pdf.ln(1)
    line(certificate.program_name, 17, bold=True)
    pdf.ln(1)
    line(
        _(
            "Cohort %(cohort)s, completed on %(date)s",
            cohort=certificate.cohort_name,
            date=long_date(certificate.completed_on),
        ),
        11,
    )
    pdf.ln(4)

    courses = list(certificate.courses)
    if courses:
        size = 10 if len(courses) <= 6 else 8.5
        pdf.set_font(pdf_fonts.FAMILY, "", size)
        pdf.set_text_color(*INK)
        pdf.set_draw_color(208, 215, 222)
        with pdf.table(
            width=170,
            col_widths=(3, 1),
            text_align=("LEFT", "RIGHT"),
            borders_layout="HORIZONTAL_LINES",
            line_height=size * 0.5,
            padding=(1.2, 2),
            headings_style=FontFace(emphasis="BOLD", color=INK, fill_color=SOFT),
        ) as table:
            heading = table.row()
            heading.cell(_("Course"))
            heading.cell(_("Score"))
            for course in courses:
                row = table.row()
                row.cell(_text(str(course.get("title", ""))))
                row.cell(score_text(course))

    # The footer of the first page: issued on, the code and where to check it.
    pdf.page = 1
    pdf.set_auto_page_break(False)
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.3)
    pdf.line(MARGIN, FOOTER_TOP, PAGE_W - MARGIN, FOOTER_TOP)
    pdf.set_text_color(*INK)
    pdf.set_font(pdf_fonts.FAMILY, "", 10)
    pdf.set_xy(MARGIN, FOOTER_TOP + 3)
    pdf.cell(
        CONTENT_W / 2,
        6,
        _("Issued on %(date)s", date=long_date(certificate.issued_at.date())),
        align="L",
    )
    pdf.set_font(pdf_fonts.FAMILY, "B", 10)
    pdf.cell(
        CONTENT_W / 2,
        6,
        _("Verification code: %(code)s", code=certificate.code),
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(pdf_fonts.FAMILY, "", 9)
    pdf.set_text_color(*MUTED)
    pdf.set_x(MARGIN)
    pdf.multi_cell(CONTENT_W, 5, _("Check this certificate at %(url)s", url=verify_url), align="R")
    pdf.link(MARGIN, FOOTER_TOP + 9, CONTENT_W, 6, verify_url)
    return bytes(pdf.output())


def _fitting(pdf: FPDF, text: str, size: float, width: float) -> float:
    """The largest font size up to size (not under 14) at which text fits on one line."""
    pdf.set_font(pdf_fonts.FAMILY, "B", size)
    while size > 14 and pdf.get_string_width(text) > width:
        size -= 1
        pdf.set_font(pdf_fonts.FAMILY, "B", size)
    return size

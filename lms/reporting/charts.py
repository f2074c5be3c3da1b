"""The charts of the PDF reports, drawn on the server with matplotlib as PNG. The pages draw
the same charts as SVG without matplotlib (lms.reporting.svg_charts), with the same dates
across (svg_charts.completions_axis) and the same colours.

Only the object-oriented API (Figure), never pyplot: no global state, safe in threads.
Labels come in already translated; nothing here calls gettext. Dates and counts on the
axes are written in the reader's language (lms.formatting).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from functools import cache
from typing import ParamSpec

import matplotlib
from flask_babel import format_decimal
from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from lms import formatting
from lms.reporting.svg_charts import BLUE, FUNNEL, GREY, ORANGE, completions_axis
from lms.reporting.svg_charts import CompletionsLabels as CompletionsLabels

P = ParamSpec("P")

# Families tried in order for each glyph: DejaVu (ships with matplotlib: Latin, Vietnamese),
# then a CJK font where the system has one, so Korean labels in PNGs are not boxes.
CJK_FAMILIES = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "Noto Sans CJK JP")


@cache
def _families() -> list[str]:
    from lms.reporting import pdf_fonts

    # The system CJK font the PDFs use, even when matplotlib's font cache predates it.
    found = pdf_fonts.cjk_font()
    if found is not None:
        font_manager.fontManager.addfont(found[0])
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *[name for name in CJK_FAMILIES if name in installed]]


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure


def _with_fonts(draw: Callable[P, Figure]) -> Callable[P, Figure]:
    """Texts take their font when they are made: draw with the families in force."""

    @functools.wraps(draw)
    def drawn(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with matplotlib.rc_context({"font.family": _families()}):
            return draw(*args, **kwargs)

    return drawn


def _date_tick(value: float, _position: int | None = None) -> str:
    """Month names and days in the reader's language, as on the page ("thg 4 2027")."""
    tick = mdates.num2date(value).date()
    return formatting.month(tick) if tick.day == 1 else formatting.day(tick)


def _count_tick(value: float, _position: int | None = None) -> str:
    return str(format_decimal(round(value), "#,##0"))  # "1.200" in Vietnamese


@_with_fonts
def completions(
    weekly: Sequence[tuple[date, int]],
    *,
    start: date,
    today: date,
    target: int,
    target_date: date,
    forecast_date: date | None,
    labels: CompletionsLabels,
) -> Figure:
    """Cumulative completions per week against the straight line from `start` (no one
    completed) to the target on the target date, and the forecast line from today's count to
    the target on the forecast date; the dates across as on the page (completions_axis), the
    forecast past them said in a note when the labels have one."""
    completed_now = weekly[-1][1] if weekly else 0
    axis = completions_axis(start, today, target_date, forecast_date)
    end = axis.end

    figure = _figure(7.5, 3.6)
    axes = figure.add_subplot()
    if weekly:
        # Weeks are named by their Monday; the count holds at the end of the week.
        xs = [start, *[monday + timedelta(days=6) for monday, _ in weekly]]
        ys = [0, *[count for _, count in weekly]]
        axes.step(
            mdates.date2num(xs), ys, where="post", color=BLUE, linewidth=2.2, label=labels.completed
        )
    axes.plot(
        mdates.date2num([start, target_date]),
        [0, target],
        color=GREY,
        linestyle="--",
        linewidth=1.4,
        label=labels.straight_line,
    )
    if forecast_date is not None and completed_now < target:
        axes.plot(
            mdates.date2num([today, forecast_date]),
            [completed_now, target],
            color=ORANGE,
            linestyle=":",
            linewidth=2.2,
            label=labels.forecast,
        )
    axes.axhline(target, color=GREY, linewidth=0.8, alpha=0.6)
    axes.annotate(
        labels.target,
        xy=(float(mdates.date2num(end)), target),
        xytext=(-2, 3),
        textcoords="offset points",
        ha="right",
        color=GREY,
        fontsize=8,
    )
    if forecast_date is not None and axis.forecast_beyond and labels.beyond:
        axes.annotate(
            labels.beyond,
            xy=(float(mdates.date2num(end)), target),
            xytext=(-2, -12),
            textcoords="offset points",
            ha="right",
            color=ORANGE,
            fontsize=8,
        )
    axes.set_xlim(float(mdates.date2num(axis.start)), float(mdates.date2num(end)))
    axes.set_ylim(0, target * 1.12)
    axes.xaxis.set_major_locator(mdates.AutoDateLocator())
    axes.xaxis.set_major_formatter(FuncFormatter(_date_tick))
    axes.yaxis.set_major_formatter(FuncFormatter(_count_tick))
    axes.set_ylabel(labels.learners)
    axes.set_title(labels.title, loc="left", fontsize=11)
    axes.grid(axis="y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="upper left", bbox_to_anchor=(0, 0.9), fontsize=8, frameon=False)
    return figure


@_with_fonts
def funnel(stages: Sequence[tuple[str, int]], title: str) -> Figure:
    """Horizontal bars from the target down to the certified, each with its number."""
    figure = _figure(7.5, 0.45 * len(stages) + 0.9)
    axes = figure.add_subplot()
    names = [name for name, _ in stages][::-1]
    values = [value for _, value in stages][::-1]
    colours = list(FUNNEL[: len(stages)])[::-1]
    bars = axes.barh(names, values, color=colours, height=0.6)
    axes.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=9)
    axes.set_xlim(0, max([*values, 1]) * 1.15)
    axes.set_title(title, loc="left", fontsize=11)
    axes.xaxis.set_visible(False)
    axes.spines[["top", "right", "bottom"]].set_visible(False)
    return figure


def to_png(figure: Figure, dpi: int = 150) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()

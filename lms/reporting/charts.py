"""The charts of the dashboards and reports, drawn on the server with matplotlib: SVG for pages
(text stays text, so it is translated, selectable and read by screen readers), PNG for PDFs.

Only the object-oriented API (Figure), never pyplot: no global state, safe in threads.
Labels come in already translated; nothing here calls gettext.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from typing import ParamSpec

import matplotlib
from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.figure import Figure

P = ParamSpec("P")

BLUE = "#1f5fa8"  # completions: 7:1 on white
ORANGE = "#a34f00"  # the forecast
GREY = "#555555"  # the straight line to the target
FUNNEL = ("#6b7c93", "#1f5fa8", "#2d7d46", "#7a3e9d", "#a34f00")

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


@dataclass(frozen=True)
class CompletionsLabels:
    title: str
    completed: str  # "Completed"
    straight_line: str  # "Straight line to the target"
    forecast: str  # "Forecast at 12.5 a week"
    target: str  # "Target 1,200"
    learners: str  # y axis


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
    the target on the forecast date. The x axis ends at the later of the target date and the
    forecast date, but never more than the program's own length past the target date."""
    completed_now = weekly[-1][1] if weekly else 0
    end = target_date
    if forecast_date is not None:
        span = max(timedelta(days=30), target_date - start)
        end = max(end, min(forecast_date, target_date + span))
    end = max(end, today)

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
    axes.set_xlim(float(mdates.date2num(start)), float(mdates.date2num(end)))
    axes.set_ylim(0, target * 1.12)
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
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


def to_svg(figure: Figure, title: str) -> str:
    """Inline SVG for a page: scales with its container (viewBox, no fixed size), says what it
    shows to screen readers (role=img and a <title>), deterministic ids, and styled with
    presentation attributes only, since the pages' Content-Security-Policy refuses inline
    style (matplotlib writes style="..." and a <style> element)."""
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "lms"}):
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\s(width|height)="[^"]*pt"', "", svg, count=2)
    svg = re.sub(r"\s*<style[^>]*>.*?</style>\s*", "", svg, flags=re.DOTALL)
    svg = svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)
    svg = re.sub(r'style="([^"]*)"', lambda m: _attributes(m.group(1)), svg)
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return svg.replace("<svg ", '<svg role="img" class="chart" ', 1).replace(
        ">", f"><title>{escaped}</title>", 1
    )


def _attributes(style: str) -> str:
    """CSS declarations as SVG presentation attributes; the font shorthand matplotlib writes
    ("[weight|style ]12px 'DejaVu Sans'") split into its parts."""
    attributes = []
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if not name:
            continue
        if name == "font":
            match = re.match(r"(?P<pre>.*?)(?P<size>[\d.]+px)\s+(?P<family>.+)", value)
            if match is None:
                continue
            attributes.append(f'font-size="{match["size"]}"')
            attributes.append(f'font-family="{match["family"].replace(chr(34), chr(39))}"')
            for word in match["pre"].split():
                kind = "font-style" if word in ("italic", "oblique") else "font-weight"
                attributes.append(f'{kind}="{word}"')
        else:
            attributes.append(f'{name}="{value}"')
    return " ".join(attributes)


def to_png(figure: Figure, dpi: int = 150) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


# Pages draw the same charts again and again until the figures change: the SVG of each set
# of inputs (labels included, so each language) is kept. Drawing takes 0.1 to 0.3 s.
@lru_cache(maxsize=64)
def completions_svg(
    weekly: tuple[tuple[date, int], ...],
    start: date,
    today: date,
    target: int,
    target_date: date,
    forecast_date: date | None,
    labels: CompletionsLabels,
) -> str:
    figure = completions(
        weekly,
        start=start,
        today=today,
        target=target,
        target_date=target_date,
        forecast_date=forecast_date,
        labels=labels,
    )
    return to_svg(figure, labels.title)


@lru_cache(maxsize=64)
def funnel_svg(stages: tuple[tuple[str, int], ...], title: str) -> str:
    return to_svg(funnel(stages, title), title)

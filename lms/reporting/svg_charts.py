"""The dashboard's charts as inline SVG, written directly (no matplotlib: a page draws them in
about a millisecond, and the web process never imports it; the PDFs' PNGs are drawn by
lms.reporting.charts).

The SVG has no viewBox: it is as wide as its container and a fixed height, positions across
are percentages, so its text is never scaled and reads at TEXT_PX at any width. The data
lines sit in a nested, stretched SVG whose strokes do not scale. Styling is by presentation
attributes only (the pages' Content-Security-Policy refuses inline style). The legend and
title are returned apart, for the page to show as HTML text that wraps.

Labels come in already translated; nothing here calls gettext. Dates are ISO, as on the
page beside the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

BLUE = "#1f5fa8"  # completions: 7:1 on white
ORANGE = "#a34f00"  # the forecast
GREY = "#555555"  # the straight line to the target
MUTED = "#4a5360"  # axis text, as the pages' muted text
LINE = "#d0d7de"  # grid lines, as the pages' table rules
FUNNEL = ("#6b7c93", "#1f5fa8", "#2d7d46", "#7a3e9d", "#a34f00")

INK = "#1b1f24"  # the pages' text
TEXT_PX = 13  # every text of a chart; the pages' rule is at least 12 px
LEFT = "2"  # px: text at the left edge, its first glyph whole
DASHED = "7 5"  # the straight line to the target
DOTTED = "2 4"  # the forecast

# The completions chart, in px from its top: the plot, then the date axis's labels below it.
PLOT_TOP = 12
PLOT_HEIGHT = 230
HEIGHT = PLOT_TOP + PLOT_HEIGHT + 30
ACROSS = 1000  # the nested plot's units across, stretched to the chart's width

Number = Callable[[int], str]


def _grouped(value: int) -> str:
    return f"{value:,}"


@dataclass(frozen=True)
class CompletionsLabels:
    title: str
    completed: str  # "Completed"
    straight_line: str  # "Straight line to the target"
    forecast: str  # "Forecast at 12.5 a week"
    target: str  # "Target 1,200"
    learners: str  # the PDF chart's y axis
    target_on: str = ""  # at the target date's dot: "Target date: 2027-12-31"
    forecast_on: str = ""  # at the forecast's dot: "Forecast: 2028-03-01"
    # Under the chart when the forecast lies past its end: "The forecast, 2034-07-20, is ..."
    beyond: str = ""


@dataclass(frozen=True)
class Axis:
    """The dates across the completions chart, and whether the forecast lies past its end."""

    start: date
    end: date
    forecast_beyond: bool

    def fraction(self, day: date) -> float:
        return (day - self.start).days / max(1, (self.end - self.start).days)


def completions_axis(start: date, today: date, target_date: date, forecast: date | None) -> Axis:
    """From the first cohort's start (or today, if earlier) to the target date, today and the
    forecast date, whichever is last, and a little room after it. A forecast further past the
    target date than the program's own length (start to target date, at least 30 days) is
    left out: the axis stops there and the chart says where the forecast lies."""
    first = min(start, today)
    limit = target_date + max(timedelta(days=30), target_date - start)
    last = max(target_date, today)
    beyond = False
    if forecast is not None:
        beyond = forecast > max(limit, last)
        last = max(last, min(forecast, limit))
    room = timedelta(days=max(3, round((last - first).days * 0.03)))
    return Axis(first, last + room, beyond)


@dataclass(frozen=True)
class LegendEntry:
    swatch: Markup  # a small SVG of the line or bar, hidden from screen readers
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup
    legend: tuple[LegendEntry, ...] = ()
    note: str = ""  # said under it, such as where a forecast past its end lies


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def _text(content: str, x: str, y: float, **attributes: str | float) -> str:
    """Text with a white halo, so that it reads where it crosses a line."""
    given = {name.replace("_", "-"): value for name, value in attributes.items()}
    merged = {"font-size": TEXT_PX, "fill": MUTED, **given}
    extra = "".join(f' {name}="{value}"' for name, value in merged.items())
    return (
        f'<text x="{x}" y="{y:.1f}"{extra} paint-order="stroke" stroke="#ffffff" '
        f'stroke-width="3" stroke-linejoin="round">{escape(content)}</text>'
    )


def _anchored(fraction: float) -> dict[str, str | float]:
    """Text beside a point: to its left in the right half of the chart, else to its right."""
    return {"text_anchor": "end", "dx": -7} if fraction > 0.5 else {"dx": 7}


def _line_swatch(colour: str, dash: str | None, width: float) -> Markup:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return Markup(
        '<svg class="chart-swatch" width="28" height="12" aria-hidden="true" focusable="false">'
        f'<line x1="1" y1="6" x2="27" y2="6" stroke="{colour}" stroke-width="{width}"{dashes}/>'
        "</svg>"
    )


def _svg(title: str, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg role="img" class="chart" width="100%" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _nice_step(span: float, most: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that cuts span into at most `most` parts."""
    raw = max(span / most, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)


def _iso_month(day: date) -> str:
    return f"{day:%Y-%m}"


def _month_ticks(axis: Axis, month: Callable[[date], str] = _iso_month) -> list[tuple[date, str]]:
    """First days of months across the axis, every 1, 2, 3, 6, 12 or more months, about five
    at most, labelled by `month` (pages pass the reader's language: "Apr 2027", "thg 4 2027"),
    or the year alone when a tick is a year."""
    months = (axis.end.year - axis.start.year) * 12 + axis.end.month - axis.start.month
    step = next((s for s in (1, 2, 3, 6, 12) if months / s <= 4), 12 * math.ceil(months / 48))
    day = date(axis.start.year, axis.start.month, 1)
    ticks = []
    while day <= axis.end:
        if day >= axis.start and (day.month - 1) % min(step, 12) == 0:
            if step < 12 or (day.year % (step // 12) == 0):
                ticks.append((day, str(day.year) if step >= 12 else month(day)))
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return ticks


def completions(
    weekly: Sequence[tuple[date, int]],
    *,
    start: date,
    today: date,
    target: int,
    target_date: date,
    forecast_date: date | None,
    labels: CompletionsLabels,
    number: Number = _grouped,
    month: Callable[[date], str] = _iso_month,
) -> Chart:
    """Cumulative completions per week against the straight line from `start` (no one
    completed) to the target on the target date, and the forecast line from today's count to
    the target on the forecast date (see completions_axis for how far the dates go)."""
    axis = completions_axis(start, today, target_date, forecast_date)
    completed_now = weekly[-1][1] if weekly else 0
    top = max(target, completed_now, 1) * 1.12

    def x(day: date) -> float:
        return ACROSS * axis.fraction(day)

    def y(count: float) -> float:
        return PLOT_HEIGHT * (1 - count / top)

    def y_px(count: float) -> float:
        return PLOT_TOP + y(count)

    body = []
    step = _nice_step(target, 4)
    for value in range(step, int(top), step):
        if abs(value - target) < top * 0.08:
            continue  # the target's own line and label are there
        body.append(
            f'<line x1="0" x2="100%" y1="{y_px(value):.1f}" y2="{y_px(value):.1f}" '
            f'stroke="{LINE}" stroke-width="1"/>'
        )
        body.append(_text(number(value), LEFT, y_px(value) - 4))
    bottom = PLOT_TOP + PLOT_HEIGHT
    body.append(f'<line x1="0" x2="100%" y1="{bottom}" y2="{bottom}" stroke="{MUTED}"/>')
    for i, (day, text) in enumerate(_month_ticks(axis, month)):
        at = axis.fraction(day)
        # Near an edge, a tick's label lies inside the chart rather than across its edge.
        where: dict[str, str | float] = {"text_anchor": "middle"}
        if at < 0.04:
            where = {"text_anchor": "start", "dx": 2}
        elif at > 0.96:
            where = {"text_anchor": "end", "dx": -2}
        body.append(
            f'<line x1="{_percent(at)}" x2="{_percent(at)}" y1="{bottom}" y2="{bottom + 5}" '
            f'stroke="{MUTED}"/>'
        )
        # Every other label is hidden on a phone's narrow chart (style.css), lest they touch.
        tick = "tick tick-odd" if i % 2 else "tick"
        body.append(_text(text, _percent(at), bottom + 20, **where, **{"class": tick}))

    # The target: its line across, its label at the left, its date's dot.
    target_y = y_px(target)
    body.append(
        f'<line x1="0" x2="100%" y1="{target_y:.1f}" y2="{target_y:.1f}" stroke="{GREY}" '
        'stroke-width="1" stroke-opacity="0.6"/>'
    )
    body.append(_text(labels.target, LEFT, target_y - 6, fill=GREY, font_weight="600"))

    # The data lines, in the plot's own units stretched across; their strokes do not scale.
    lines = []
    legend = []
    if weekly:
        xs = [start, *[monday + timedelta(days=6) for monday, _ in weekly]]
        ys = [0, *[count for _, count in weekly]]
        points = [(x(xs[0]), y(ys[0]))]
        for i in range(1, len(xs)):
            points += [(x(xs[i]), y(ys[i - 1])), (x(xs[i]), y(ys[i]))]
        lines.append(_polyline(points, BLUE, 2.5))
        legend.append(LegendEntry(_line_swatch(BLUE, None, 2.5), labels.completed))
    lines.append(_polyline([(x(start), y(0)), (x(target_date), y(target))], GREY, 1.6, DASHED))
    legend.append(LegendEntry(_line_swatch(GREY, DASHED, 1.6), labels.straight_line))
    # The forecast, unless the target is reached (or nobody completed lately).
    forecast = forecast_date if completed_now < target else None
    if forecast is not None:
        end_point: tuple[float, float]
        if axis.forecast_beyond:  # drawn to the axis's end, where it would be by then
            share = (axis.end - today).days / max(1, (forecast - today).days)
            end_point = (ACROSS, y(completed_now + (target - completed_now) * share))
        else:
            end_point = (x(forecast), y(target))
        lines.append(_polyline([(x(today), y(completed_now)), end_point], ORANGE, 2.5, DOTTED))
        legend.append(LegendEntry(_line_swatch(ORANGE, DOTTED, 2.5), labels.forecast))
    body.append(
        f'<svg x="0" y="{PLOT_TOP}" width="100%" height="{PLOT_HEIGHT}" '
        f'viewBox="0 0 {ACROSS} {PLOT_HEIGHT}" preserveAspectRatio="none" overflow="visible">'
        + "".join(lines)
        + "</svg>"
    )

    at = axis.fraction(target_date)
    body.append(f'<circle cx="{_percent(at)}" cy="{target_y:.1f}" r="4" fill="{GREY}"/>')
    body.append(
        _text(
            labels.target_on or target_date.isoformat(),
            _percent(at),
            target_y - 8,
            fill=GREY,
            **_anchored(at),
        )
    )
    if forecast is not None:
        if axis.forecast_beyond:
            body.append(
                _text(
                    f"{labels.forecast_on or forecast.isoformat()} →",
                    "100%",
                    target_y + 20,
                    fill=ORANGE,
                    text_anchor="end",
                    dx=-2,
                    font_weight="600",
                )
            )
        else:
            at = axis.fraction(forecast)
            body.append(f'<circle cx="{_percent(at)}" cy="{target_y:.1f}" r="4" fill="{ORANGE}"/>')
            body.append(
                _text(
                    labels.forecast_on or forecast.isoformat(),
                    _percent(at),
                    target_y + 20,
                    fill=ORANGE,
                    **_anchored(at),
                )
            )
    note = labels.beyond if forecast is not None and axis.forecast_beyond else ""
    return Chart(labels.title, _svg(labels.title, HEIGHT, body), tuple(legend), note)


def _polyline(
    points: Sequence[tuple[float, float]], colour: str, width: float, dash: str | None = None
) -> str:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    coordinates = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    return (
        f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="{width}" '
        f'vector-effect="non-scaling-stroke" stroke-linejoin="round"{dashes}/>'
    )


FUNNEL_ROW = 46  # px per stage: its name and number, then its bar


def funnel(stages: Sequence[tuple[str, int]], title: str, number: Number = _grouped) -> Chart:
    """A bar per stage, from the target down to the certified: its name and number above it,
    its length the share of the largest stage."""
    largest = max([value for _, value in stages] + [1])
    body = []
    for i, (name, value) in enumerate(stages):
        top = i * FUNNEL_ROW
        colour = FUNNEL[i % len(FUNNEL)]
        body.append(_text(name, LEFT, top + 15, fill=INK))
        body.append(_text(number(value), "100%", top + 15, fill=INK, text_anchor="end", dx=-2))
        body.append(
            f'<rect x="0" y="{top + 22}" width="{_percent(value / largest)}" height="16" '
            f'rx="2" fill="{colour}"/>'
        )
    return Chart(title, _svg(title, FUNNEL_ROW * len(stages), body))

"""Charts: the pages' SVG (legible text at any width, dates across that include the target and
the forecast, a far forecast capped and said, nothing a strict CSP refuses) and the PDFs' PNG
(the same dates across, Korean labels)."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from datetime import date, timedelta

from matplotlib import dates as mdates

from lms.reporting import charts, pdf_fonts, svg_charts

SVG = "{http://www.w3.org/2000/svg}"
LABELS = svg_charts.CompletionsLabels(
    title="Completions <against> the target",
    completed="Completed",
    straight_line="Straight line",
    forecast="Forecast at 3 a week",
    target="Target 100",
    learners="Learners",
    target_on="Target date: 2026-12-31",
    forecast_on="Forecast: <the day>",
    beyond="The forecast lies past the end of this chart.",
)
START = date(2026, 1, 1)
TODAY = date(2026, 3, 20)
TARGET_DATE = date(2026, 12, 31)
WEEKLY = [(date(2026, 1, 5) + timedelta(weeks=n), 3 * n) for n in range(10)]


def completions(forecast: date | None, target: int = 100) -> svg_charts.Chart:
    return svg_charts.completions(
        WEEKLY,
        start=START,
        today=TODAY,
        target=target,
        target_date=TARGET_DATE,
        forecast_date=forecast,
        labels=LABELS,
    )


def parsed(chart: svg_charts.Chart) -> ET.Element:
    return ET.fromstring(str(chart.svg))


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_chart_text_is_never_scaled_below_12_px() -> None:
    funnel = svg_charts.funnel([("Target", 1200), ("Enrolled", 300), ("Certified", 1)], "Stages")
    for chart in (completions(date(2026, 10, 1)), funnel):
        root = parsed(chart)
        # No viewBox on the chart itself: its units are CSS pixels at any width, so a text's
        # font-size is the size it is drawn at.
        assert root.get("viewBox") is None and root.get("width") == "100%"
        found = list(root.findall(f"{SVG}text"))
        assert found and len(found) == len(list(root.iter(f"{SVG}text")))  # none in a scaled svg
        assert all(float(t.get("font-size", "0")) >= 12 for t in found)


def test_the_dates_across_reach_the_forecast_and_the_target_date() -> None:
    forecast = date(2027, 2, 15)  # after the target date, within the program's length of it
    axis = svg_charts.completions_axis(START, TODAY, TARGET_DATE, forecast)
    assert axis.start == START and axis.end > forecast and not axis.forecast_beyond
    chart = completions(forecast)
    root = parsed(chart)
    shown = texts(root)
    assert "Forecast: <the day>" in shown and "Target date: 2026-12-31" in shown
    assert chart.note == ""
    # The forecast's dot and the target date's dot lie inside the chart.
    dots = [float(c.get("cx", "").rstrip("%")) for c in root.findall(f"{SVG}circle")]
    assert len(dots) == 2 and all(0 < x < 100 for x in dots)
    assert "2027-01" in shown or "2027" in shown  # a tick past the target date's year


def test_a_far_forecast_is_capped_and_the_chart_says_so() -> None:
    forecast = date(2061, 7, 1)
    axis = svg_charts.completions_axis(START, TODAY, TARGET_DATE, forecast)
    span = TARGET_DATE - START
    assert axis.forecast_beyond
    assert TARGET_DATE + span <= axis.end <= TARGET_DATE + span + timedelta(days=30)
    chart = completions(forecast)
    assert chart.note == LABELS.beyond
    root = parsed(chart)
    assert "Forecast: <the day> →" in texts(root)
    assert len(root.findall(f"{SVG}circle")) == 1  # the target date's; the forecast's is beyond
    forecast_line = [p for p in root.iter(f"{SVG}polyline") if p.get("stroke") == svg_charts.ORANGE]
    assert forecast_line[0].get("points", "").split()[-1].startswith("1000.0,")  # to the edge


def test_no_forecast_line_once_the_target_is_reached_or_without_a_rate() -> None:
    for chart in (completions(None), completions(date(2026, 6, 1), target=20)):
        root = parsed(chart)
        assert not [p for p in root.iter(f"{SVG}polyline") if p.get("stroke") == svg_charts.ORANGE]
        assert [e.text for e in chart.legend] == ["Completed", "Straight line"]
        assert chart.note == ""


def test_the_legend_names_each_line_drawn() -> None:
    chart = completions(date(2026, 10, 1))
    assert [e.text for e in chart.legend] == ["Completed", "Straight line", "Forecast at 3 a week"]
    assert all('aria-hidden="true"' in e.swatch for e in chart.legend)


def test_svg_has_no_inline_style_and_escapes_its_labels() -> None:
    chart = completions(date(2026, 10, 1))
    svg = str(chart.svg)
    assert svg.startswith('<svg role="img" class="chart"')
    assert "<title>Completions &lt;against&gt; the target</title>" in svg
    assert "Forecast: &lt;the day&gt;" in svg
    assert "style=" not in svg and "<style" not in svg  # the pages' CSP refuses inline style
    funnel = str(svg_charts.funnel([("<b>Target</b>", 5)], "Stages").svg)
    assert "&lt;b&gt;Target&lt;/b&gt;" in funnel and "<b>" not in funnel


def test_numbers_come_formatted_by_the_caller() -> None:
    chart = svg_charts.funnel([("Target", 1200)], "Stages", number=lambda n: f"<{n}>")
    assert "&lt;1200&gt;" in str(chart.svg)


def test_the_pdf_chart_spans_the_same_dates() -> None:
    forecast = date(2027, 2, 15)
    figure = charts.completions(
        WEEKLY,
        start=START,
        today=TODAY,
        target=100,
        target_date=TARGET_DATE,
        forecast_date=forecast,
        labels=LABELS,
    )
    low, high = figure.axes[0].get_xlim()
    axis = svg_charts.completions_axis(START, TODAY, TARGET_DATE, forecast)
    assert (low, high) == (mdates.date2num(axis.start), mdates.date2num(axis.end))
    assert high > mdates.date2num(forecast)
    far = charts.completions(
        WEEKLY,
        start=START,
        today=TODAY,
        target=100,
        target_date=TARGET_DATE,
        forecast_date=date(2061, 7, 1),
        labels=LABELS,
    )
    said = [t.get_text() for t in far.axes[0].texts]
    assert LABELS.beyond in said
    assert charts.to_png(far).startswith(b"\x89PNG")


def test_month_ticks_stay_few_whatever_the_span() -> None:
    for days in (40, 200, 700, 3000):
        axis = svg_charts.Axis(START, START + timedelta(days=days), False)
        ticks = svg_charts._month_ticks(axis)
        assert 1 <= len(ticks) <= 6, (days, ticks)
        assert all(re.fullmatch(r"\d{4}(-\d\d)?", text) for _, text in ticks)


def test_korean_labels_are_drawn_with_the_system_cjk_font() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of every missing glyph
        if pdf_fonts.cjk_font() is None:
            assert charts._families() == ["DejaVu Sans"]
        else:
            png = charts.to_png(charts.funnel([("목표", 1200), ("등록", 300)], "단계별 수강생"))
            assert png.startswith(b"\x89PNG")

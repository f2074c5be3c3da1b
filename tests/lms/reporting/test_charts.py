"""Server-drawn charts: SVG a page under a strict CSP can show, PNG with Korean labels."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

from lms.reporting import charts, pdf_fonts

LABELS = charts.CompletionsLabels(
    title="Completions <against> the target",
    completed="Completed",
    straight_line="Straight line",
    forecast="Forecast",
    target="Target 100",
    learners="Learners",
)


def test_svg_is_styled_by_attributes_and_titled() -> None:
    weekly = [(date(2026, 1, 5) + timedelta(weeks=n), 3 * n) for n in range(10)]
    figure = charts.completions(
        weekly,
        start=date(2026, 1, 1),
        today=date(2026, 3, 20),
        target=100,
        target_date=date(2026, 12, 31),
        forecast_date=date(2026, 9, 1),
        labels=LABELS,
    )
    svg = charts.to_svg(figure, LABELS.title)
    assert svg.startswith('<svg role="img" class="chart" stroke-linejoin="round"')
    assert "<title>Completions &lt;against&gt; the target</title>" in svg
    assert "style=" not in svg and "<style" not in svg  # the pages' CSP refuses inline style
    assert 'width="' not in svg.split(">", 1)[0]  # scales with its container (viewBox)
    assert ">Straight line<" in svg  # text stays text


def test_korean_labels_are_drawn_with_the_system_cjk_font() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of every missing glyph
        if pdf_fonts.cjk_font() is None:
            assert charts._families() == ["DejaVu Sans"]
        else:
            png = charts.to_png(charts.funnel([("목표", 1200), ("등록", 300)], "단계별 수강생"))
            assert png.startswith(b"\x89PNG")

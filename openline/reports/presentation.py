"""A report as the pages show it: the chart's data for Chart.js (a ``json_script`` block the
page's script reads), and the hour-of-week heat map's shading as a class per cell (the
Content-Security-Policy allows no inline styles)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from openline.reports.base import Report

HEAT_LEVELS = 5


@dataclass(slots=True)
class Card:
    report: Report
    chart: dict[str, object] | None  # for Chart.js; None when drawn as a table or not at all
    heat: list[list[tuple[object, str]]] | None  # heat map rows: (value, css class) per cell

    @property
    def chart_id(self) -> str:
        return f"chart-{self.report.key}"


def chart_data(report: Report) -> dict[str, object] | None:
    chart = report.chart
    if chart is None or chart.kind == "heatmap" or not chart.labels:
        return None
    return {
        "kind": chart.kind,
        "labels": chart.labels,
        "series": [{"name": name, "values": values} for name, values in chart.series],
        "stacked": chart.stacked,
    }


def heat_rows(report: Report) -> list[list[tuple[object, str]]] | None:
    if report.chart is None or report.chart.kind != "heatmap":
        return None
    peak = max((v for _, values in report.chart.series for v in values if v), default=0)
    rows = []
    for row in report.rows:
        cells: list[tuple[object, str]] = [(row[0], "")]
        for value in row[1:]:
            level = math.ceil(HEAT_LEVELS * value / peak) if peak and isinstance(value, int) else 0
            cells.append((value, f"heat-{level}"))
        rows.append(cells)
    return rows


def card(report: Report) -> Card:
    return Card(report=report, chart=chart_data(report), heat=heat_rows(report))

"""Geometry of the dashboard's server-rendered SVG charts: axes with ticks, dates, legends, and a
`title` on every bar (the browser shows it on hover, and it is the exact value).

Server-rendered SVG keeps the admin working offline with no script and no CDN; the numbers come
from the database aggregates and the templates under templates/admin/charts/ only draw them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

WIDTH = 760
COLUMN_HEIGHT = 240
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 24
MARGIN_BOTTOM = 40
MAX_DATE_LABELS = 10
BAR_ROW = 22
BAR_LABEL_WIDTH = 150

PALETTE = ("#417690", "#e6a23c", "#5aa469", "#8e6bb8", "#79aec8", "#ba2121", "#c0a062", "#666666")


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


@dataclass
class Chart:
    """What a chart template draws. Coordinates are SVG user units."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    y_ticks: list[dict] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    bars: list[dict] = field(default_factory=list)
    legend: list[Series] = field(default_factory=list)
    unit: str = ""
    empty: bool = False

    @property
    def center_x(self) -> float:
        return round((self.left + self.right) / 2, 1)


def series_for(keys: Sequence[tuple[str, str]], colors: Mapping[str, str] | None = None) -> list[Series]:
    """(key, label) pairs to series with stable colours (from `colors`, else the palette)."""
    colors = colors or {}
    return [Series(key, label, colors.get(key, PALETTE[i % len(PALETTE)])) for i, (key, label) in enumerate(keys)]


def nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `peak` (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if peak < count and step < 1:
        step = 1.0  # counts: no fractional ticks below a handful
    steps = math.ceil(peak / step - 1e-9)
    return [round(i * step, 6) for i in range(steps + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def stacked_columns(
    days: Sequence[date],
    values: Mapping[date, Mapping[str, float]],
    series: Sequence[Series],
    *,
    unit: str,
    describe: Callable[[date, Series, float], str] | None = None,
) -> Chart:
    """One column per day, stacked by series; a `title` per segment and one per column (total)."""
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = WIDTH - MARGIN_RIGHT, COLUMN_HEIGHT - MARGIN_BOTTOM
    totals = [sum(values.get(day, {}).get(s.key, 0) for s in series) for day in days]
    ticks = nice_ticks(max(totals, default=0))
    top_value = ticks[-1]
    scale = (bottom - top) / top_value
    slot = (right - left) / max(len(days), 1)
    bar_width = max(slot * 0.7, 1.0)
    chart = Chart(WIDTH, COLUMN_HEIGHT, left, top, right, bottom, legend=list(series), unit=unit)
    chart.empty = not any(totals)
    chart.y_ticks = [{"y": round(bottom - t * scale, 1), "label": _number(t)} for t in ticks]
    every = max(math.ceil(len(days) / MAX_DATE_LABELS), 1)
    describe = describe or (lambda day, s, v: f"{day.isoformat()} · {s.label}: {_number(v)} {unit}")
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_width) / 2
        if (len(days) - 1 - i) % every == 0:  # always label the newest day
            chart.x_ticks.append({"x": round(x + bar_width / 2, 1), "label": day.strftime("%b %d")})
        segments = []
        y: float = bottom
        for s in series:
            value = values.get(day, {}).get(s.key, 0)
            if not value:
                continue
            height = value * scale
            y -= height
            segments.append(
                {
                    "y": round(y, 1),
                    "height": round(height, 1),
                    "color": s.color,
                    "key": s.key,
                    "value": value,
                    "title": describe(day, s, value),
                }
            )
        chart.bars.append(
            {
                "x": round(x, 1),
                "width": round(bar_width, 1),
                "day": day.isoformat(),
                "total": totals[i],
                "title": f"{day.isoformat()}: {_number(totals[i])} {unit} in total",
                "segments": segments,
                "hit_y": top,
                "hit_height": bottom - top,
            }
        )
    return chart


def grouped_bars(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    series: Sequence[Series],
    *,
    unit: str,
) -> Chart:
    """Horizontal bars: one group per row label, one bar per series, the value written at its end."""
    groups = max(len(rows), 1)
    per_group = len(series)
    group_height = BAR_ROW * per_group + 10
    left, top = BAR_LABEL_WIDTH, MARGIN_TOP
    right = WIDTH - MARGIN_RIGHT - 60  # room for the value after the longest bar
    bottom = top + groups * group_height
    height = int(bottom + MARGIN_BOTTOM)
    peak = max((values.get(s.key, 0) for _, values in rows for s in series), default=0)
    ticks = nice_ticks(peak)
    scale = (right - left) / ticks[-1]
    chart = Chart(WIDTH, height, left, top, right, bottom, legend=list(series), unit=unit)
    chart.empty = not rows
    chart.x_ticks = [{"x": round(left + t * scale, 1), "label": _number(t)} for t in ticks]
    for g, (label, values) in enumerate(rows):
        y0 = top + g * group_height + 5
        bars = []
        for k, s in enumerate(series):
            value = values.get(s.key, 0) or 0
            width = value * scale
            bars.append(
                {
                    "y": round(y0 + k * BAR_ROW, 1),
                    "height": BAR_ROW - 6,
                    "width": round(max(width, 0.5 if value else 0), 1),
                    "end": round(left + width + 4, 1),
                    "color": s.color,
                    "key": s.key,
                    "value": value,
                    "value_label": _number(value),
                    "title": f"{label} · {s.label}: {_number(value)} {unit}",
                }
            )
        chart.bars.append({"label": label, "label_y": round(y0 + per_group * BAR_ROW / 2, 1), "bars": bars})
    return chart

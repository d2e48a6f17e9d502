"""The upcoming-jobs bar chart, laid out on the server and drawn as SVG by a template."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from ..models import Timeline
from ..throughput import Throughput
from .data import utc

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24


@dataclass(frozen=True, slots=True)
class Bar:
    """One step of the timeline: its rectangle, count and tooltip."""

    x: float
    y: float
    width: float
    height: float
    count: int
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis label at a position."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the SVG template needs; sizes in SVG user units."""

    width: int
    height: int
    left: int
    top: int
    bottom: float
    right: float
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    total: int
    peak: int


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 3, 4, 5, 6, 8, 10, 20, 30... that is at least ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 3, 4, 5, 6, 8):
            if step * factor >= value:
                return step * factor
        step *= 10


def _step_name(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds / 60:g}m"


def layout(timeline: Timeline, *, label_every: int) -> Chart:
    """Lay out a bar per step of ``timeline``; an x label every ``label_every`` steps."""
    counts = timeline.counts
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = nice_ceiling(max(counts, default=0))
    slot = plot_w / len(counts)
    gap = min(2.0, slot * 0.2)
    bars = []
    for i, count in enumerate(counts):
        height = plot_h * count / top_value
        start = timeline.now + timedelta(seconds=i * timeline.width)
        end = start + timedelta(seconds=timeline.width)
        span = f"+{_step_name(i * timeline.width)} to +{_step_name((i + 1) * timeline.width)}"
        title = f"{count} job{'s' if count != 1 else ''} due {span} ({utc(start)} to {utc(end)})"
        bars.append(
            Bar(LEFT + i * slot + gap / 2, TOP + plot_h - height, slot - gap, height, count, title)
        )
    x_ticks = [
        Tick(LEFT + i * slot, "now" if i == 0 else f"+{_step_name(i * timeline.width)}")
        for i in range(0, len(counts) + 1, label_every)
    ]
    fractions = (0, 0.5, 1) if top_value % 2 == 0 else (0, 1)
    y_ticks = [Tick(TOP + plot_h * (1 - f), f"{top_value * f:g}") for f in fractions]
    return Chart(
        WIDTH, HEIGHT, LEFT, TOP, TOP + plot_h, WIDTH - RIGHT, bars, x_ticks, y_ticks,
        sum(counts), max(counts, default=0),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """One series of the throughput chart: its SVG points and its total over the day."""

    name: str
    points: str
    total: int
    peak: int


@dataclass(frozen=True, slots=True)
class LineChart:
    """The throughput chart: one line per series over the last day, in ``step``-minute steps."""

    width: int
    height: int
    left: int
    top: int
    bottom: float
    right: float
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    step: int
    total: int


def lines(found: Throughput, *, step: int = 10) -> LineChart:
    """Lay out the series of ``found`` (jobs per minute, averaged over ``step`` minutes)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    series = found.series()
    averaged = {
        name: [sum(values[i : i + step]) / step for i in range(0, len(values), step)]
        for name, values in series.items()
    }
    count = max((len(v) for v in averaged.values()), default=0)
    highest = max((max(v, default=0.0) for v in averaged.values()), default=0.0)
    top_value = nice_ceiling(max(1, math.ceil(highest)))
    x_of = (lambda i: LEFT + plot_w * i / (count - 1)) if count > 1 else (lambda i: LEFT)
    drawn = []
    for name, values in averaged.items():
        points = " ".join(
            f"{x_of(i):.1f},{TOP + plot_h * (1 - v / top_value):.1f}" for i, v in enumerate(values)
        )
        drawn.append(Line(name, points, sum(series[name]), max(series[name], default=0)))
    hours = len(found.minutes) // 60
    x_ticks = [
        Tick(LEFT + plot_w * (1 - h / hours), "now" if h == 0 else f"-{h}h")
        for h in range(hours, -1, -6)
    ] if hours else []  # fmt: skip
    y_ticks = [Tick(TOP + plot_h * (1 - f), f"{top_value * f:g}") for f in (0, 0.5, 1)]
    return LineChart(
        WIDTH, HEIGHT, LEFT, TOP, TOP + plot_h, WIDTH - RIGHT, drawn, x_ticks, y_ticks, step,
        sum(line.total for line in drawn),
    )  # fmt: skip

"""A buyer's exposure timeline as an inline SVG chart, drawn by hand from the figures of
`ledger.adapters.charts.exposure_series` (the exposure query's own, one sample a day or a week).

Money is in minor units until it becomes a pixel position: a float is fine there, never for a
printed figure. The axis labels are round amounts in major units, the tooltips the figures.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.adapters.charts import INSURED_COLOUR, LIMIT_COLOUR, OUTSTANDING_COLOUR, ExposurePoint
from ledger.vocabulary.money import format_minor, minor_units

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 16, 34


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str  # the polyline's "x,y x,y ..."
    dashed: bool


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    """What the template draws: the lines, the axis ticks and the plot area."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    title: str


def _nice_step(top: int) -> int:
    """A round tick step (1, 2 or 5 times a power of ten) giving about five ticks up to `top`."""
    raw = max(top / 5, 1)
    power = 1
    while power * 10 <= raw:
        power *= 10
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return power * factor
    return power * 10


def _axis_label(minor: int, currency: str) -> str:
    """A tick's amount in major units, thousands as `k` and millions as `M`."""
    major = minor // 10 ** minor_units(currency)
    if major >= 1_000_000 and major % 100_000 == 0:
        return f"{major / 1_000_000:g}M"
    if major >= 1_000 and major % 100 == 0:
        return f"{major / 1_000:g}k"
    return f"{major:,}"


def exposure_chart(points: Sequence[ExposurePoint], currency: str, buyer: str) -> Chart:
    """Outstanding, insured and the limit (with any top-up) over the sampled days."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max((max(p.outstanding, p.insured, p.limit + p.top_up) for p in points), default=0)
    unit = 10 ** minor_units(currency)
    step = max(_nice_step(max(highest, unit)), unit)  # ticks at whole amounts at least
    top: int = step * (-(-max(highest, 1) // step))  # the first tick at or above the highest figure
    first, last = points[0].day, points[-1].day
    span = max((last - first).days, 1)

    def x(day: datetime.date) -> float:
        return LEFT + plot_w * (day - first).days / span

    def y(minor: int) -> float:
        return TOP + plot_h * (1 - minor / top)

    def polyline(values: Sequence[int], stepped: bool) -> str:
        coords: list[str] = []
        for n, (point, value) in enumerate(zip(points, values, strict=True)):
            if stepped and n:
                coords.append(f"{x(point.day):.1f},{y(values[n - 1]):.1f}")
            coords.append(f"{x(point.day):.1f},{y(value):.1f}")
        return " ".join(coords)

    lines = (
        Line("limit + top-up", LIMIT_COLOUR, polyline([p.limit + p.top_up for p in points], True), True),
        Line("outstanding", OUTSTANDING_COLOUR, polyline([p.outstanding for p in points], False), False),
        Line("insured", INSURED_COLOUR, polyline([p.insured for p in points], False), False),
    )
    y_ticks = tuple(Tick(y(value), _axis_label(value, currency)) for value in range(0, top + 1, step))
    months = []
    day = first.replace(day=1)
    while day <= last:
        if day >= first:
            months.append(day)
        day = (day + datetime.timedelta(days=32)).replace(day=1)
    every = max(1, -(-len(months) // 8))  # at most eight month labels
    x_ticks = tuple(Tick(x(month), month.strftime("%b %Y" if month.month == 1 or n == 0 else "%b"))
                    for n, month in enumerate(months[::every]))
    last_point = points[-1]
    title = (f"Exposure of {buyer} from {first} to {last}: on {last} outstanding "
             f"{format_minor(last_point.outstanding, currency)}, insured {format_minor(last_point.insured, currency)}, "
             f"limit {format_minor(last_point.limit, currency)}")
    return Chart(WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, lines, y_ticks, x_ticks, title)

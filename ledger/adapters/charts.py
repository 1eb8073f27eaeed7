"""Exposure charts as PNG files (issue 7), drawn with matplotlib's Agg canvas.

The figures come from the `exposure` query's own functions
(`ledger.queries.exposure.buyer_exposure`, `book_exposures`): known now, each sample is
a look-up per buyer in the exposure read model (ledger/readmodels/exposure.py); known
at an earlier time, the buyers with later news are folded, each stream read
once for the whole series. Money stays in integer minor units
until it is placed on an axis: a float is fine for a pixel position, never for
a figure the ledger prints.

No pyplot: a `Figure` on its own `FigureCanvasAgg` keeps no global state and
needs no display.
"""

from __future__ import annotations

import datetime
import functools
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.queries.exposure import book_exposures, buyer_exposure
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.money import format_minor, minor_units
from projections.exposure import Exposure, book_totals

# A limit on everything: a chart of more points than this is unreadable and slow to fold.
MAX_SAMPLES = 1000
# Up to about a quarter, one point a day; longer ranges one a week (readable; a sample costs a read-model look-up).
DAILY_UP_TO_DAYS = 92
MAX_TOP = 50

OUTSTANDING_COLOUR = "#d95f02"
INSURED_COLOUR = "#1b9e77"
LIMIT_COLOUR = "#3b3b98"
TOP_UP_COLOUR = "#7570b3"
AVAILABLE_COLOUR = "#e7298a"


@dataclass(frozen=True)
class ExposurePoint:
    """The figures drawn for one day, in minor units."""

    day: datetime.date
    outstanding: int
    insured: int
    limit: int
    top_up: int
    available: int  # what new deliveries that day would be insured for at most


# ---------------------------------------------------------------- the figures

def sample_days(first: datetime.date, last: datetime.date, every: str | None = None) -> list[datetime.date]:
    """The days to fold from `first` to `last` (both included): daily or weekly.

    Without `every`, daily up to DAILY_UP_TO_DAYS days and weekly beyond; the
    last day is always a sample, so the chart ends on the date asked for.
    """
    if last < first:
        raise LedgerError(f"--from {first} is after --to {last}", field="from")
    span = (last - first).days
    step_name = every or ("day" if span <= DAILY_UP_TO_DAYS else "week")
    if step_name not in ("day", "week"):
        raise LedgerError(f"{step_name!r} is not a step (day or week)", field="every")
    step = 1 if step_name == "day" else 7
    days = [first + datetime.timedelta(days=n) for n in range(0, span + 1, step)]
    if days[-1] != last:
        days.append(last)
    if len(days) > MAX_SAMPLES:
        raise LedgerError(
            f"{len(days)} samples from {first} to {last} by {step_name}; at most {MAX_SAMPLES} (a shorter range, or --every week)",
            field="to",
        )
    return days


def exposure_series(
    ledger: Ledger, buyer: str | None, days: Sequence[datetime.date], known_at: datetime.datetime | None
) -> list[ExposurePoint]:
    """Outstanding, insured, limit, top-up and available at the end of each day: one buyer's, or the book's totals.

    The figures are the exposure query's own (`buyer_exposure`, `book_exposures`): known now, each
    is a look-up in the exposure read model, not a fold. A buyer not yet registered on a day counts
    0 that day (as the book query leaves it out). An unknown buyer is refused.
    """
    if buyer is not None and buyer not in ledger.buyers():
        raise LedgerError(f"{buyer} is not a registered buyer", field="buyer")
    streams = functools.cache(ledger.buyer_events)  # known earlier, a buyer refolded at every sample is read once
    points = []
    registered = False
    for day in days:
        if buyer is None:
            rows = [row for _, row in book_exposures(ledger, day, known_at, streams)]
        else:
            one = _buyer_on(ledger, buyer, day, known_at)
            rows = [] if one is None else [one]
        registered = registered or bool(rows)
        totals = book_totals(rows)
        points.append(ExposurePoint(day, totals["outstanding"], totals["insured"], totals["limit"], totals["top_up"],
                                    totals["available"]))
    if buyer is not None and not registered:
        when = f" as known at {known_at.isoformat()}" if known_at else ""
        raise LedgerError(f"{buyer} is not a registered buyer by {days[-1]}{when}", field="buyer")
    return points


def _buyer_on(
    ledger: Ledger, buyer: str, day: datetime.date, known_at: datetime.datetime | None
) -> Exposure | None:
    """The buyer's exposure on `day`, or None before its registration (the query refuses, naming the buyer)."""
    try:
        return buyer_exposure(ledger, buyer, day, known_at)
    except LedgerError as problem:
        if problem.field == "buyer":
            return None
        raise


def largest_exposures(
    ledger: Ledger, as_of: datetime.date, known_at: datetime.datetime | None, top: int
) -> list[tuple[str, Exposure]]:
    """The `top` buyers with the most outstanding at `as_of`, largest first (ties by buyer)."""
    if not 1 <= top <= MAX_TOP:
        raise LedgerError(f"{top} is not between 1 and {MAX_TOP}", field="top")
    rows = [row for row in book_exposures(ledger, as_of, known_at) if row[1].outstanding > 0]
    rows.sort(key=lambda row: (-row[1].outstanding, row[0]))
    return rows[:top]


def _units(amount_minor: int, currency: str) -> float:
    """Currency units for an axis position only (see the module note)."""
    return float(amount_minor / 10 ** minor_units(currency))


# ---------------------------------------------------------------- drawing

def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _money_axis(axis: Any, currency: str) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:,.0f}"))


def draw_exposure(points: Sequence[ExposurePoint], title: str, currency: str) -> bytes:
    """A PNG of outstanding, insured, limit and available over time (steps: a value holds until the next sample)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    figure = _figure(10, 5.2)
    axes = figure.add_subplot()
    days = [point.day for point in points]

    def units(name: str) -> list[float]:
        return [_units(getattr(point, name), currency) for point in points]

    axes.fill_between(days, units("insured"), step="post", color=INSURED_COLOUR, alpha=0.18, linewidth=0)
    # Outstanding is wider and under insured: where the two are equal, both stay visible.
    axes.step(days, units("outstanding"), where="post", color=OUTSTANDING_COLOUR, linewidth=4, label="outstanding")
    axes.step(days, units("insured"), where="post", color=INSURED_COLOUR, linewidth=1.8, label="insured")
    axes.step(days, units("limit"), where="post", color=LIMIT_COLOUR, linewidth=1.8, linestyle="--", label="limit")
    if any(point.top_up for point in points):
        with_top_up = [_units(p.limit + p.top_up, currency) for p in points]
        axes.step(days, with_top_up, where="post", color=TOP_UP_COLOUR, linewidth=1.4, linestyle=":",
                  label="limit + top-up")
    axes.step(days, units("available"), where="post", color=AVAILABLE_COLOUR, linewidth=1.4, linestyle="-.",
              label="available for new deliveries")
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.set_xlim(days[0], days[-1])
    highest = max(max(p.outstanding, p.insured, p.limit + p.top_up) for p in points)
    axes.set_ylim(bottom=0, top=_units(highest, currency) * 1.08 or 1)  # room above the highest line
    _money_axis(axes.yaxis, currency)
    axes.set_ylabel(currency)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.legend(loc="outside lower center", ncol=5, frameon=False)  # outside: it never hides a line
    return _png(figure)


def draw_book(rows: Sequence[tuple[str, Exposure]], title: str, currency: str) -> bytes:
    """A PNG of horizontal bars: each buyer's outstanding and insured part against its limit, largest on top,
    each with what new deliveries would be insured for (or why nothing)."""
    figure = _figure(10, max(3.5, 1.2 + 0.5 * len(rows)))
    axes = figure.add_subplot()
    if not rows:
        axes.text(0.5, 0.5, "no buyer has anything outstanding", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        axes.set_title(title)
        return _png(figure)
    names = [name for name, _ in rows]
    places = list(range(len(rows)))
    limits = [_units(row.limit + row.top_up, currency) for _, row in rows]
    axes.barh(places, limits, height=0.8, color="none", edgecolor=LIMIT_COLOUR, linewidth=1.5, linestyle="--",
              label="limit (+ top-up)")
    axes.barh(places, [_units(row.outstanding, currency) for _, row in rows], height=0.55,
              color=OUTSTANDING_COLOUR, label="outstanding")
    axes.barh(places, [_units(row.insured, currency) for _, row in rows], height=0.3, color=INSURED_COLOUR,
              label="insured")
    for place, (_, row) in zip(places, rows, strict=True):
        share = f"{row.outstanding * 100 // (row.limit + row.top_up)}% of limit" if row.limit + row.top_up else "no limit"
        share += (f"; available {format_minor(row.available, currency)}" if not row.not_available
                  else f"; none available: {row.not_available.replace('_', ' ')}")
        axes.annotate(share, (max(_units(row.outstanding, currency), limits[place]), place), xytext=(4, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axes.set_yticks(places, names)
    axes.invert_yaxis()  # the largest exposure on top
    axes.set_xlim(left=0, right=max(max(limits), max(_units(r.outstanding, currency) for _, r in rows)) * 1.15)
    _money_axis(axes.xaxis, currency)
    axes.set_xlabel(currency)
    axes.set_title(title)
    axes.grid(True, axis="x", alpha=0.3)
    figure.legend(loc="outside lower center", ncol=3, frameon=False)
    return _png(figure)


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------- the file

def check_output(path: Path) -> None:
    """Refuse, before any work, a path the chart cannot be written to."""
    if path.suffix.lower() != ".png":
        raise LedgerError("a chart is written as PNG: the file name must end in .png", source=str(path), field="out")
    folder = path.parent
    if not folder.is_dir():
        raise LedgerError(f"{folder} is not a folder", source=str(path), field="out")
    if path.is_dir():
        raise LedgerError("is a folder, not a file", source=str(path), field="out")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LedgerError("cannot be written (no permission)", source=str(path), field="out")


def write_png(path: Path, data: bytes) -> None:
    """Write the PNG whole or not at all: a temporary file in the same folder, then a rename."""
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=".chart-", suffix=".png", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except OSError as problem:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise LedgerError(f"cannot be written: {problem.strerror or problem}", source=str(path), field="out") from None

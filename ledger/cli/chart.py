"""`creditledger chart`: exposure pictures as PNG files (issue 7).

A sub-app of its own; matplotlib is imported when a chart is drawn, so the other
commands do not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import DbOption, app, caught_up, open_ledger, shown_location
from ledger.cli.common import out as console
from ledger.queries.arguments import as_of_argument, day_argument, known_at_argument

chart_app = typer.Typer(rich_markup_mode=None, help="Draw exposure charts as PNG files.", no_args_is_help=True)
app.add_typer(chart_app, name="chart")

OutOption = Annotated[Path, typer.Option("--out", help="The PNG file to write (replaced if it exists).")]
KnownAtOption = Annotated[
    str | None, typer.Option(help="As the ledger knew it then (a timestamp such as 2025-03-10T09:00:00Z, or a date YYYY-MM-DD: its end).")
]


@chart_app.command("exposure")
def chart_exposure(
    date_from: Annotated[str, typer.Option("--from", help="The first day drawn, YYYY-MM-DD.")],
    date_to: Annotated[str, typer.Option("--to", help="The last day drawn, YYYY-MM-DD.")],
    out: OutOption,
    buyer: Annotated[str | None, typer.Option(help="One buyer (default: the book's totals).")] = None,
    every: Annotated[
        str | None, typer.Option(help="day or week (default: daily up to 92 days, weekly beyond).")
    ] = None,
    known_at: KnownAtOption = None,
    db: DbOption = "ledger.db",
) -> None:
    """Outstanding, insured and limit over time, for one buyer or the book, as a PNG line chart."""
    from ledger.adapters import charts

    first, last = day_argument(date_from, "from"), day_argument(date_to, "to")
    days = charts.sample_days(first, last, every)
    moment = known_at_argument({"known_at": known_at})
    charts.check_output(out)
    with open_ledger(db) as ledger:
        caught_up(ledger)
        currency = ledger.terms().currency
        points = charts.exposure_series(ledger, buyer, days, moment)
        where = shown_location(ledger.location)
    who = f"Exposure of {buyer}" if buyer else "Exposure of the book"
    step = "daily" if len(days) < 2 or (days[1] - days[0]).days == 1 else "weekly"
    title = f"{who}, {first} to {last} ({step})" + (f", as known at {moment:%Y-%m-%d %H:%M} UTC" if moment else "")
    data = charts.draw_exposure(points, title, currency)
    charts.write_png(out, data)
    console.print(f"wrote {out} ({len(points)} {step} samples from {first} to {last}, {len(data):,} bytes) from {where}",
                  markup=False)


@chart_app.command("book")
def chart_book(
    out: OutOption,
    as_of: Annotated[str | None, typer.Option("--as-of", help="The effective date, YYYY-MM-DD (default today).")] = None,
    top: Annotated[int, typer.Option(help="How many buyers, largest outstanding first.")] = 10,
    known_at: KnownAtOption = None,
    db: DbOption = "ledger.db",
) -> None:
    """The largest exposures against their limits at --as-of, as a PNG of horizontal bars."""
    from ledger.adapters import charts

    moment = known_at_argument({"known_at": known_at})
    charts.check_output(out)
    with open_ledger(db) as ledger:
        caught_up(ledger)
        day = as_of_argument({"as_of": as_of}, ledger.clock().date())
        currency = ledger.terms().currency
        rows = charts.largest_exposures(ledger, day, moment, top)
    title = f"Largest exposures against their limits, {day}" + (
        f", as known at {moment:%Y-%m-%d %H:%M} UTC" if moment else "")
    data = charts.draw_book(rows, title, currency)
    charts.write_png(out, data)
    console.print(f"wrote {out} ({len(rows)} buyers as of {day}, {len(data):,} bytes)", markup=False)

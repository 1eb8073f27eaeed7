"""Time the exposure queries on a ledger (the `make demo` book by default).

Usage: python bench/exposure_timing.py [LEDGER] [--repeat N]
Prints p50/p99 of one buyer's exposure at random (as_of, known_at), and the
whole book's exposure known now and at an earlier time. The benchmark of the
performance work will supersede this; until then it is the measuring stick.
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import time

from ledger.queries import exposure_query
from ledger.service import Ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ledger", nargs="?", default="build/demo/ledger.db")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(1)
    with Ledger(args.ledger) as ledger:
        buyers = ledger.store.index.buyers()
        events = ledger.count()
        first = next(iter(ledger.events())).recorded
        last = ledger.store.index.last_recorded()
        assert last is not None
        end = datetime.datetime.fromisoformat(last.replace("Z", "+00:00"))
        one = []
        for _ in range(args.repeat):
            buyer = rng.choice(buyers)
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))  # after registrations
            known_at = first + (end - first) * (0.5 + rng.random() / 2)  # after the registrations were recorded
            start = time.perf_counter()
            exposure_query(ledger, {"buyer": buyer, "as_of": as_of, "known_at": known_at})
            one.append(time.perf_counter() - start)
        book = []
        for known_at in (None, first + (end - first) / 2):
            start = time.perf_counter()
            exposure_query(ledger, {"as_of": datetime.date(2025, 12, 31), "known_at": known_at})
            book.append(time.perf_counter() - start)
    one.sort()
    print(f"ledger: {args.ledger}, {events} events, {len(buyers)} buyers")
    print(f"one buyer's exposure: p50 {statistics.median(one) * 1e3:.1f} ms, "
          f"p99 {one[int(len(one) * 0.99) - 1] * 1e3:.1f} ms ({args.repeat} queries)")
    print(f"book exposure known now: {book[0] * 1e3:.0f} ms; known at an earlier time: {book[1] * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

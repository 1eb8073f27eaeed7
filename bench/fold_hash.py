"""A fingerprint of every figure the folds give on seeded sample books, to check that a change
made for speed changes no figure: `python bench/fold_hash.py [--events N ...]`.

For each book (seed 11, built once into a SQLite file kept in --dir, so that event ids and
recorded stamps stay the same from run to run) it hashes, for every buyer: its exposure
timeline, and its whole cover at three dates (invoices with caps, balances and lost cover,
duties, premium lines, top-up, loss); then the claims register with every explanation (and each loss's
`claim --explain` on its own) and the premium account with its lines. It prints one hash per book; equal hashes, equal figures.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import sys
from pathlib import Path

from ledger.queries.claims import claim_query, claims_of, explanation
from ledger.queries.premium import premium_query
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy
from projections.cover import buyer_cover
from projections.timeline import exposure_timeline

DATES = (datetime.date(2025, 3, 31), datetime.date(2025, 8, 15), datetime.date(2025, 12, 31))


def book(events: int, directory: Path) -> Path:
    path = directory / f"fold-hash-11-{events}.db"
    if not path.exists():
        policy, rows = samplebook.generate(seed=11, events=events)
        with Ledger(str(path)) as ledger:
            ledger.load_policy(parse_policy(policy))
            ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
    return path


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with Ledger(str(path)) as ledger:
        policy = ledger.policy_events()
        currency = ledger.terms().currency
        for buyer in ledger.buyers():
            events = ledger.buyer_events(buyer)
            digest.update(repr(exposure_timeline(buyer, events, policy)).encode())
            for day in DATES:
                digest.update(repr(buyer_cover(buyer, events, policy, day)).encode())
        for day in DATES:
            for claim in claims_of(ledger, day, None):
                digest.update(repr(explanation(claim, currency)).encode())
                if claim.loss_date is not None:  # the one-buyer query, which folds less
                    digest.update(repr(claim_query(ledger, {"buyer": claim.buyer, "as_of": day.isoformat(),
                                                            "explain": True})).encode())
            digest.update(repr(premium_query(ledger, {"as_of": day.isoformat(), "lines": True})).encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="*", default=[20_000, 100_000], help="book sizes (events)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/fold-hash"), help="where the books are kept")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for events in args.events:
        print(f"{events:>9,} events  {fingerprint(book(events, args.dir))}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

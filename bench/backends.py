"""SQLite against PostgreSQL on one seeded book (default 100,000 events), for docs/scaling.md.

For each backend: the import (one transaction), 200 single appends, 50 one-buyer exposures
(random buyer, as_of and known_at) and the book's exposure; then the copy of
the SQLite ledger to PostgreSQL (`creditledger copy`) and its verification.
Prints one table and writes bench/backends.json with the machine, its load
and the commit. Run it once on a quiet machine: it takes minutes.

    .venv/bin/python bench/backends.py [--events 100000] [--server postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from run import machine, percentile  # bench/run.py: this folder is on the path when run as a script

from ledger.operations import copy as copying
from ledger.queries.exposure import exposure_query
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy

RESULTS = Path(__file__).with_name("backends.json")


def measure(location: str, policy: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Import, append, one buyer's exposure and the book's exposure on one backend."""
    figures: dict[str, Any] = {}
    with Ledger(location) as ledger:
        ledger.load_policy(parse_policy(policy))
        start = time.perf_counter()
        ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
        figures["import_events_per_s"] = round(len(rows) / (time.perf_counter() - start))
        buyers = ledger.store.index.buyers()
        rng = random.Random(5)
        latencies = []
        for number in range(200):
            start = time.perf_counter()
            ledger.append({"type": "limit_requested", "effective": "2025-12-31", "buyer": rng.choice(buyers),
                           "amount": "1000", "key": f"BENCH-{number}"})
            latencies.append(time.perf_counter() - start)
        figures["append_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["append_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        first = next(iter(ledger.events())).recorded
        last = datetime.datetime.now(datetime.UTC)
        latencies = []
        for _ in range(50):
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))
            known_at = first + (last - first) * (0.5 + rng.random() / 2)
            start = time.perf_counter()
            exposure_query(ledger, {"buyer": rng.choice(buyers), "as_of": as_of, "known_at": known_at})
            latencies.append(time.perf_counter() - start)
        figures["buyer_exposure_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["buyer_exposure_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        start = time.perf_counter()
        exposure_query(ledger, {"as_of": datetime.date(2025, 12, 31)})
        figures["book_exposure_ms"] = round((time.perf_counter() - start) * 1e3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="SQLite against PostgreSQL")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    policy, rows = samplebook.generate(seed=11, events=args.events)
    schemas = ["bench_" + uuid.uuid4().hex[:12] for _ in range(2)]
    results: dict[str, Any] = {
        "machine": machine(), "load_average": os.getloadavg(), "events": len(rows) + 1,
        "when": datetime.datetime.now(datetime.UTC).isoformat(), "backends": {},
    }
    try:
        with tempfile.TemporaryDirectory() as workdir:
            sqlite_path = str(Path(workdir) / "bench.db")
            for name, location in (("sqlite", sqlite_path), ("postgresql", f"{args.server}?schema={schemas[0]}")):
                print(f"measuring {name} ...", file=sys.stderr)
                results["backends"][name] = measure(location, policy, rows)
            print("copying SQLite to PostgreSQL ...", file=sys.stderr)
            with Ledger(sqlite_path) as source, Ledger(f"{args.server}?schema={schemas[1]}") as target:
                start = time.perf_counter()
                copied = copying.copy_events(source, target)
                results["copy_events_per_s"] = round(copied / (time.perf_counter() - start))
                start = time.perf_counter()
                differences = copying.verify(source, target)
                results["verify_s"] = round(time.perf_counter() - start, 1)
                results["verify_differences"] = len(differences)
    finally:
        with psycopg.connect(args.server, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    names = sorted({name for figures in results["backends"].values() for name in figures})
    print(f"{'figure':26}{'SQLite':>12}{'PostgreSQL':>12}")
    for name in names:
        print(f"{name:26}" + "".join(f"{results['backends'][b][name]:>12}" for b in ("sqlite", "postgresql")))
    print(f"copy SQLite -> PostgreSQL: {results['copy_events_per_s']} events/s; verification "
          f"{results['verify_s']} s, {results['verify_differences']} differences")
    print(f"{results['events']} events; machine: {results['machine']}; load {results['load_average']}")


if __name__ == "__main__":
    main()

"""The benchmark: `make bench` (10,000 and 100,000 events; `--full` adds 1,000,000).

For each size it generates the seeded sample book, then measures on a SQLite
file: bulk import, interactive appends, a full replay of the log, one
buyer's exposure, the book's exposure (known now and at an earlier time),
and on the largest size a claim with its explanation and the premium
account. It prints one table and writes the same figures, with the machine's
CPU and the commit, to bench/results.json so that runs can be compared.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from ledger import samplebook
from ledger.policy import parse_policy
from ledger.queries import claim_query, claims_of, exposure_query, premium_query
from ledger.service import Ledger

RESULTS = Path(__file__).with_name("results.json")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def measure(size: int, workdir: Path, largest: bool) -> dict[str, Any]:
    """Every figure for one size of book."""
    policy, rows = samplebook.generate(seed=11, events=size)
    figures: dict[str, Any] = {"events": len(rows) + 1}
    path = workdir / f"bench-{size}.db"
    with Ledger(str(path)) as ledger:
        ledger.load_policy(parse_policy(policy))
        start = time.perf_counter()
        ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
        figures["import_events_per_s"] = round(len(rows) / (time.perf_counter() - start))
        buyers = ledger.store.index.buyers()
        rng = random.Random(5)
        latencies = []
        for number in range(200):
            buyer = rng.choice(buyers)
            start = time.perf_counter()
            ledger.append({"type": "limit_requested", "effective": "2025-12-31", "buyer": buyer, "amount": "1000",
                           "key": f"BENCH-{size}-{number}"})
            latencies.append(time.perf_counter() - start)
        figures["append_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["append_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        tracemalloc.start()
        start = time.perf_counter()
        replayed = sum(1 for _ in ledger.events())
        elapsed = time.perf_counter() - start
        figures["replay_events_per_s"] = round(replayed / elapsed)
        figures["replay_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        first = next(iter(ledger.events())).recorded
        last = datetime.datetime.now(datetime.UTC)
        latencies = []
        for _ in range(100):
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))
            known_at = first + (last - first) * (0.5 + rng.random() / 2)
            start = time.perf_counter()
            exposure_query(ledger, {"buyer": rng.choice(buyers), "as_of": as_of, "known_at": known_at})
            latencies.append(time.perf_counter() - start)
        figures["buyer_exposure_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["buyer_exposure_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        for label, known_at in (("book_exposure_now_ms", None), ("book_exposure_earlier_ms", first + (last - first) / 2)):
            start = time.perf_counter()
            exposure_query(ledger, {"as_of": datetime.date(2025, 12, 31), "known_at": known_at})
            figures[label] = round((time.perf_counter() - start) * 1e3)
        if largest:
            register = claims_of(ledger, datetime.date(2025, 12, 31), None)
            claimant = next((c.buyer for c in register if c.loss_date is not None), buyers[0])
            start = time.perf_counter()
            claim_query(ledger, {"buyer": claimant, "as_of": "2025-12-31", "explain": True})
            figures["claim_explain_ms"] = round((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            premium_query(ledger, {"as_of": "2026-01-31"})
            figures["premium_account_ms"] = round((time.perf_counter() - start) * 1e3)
    return figures


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "python": platform.python_version(), "commit": commit or "unknown"}


def main() -> None:
    parser = argparse.ArgumentParser(description="creditledger benchmark")
    parser.add_argument("--full", action="store_true", help="also the 1,000,000-event book (minutes)")
    parser.add_argument("--sizes", type=int, nargs="*", help="event counts to measure instead")
    args = parser.parse_args()
    sizes = args.sizes or ([10_000, 100_000, 1_000_000] if args.full else [10_000, 100_000])
    results: dict[str, Any] = {"machine": machine(), "when": datetime.datetime.now(datetime.UTC).isoformat(), "sizes": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for size in sizes:
            print(f"measuring {size:,} events ...", file=sys.stderr)
            results["sizes"][str(size)] = measure(size, Path(workdir), size == max(sizes))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    names = sorted({name for figures in results["sizes"].values() for name in figures})
    print(f"{'figure':28}" + "".join(f"{size:>14,}" for size in sizes))
    for name in names:
        cells = "".join(f"{results['sizes'][str(size)].get(name, ''):>14}" for size in sizes)
        print(f"{name:28}{cells}")
    print(f"machine: {results['machine']}; written to {RESULTS}")


if __name__ == "__main__":
    main()

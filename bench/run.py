"""The benchmark: `make bench` (10,000 and 100,000 events; `--full` adds 1,000,000).

For each size it generates the seeded sample book, then measures on a SQLite
file: bulk import; a full replay (every event decoded, then the exposure
read model rebuilt from nothing); interactive appends and the read model's
catch-up after them; one buyer's exposure at random `as_of` and `known_at`;
the book's exposure known now and at an earlier time; on the largest size a
claim with its explanation and the premium account. Then the peers of
bench/peers.py on the same facts: (a) eventsourcing's plain aggregates
rebuilt by its repository, (b) plain SQL for the book's outstanding, as
ratios. It prints one table and writes the same figures, with the machine's
CPU and the commit, to bench/results.json so that runs can be compared.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peers  # bench/peers.py, beside this file
import serve_load  # bench/serve_load.py: the load test of creditledger serve

from ledger.queries.claims import claim_query, claims_of
from ledger.queries.exposure import exposure_query
from ledger.queries.premium import premium_query
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy

RESULTS = Path(__file__).with_name("results.json")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def measure(size: int, workdir: Path, largest: bool) -> dict[str, Any]:
    """Every figure for one size of book."""
    policy, rows = samplebook.generate(seed=11, events=size)
    # The generated rows stay alive for the peers: frozen, the collector never walks them, so
    # the figures are those of a process holding just the ledger (as the CLI does).
    gc.collect()
    gc.freeze()
    figures: dict[str, Any] = {"events": len(rows) + 1}
    path = workdir / f"bench-{size}.db"
    with Ledger(str(path)) as ledger:
        ledger.load_policy(parse_policy(policy))
        _, elapsed = timed(lambda: ledger.record(ledger.parse(list(enumerate(rows, 1)), "book")))
        figures["import_events_per_s"] = round(len(rows) / elapsed)
        imported = datetime.datetime.now(datetime.UTC)  # known_at is drawn from here on: every buyer known
        buyers = ledger.store.index.buyers()
        figures["buyers"] = len(buyers)

        # Full replay: every event decoded from the store (timed, then again under tracemalloc for
        # its peak: tracing slows allocation several times), then every projection the read model
        # keeps (each buyer's exposure timeline) rebuilt from nothing.
        replayed, elapsed = timed(lambda: sum(1 for _ in ledger.events()))
        figures["replay_events_per_s"] = round(replayed / elapsed)
        tracemalloc.start()
        sum(1 for _ in ledger.events())
        figures["replay_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        _, elapsed = timed(ledger.exposure_model.catch_up)
        figures["read_model_rebuild_s"] = round(elapsed, 1)
        figures["read_model_rebuild_events_per_s"] = round(replayed / elapsed)
        figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

        rng = random.Random(5)
        latencies = []
        touched = set()
        for number in range(200):
            buyer = rng.choice(buyers)
            touched.add(buyer)
            latencies.append(timed(lambda: ledger.append({
                "type": "limit_requested", "effective": "2025-12-31", "buyer": buyer, "amount": "1000",  # noqa: B023
                "key": f"BENCH-{size}-{number}"}))[1])  # noqa: B023
        figures["append_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["append_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        _, elapsed = timed(ledger.exposure_model.catch_up)
        figures["read_model_catch_up_ms"] = round(elapsed * 1e3)
        figures["read_model_catch_up_buyers"] = len(touched)

        first, last = imported, datetime.datetime.now(datetime.UTC)
        latencies = []
        for _ in range(200):
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))
            known_at = first + (last - first) * rng.random()
            arguments = {"buyer": rng.choice(buyers), "as_of": as_of, "known_at": known_at}
            latencies.append(timed(lambda: exposure_query(ledger, arguments))[1])  # noqa: B023
        figures["buyer_exposure_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["buyer_exposure_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        year_end = datetime.date(2025, 12, 31)
        for label, known_at in (("book_exposure_now_ms", None), ("book_exposure_earlier_ms", first + (last - first) / 2)):
            _, elapsed = timed(lambda: exposure_query(ledger, {"as_of": year_end, "known_at": known_at}))  # noqa: B023
            figures[label] = round(elapsed * 1e3)
        if largest:
            register = claims_of(ledger, year_end, None)
            claimant = next((c.buyer for c in register if c.loss_date is not None), buyers[0])
            _, elapsed = timed(lambda: claim_query(ledger, {"buyer": claimant, "as_of": "2025-12-31", "explain": True}))
            figures["claim_explain_ms"] = round(elapsed * 1e3)
            _, elapsed = timed(lambda: premium_query(ledger, {"as_of": "2026-01-31"}))
            figures["premium_account_ms"] = round(elapsed * 1e3)

        # The peers, on the same facts.
        (app, ids), elapsed = timed(lambda: peers.build_peer_a(rows, workdir / f"peer-a-{size}.db"))
        figures["peer_a_build_s"] = round(elapsed, 1)
        peer_events, elapsed = peers.replay_peer_a(app, ids)
        figures["peer_a_replay_events_per_s"] = round(peer_events / elapsed)
        figures["replay_vs_peer_a"] = round(figures["replay_events_per_s"] / figures["peer_a_replay_events_per_s"], 1)
        figures["rebuild_vs_peer_a"] = round(
            figures["read_model_rebuild_events_per_s"] / figures["peer_a_replay_events_per_s"], 2)
        database = peers.build_peer_b(rows, workdir / f"peer-b-{size}.db")
        _, elapsed = peers.outstanding_peer_b(database, year_end)
        figures["peer_b_outstanding_ms"] = round(elapsed * 1e3, 1)
        figures["book_now_vs_peer_b"] = round(figures["book_exposure_now_ms"] / max(elapsed * 1e3, 0.1), 1)
        database.close()
    figures.update(serve_load.measure(path, size))
    gc.unfreeze()
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

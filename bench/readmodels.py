"""The stored read models measured, for docs/scaling.md: fresh processes, shared models, scale-out.

On one seeded book (default 100,000 events) in a SQLite file and in a PostgreSQL schema:
- the model's first build (the first query ever on the ledger, one process),
- the first book query of a fresh process once the model is stored (opening the ledger and
  answering, in a new process; and the whole process, Python's start included),
- one buyer's exposure p50/p99 (known now, random as_of), in one process;
then on PostgreSQL 1, 2 and 4 processes asking one buyer's exposure at once (the same
answers, throughput, p99), and many policies as one schema each.
Writes bench/readmodels.json with the machine and its load. It takes minutes.

    .venv/bin/python bench/readmodels.py [--events 100000] [--server postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from run import machine, percentile  # bench/run.py: this folder is on the path when run as a script

from ledger.queries.exposure import exposure_query
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy

RESULTS = Path(__file__).with_name("readmodels.json")
YEAR_END = datetime.date(2025, 12, 31)


def build(location: str, policy: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    with Ledger(location) as ledger:
        ledger.load_policy(parse_policy(policy))
        ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))


def first_query(location: str) -> dict[str, float]:
    """A new process: open the ledger and ask the book's exposure (the worker's own timing),
    and the whole process's wall time."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--first", location], capture_output=True, text=True, check=True)
    return {"open_and_answer_s": float(done.stdout.split()[0]), "process_s": time.perf_counter() - start}


def asks(seed: int, buyers: list[str], count: int) -> list[tuple[str, datetime.date]]:
    rng = random.Random(seed)
    return [(rng.choice(buyers), datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350)))
            for _ in range(count)]


def buyer_latencies(ledger: Ledger, questions: list[tuple[str, datetime.date]]) -> tuple[list[float], str]:
    """One buyer's exposure for each question: the latencies and a digest of the answers."""
    latencies, digest = [], hashlib.sha256()
    for buyer, as_of in questions:
        start = time.perf_counter()
        answer = exposure_query(ledger, {"buyer": buyer, "as_of": as_of})
        latencies.append(time.perf_counter() - start)
        digest.update(repr(answer).encode())
    return latencies, digest.hexdigest()[:16]


def scale_out(location: str, processes: int, count: int) -> dict[str, Any]:
    """`processes` processes asking the same questions at once, each on its own connection pool."""
    children = [subprocess.Popen([sys.executable, __file__, "--asker", location, str(count)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    start = time.perf_counter()
    outputs = [json.loads(child.communicate()[0]) for child in children]
    wall = time.perf_counter() - start
    latencies = [latency for out in outputs for latency in out["latencies"]]
    return {
        "processes": processes, "queries": len(latencies),
        "queries_per_s": round(len(latencies) / max(out["elapsed"] for out in outputs)),
        "p50_ms": round(statistics.median(latencies) * 1e3, 2), "p99_ms": round(percentile(latencies, 0.99) * 1e3, 2),
        "same_answers": len({out["digest"] for out in outputs}) == 1, "wall_s": round(wall, 1),
    }


def measure(location: str, policy: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    build(location, policy, rows)
    figures["import_s"] = round(time.perf_counter() - start, 1)
    build_run = first_query(location)  # nothing stored yet: this process builds the model
    figures["first_build_s"] = round(build_run["open_and_answer_s"], 2)
    runs = [first_query(location) for _ in range(5)]
    figures["fresh_process_book_s"] = round(statistics.median(r["open_and_answer_s"] for r in runs), 3)
    figures["fresh_process_total_s"] = round(statistics.median(r["process_s"] for r in runs), 2)
    with Ledger(location) as ledger:
        latencies, _ = buyer_latencies(ledger, asks(5, ledger.buyers(), 300))
        figures["buyer_exposure_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["buyer_exposure_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        start = time.perf_counter()
        exposure_query(ledger, {"as_of": YEAR_END})
        figures["book_exposure_ms"] = round((time.perf_counter() - start) * 1e3, 1)
        ledger.append({"type": "limit_requested", "effective": "2025-12-31", "buyer": ledger.buyers()[0],
                       "amount": "1000", "key": "BENCH-RM-1"})
        start = time.perf_counter()
        exposure_query(ledger, {"as_of": YEAR_END})
        figures["book_after_one_append_ms"] = round((time.perf_counter() - start) * 1e3, 1)
    return figures


def many_policies(server: str, schemas: list[str], events: int) -> dict[str, Any]:
    """One schema per policy, each a ledger of `events`: open every one in one process (pool
    of 1 each) and ask one buyer's exposure in each, round robin."""
    os.environ["CREDITLEDGER_PG_POOL_SIZE"], os.environ["CREDITLEDGER_PG_POOL_OVERFLOW"] = "1", "1"
    policy, rows = samplebook.generate(seed=13, events=events)
    start = time.perf_counter()
    for schema in schemas:
        build(f"{server}?schema={schema}", policy, rows)
    built = time.perf_counter() - start
    start = time.perf_counter()
    ledgers = [Ledger(f"{server}?schema={schema}") for schema in schemas]
    for ledger in ledgers:
        exposure_query(ledger, {"as_of": YEAR_END})  # each model built on first use
    first = time.perf_counter() - start
    latencies: list[float] = []
    for number, (buyer, as_of) in enumerate(asks(7, ledgers[0].buyers(), 50 * len(ledgers))):
        ledger = ledgers[number % len(ledgers)]
        begin = time.perf_counter()
        exposure_query(ledger, {"buyer": buyer, "as_of": as_of})
        latencies.append(time.perf_counter() - begin)
    with psycopg.connect(server, autocommit=True) as conn:
        connections = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()").fetchone()
    for ledger in ledgers:
        ledger.close()
    return {
        "schemas": len(schemas), "events_each": events + 1, "import_all_s": round(built, 1),
        "first_book_each_ms": round(first / len(schemas) * 1e3), "buyer_p50_ms": round(statistics.median(latencies) * 1e3, 2),
        "buyer_p99_ms": round(percentile(latencies, 0.99) * 1e3, 2),
        "server_connections_while_open": connections[0] if connections else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="the stored read models measured")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--asks", type=int, default=400, help="one-buyer exposures per process in the scale-out run")
    parser.add_argument("--policies", type=int, default=20)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--asker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first:
        start = time.perf_counter()
        with Ledger(args.first) as ledger:
            exposure_query(ledger, {"as_of": YEAR_END})
        print(time.perf_counter() - start)
        return
    if args.asker:
        with Ledger(args.asker[0]) as ledger:
            start = time.perf_counter()
            latencies, digest = buyer_latencies(ledger, asks(5, ledger.buyers(), int(args.asker[1])))
            print(json.dumps({"latencies": latencies, "digest": digest, "elapsed": time.perf_counter() - start}))
        return
    policy, rows = samplebook.generate(seed=11, events=args.events)
    schema = "bench_" + uuid.uuid4().hex[:12]
    policies = ["bench_" + uuid.uuid4().hex[:12] for _ in range(args.policies)]
    results: dict[str, Any] = {
        "machine": machine(), "load_average_before": os.getloadavg(), "events": len(rows) + 1,
        "when": datetime.datetime.now(datetime.UTC).isoformat(), "backends": {},
    }
    try:
        with tempfile.TemporaryDirectory() as workdir:
            postgres = f"{args.server}?schema={schema}"
            for name, location in (("sqlite", str(Path(workdir) / "bench.db")), ("postgresql", postgres)):
                print(f"measuring {name} ...", file=sys.stderr)
                results["backends"][name] = measure(location, policy, rows)
            print("scale-out on PostgreSQL ...", file=sys.stderr)
            results["scale_out"] = [scale_out(postgres, n, args.asks) for n in (1, 2, 4)]
            print("many policies ...", file=sys.stderr)
            results["many_policies"] = many_policies(args.server, policies, 5000)
    finally:
        with psycopg.connect(args.server, autocommit=True) as conn:
            for name in [schema, *policies]:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    results["load_average_after"] = os.getloadavg()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""`creditledger serve --workers N` for N = 1, 2, 4 on one PostgreSQL ledger (docs/scaling.md).

    python bench/serve_workers.py [--events 100000] [--schema NAME] [--keep] [--requests 1200]

Builds the seeded sample book (seed 11) in a fresh schema of the local server
(127.0.0.1:5432, database `test`), one import, and its read model; or reuses the
schema given by --schema when it already holds a ledger. For each worker count it
starts `creditledger serve --read-only --workers N` on a free loopback port, fetches
a fixed set of answers (the book's exposure, and one buyer's at several dates, each
asked several times so that every worker answers some) and compares their bodies with
the other worker counts'; then sends one buyer's exposure at a random date from 8
concurrent clients, a fixed number of requests within a fixed time (bench/serve_load.py's
client, imported), and gives requests a second and p50/p99. Prints JSON; the schema is
dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from serve_load import CLIENTS, HOST, _free_port, _get, _load, _ms, _stop, _wait  # the load test's client

SERVER = "postgresql://postgres@127.0.0.1:5432/test"
WORKERS = (1, 2, 4)
REQUESTS = 1_200  # one buyer's exposures per worker count (bounded in time by serve_load.TIME_LIMIT)
SAME_ANSWER_DATES = ("2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31")


def build(location: str, events: int) -> int:
    from ledger.service import Ledger
    from ledger.tools import samplebook
    from ledger.vocabulary.terms import parse_policy

    with Ledger(location) as ledger:
        if ledger.count() == 0:
            policy, rows = samplebook.generate(seed=11, events=events)
            started = time.perf_counter()
            ledger.load_policy(parse_policy(policy))
            ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
            print(f"imported {ledger.count()} events in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        started = time.perf_counter()
        ledger.exposure_model.catch_up()
        print(f"read model caught up in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return ledger.count()


def answers(connection: http.client.HTTPConnection, buyers: list[str]) -> str:
    """A digest of the fixed answers' bodies, each asked 4 times (several workers answer)."""
    digest = hashlib.sha256()
    paths = ["/api/exposure?as_of=2025-12-31"] + [f"/api/exposure?buyer={buyer}&as_of={day}"
                                                   for buyer in buyers for day in SAME_ANSWER_DATES]
    for path in paths:
        bodies = {json.dumps(_get(connection, path), sort_keys=True) for _ in range(4)}
        assert len(bodies) == 1, f"{path}: different answers within one run"
        digest.update(bodies.pop().encode())
    return digest.hexdigest()[:16]


def measure(location: str, workers: int, requests: int = REQUESTS) -> dict[str, Any]:
    port = _free_port()
    command = [str(Path(sys.executable).with_name("creditledger")), "serve", "--db", location,
               "--host", HOST, "--port", str(port), "--read-only", "--workers", str(workers)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = _wait(server, port)
        buyers = [row["buyer"] for row in _get(connection, "/api/exposure?as_of=2025-12-31")["buyers"]]
        same = answers(connection, buyers[:: max(1, len(buyers) // 5)])
        connection.close()

        def buyer_exposure(rng: random.Random) -> str:
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))
            return f"/api/exposure?buyer={rng.choice(buyers)}&as_of={as_of}"

        _load(port, 4 * CLIENTS, buyer_exposure)  # every worker's connections opened before timing
        latencies, wall = _load(port, requests, buyer_exposure)
        return {"workers": workers, "answers_digest": same, "requests": len(latencies),
                "per_s": round(len(latencies) / wall), "p50_ms": _ms(latencies, 0.5),
                "p99_ms": _ms(latencies, 0.99), "load_average": round(os.getloadavg()[0], 1)}
    finally:
        _stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description="serve workers on one PostgreSQL ledger")
    parser.add_argument("--events", type=int, default=100_000, help="Events of the sample book built.")
    parser.add_argument("--schema", help="A schema to build in or reuse (default: a fresh one, dropped after).")
    parser.add_argument("--keep", action="store_true", help="Keep the schema afterwards.")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="One buyer's exposures per worker count.")
    arguments = parser.parse_args()
    schema = arguments.schema or "bench_serve_" + uuid.uuid4().hex[:12]
    location = f"{SERVER}?schema={schema}"
    try:
        events = build(location, arguments.events)
        figures = [measure(location, workers, arguments.requests) for workers in WORKERS]
        print(json.dumps({"events": events, "clients": CLIENTS, "same_answers":
                          len({f["answers_digest"] for f in figures}) == 1, "runs": figures}, indent=1))
    finally:
        if not arguments.keep and not arguments.schema:
            import psycopg

            with psycopg.connect(SERVER, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()

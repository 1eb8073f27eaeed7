"""The benchmark: `make bench` (100,000 events on SQLite and PostgreSQL side by side;
`--full`: 1,000,000).

It generates the seeded sample book once, then on each backend (a SQLite file, a fresh
schema of the local PostgreSQL; a backend that cannot be reached is left out) measures in
one process: the bulk import; a full replay (every event decoded, then the exposure read
model rebuilt from nothing, and the book read model); interactive appends and the read models'
catch-up after them; one buyer's exposure at random `as_of` and `known_at`; the book's exposure
known now and at an earlier time; the claims register (`claims_query`), a claim with its
explanation and the premium account. Then, as whole
commands in fresh processes: the first book query, `creditledger --help`, one buyer's
exposure, `claim --explain`, `premium`, and an import of the book as a JSON Lines file
(its rate and peak memory). On SQLite, the peers of bench/peers.py on the same facts:
(a) eventsourcing's plain aggregates rebuilt by its repository, (b) plain SQL for the
book's outstanding, as ratios. It prints one table, a column per backend, and writes the
same figures, with the machine's CPU, its load and the commit, to bench/results.json.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peers  # bench/peers.py, beside this file
import serve_load  # bench/serve_load.py: the load test of creditledger serve

from ledger.queries.claims import claim_query, claims_query
from ledger.queries.exposure import exposure_query
from ledger.queries.premium import premium_query
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy

RESULTS = Path(__file__).with_name("results.json")
SERVER = os.environ.get("CREDITLEDGER_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/test")
# The installed command, or, with PYTHONPATH naming another checkout to measure, that checkout's.
CREDITLEDGER = [sys.executable, "-c", "from ledger.cli import main; main()"] if os.environ.get("PYTHONPATH") else [
    str(Path(sys.executable).parent / "creditledger")]
COMMAND_RUNS = 5  # runs of each whole command; the median is reported
YEAR_END = datetime.date(2025, 12, 31)

# The targets of issues 14 and 15, printed beside the figures: (figure, at least or at most, bound).
TARGETS: dict[str, tuple[str, float]] = {
    "import_events_per_s": (">=", 100_000),
    "import_command_peak_mib": ("<=", 1024),
    "replay_events_per_s": (">=", 400_000),
    "read_model_rebuild_events_per_s": (">=", 100_000),
    "read_model_catch_up_ms": ("<=", 500),
    "append_p50_ms": ("<=", 10),
    "append_p99_ms": ("<=", 10),
    "buyer_exposure_p99_ms": ("<=", 25),
    "first_book_query_ms": ("<=", 1000),
    "claim_explain_ms": ("<=", 1000),
    "claim_explain_last_loss_ms": ("<=", 1000),
    "premium_account_ms": ("<=", 500),
    "claims_register_ms": ("<=", 1000),
    "command_help_ms": ("<=", 250),
    "command_buyer_exposure_ms": ("<=", 250),
    "command_claim_explain_ms": ("<=", 1000),
    "command_premium_ms": ("<=", 1000),
}


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def command(*args: str) -> tuple[float, int]:
    """Run `creditledger ARGS` in a fresh process: (wall seconds, peak resident KiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(CREDITLEDGER + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"creditledger {' '.join(args)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss


# A child's peak memory as the kernel counts it includes what it was before it executed the
# command: a fork of this process, which holds the generated book (1.2 GB at 1,000,000 events).
# So the peak is read by a small process between the two, from the one child it waits for.
_PEAK_OF_CHILD = ("import resource, subprocess, sys\n"
                  "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
                  "sys.exit(code)")


def command_peak(*args: str) -> tuple[float, int]:
    """Run `creditledger ARGS` in a fresh process: (wall seconds, its own peak resident KiB)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *CREDITLEDGER, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"creditledger {' '.join(args)} failed: {done.stderr}")
    return elapsed, int(done.stdout.split()[-1])


def command_ms(*args: str) -> float:
    """The median wall time of a whole command, in ms."""
    return round(statistics.median(command(*args)[0] for _ in range(COMMAND_RUNS)) * 1e3)


FIRST_QUERY = """
import sys, time
start = time.perf_counter()
from ledger.queries.exposure import exposure_query
from ledger.service import Ledger
import datetime
with Ledger(sys.argv[1]) as ledger:
    exposure_query(ledger, {"as_of": datetime.date(2025, 12, 31)})
print(time.perf_counter() - start)
"""


def first_query_ms(location: str) -> float:
    """The book's exposure as the first thing a fresh process does (imports, open, read models), in ms."""
    done = subprocess.run([sys.executable, "-c", FIRST_QUERY, location], capture_output=True, text=True, check=True)
    return round(float(done.stdout) * 1e3)


def measure(location: str, policy: dict[str, Any], rows: list[dict[str, Any]], book_file: Path,
            spare: str, workdir: Path, with_peers: bool) -> dict[str, Any]:
    """Every figure for one backend: `location` is the ledger measured, `spare` an empty one for the
    whole-command import."""
    figures: dict[str, Any] = {}
    with Ledger(location) as ledger:
        ledger.load_policy(parse_policy(policy))
        _, elapsed = timed(lambda: ledger.record(ledger.parse(list(enumerate(rows, 1)), "book")))
        figures["import_events_per_s"] = round(len(rows) / elapsed)
        imported = datetime.datetime.now(datetime.UTC)  # known_at is drawn from here on: every buyer known
        buyers = ledger.store.index.buyers()
        figures["buyers"] = len(buyers)

        # Full replay: every event decoded from the store (timed, then again under tracemalloc for
        # its peak: tracing slows allocation several times), then every projection the read model
        # keeps (each buyer's exposure timeline) rebuilt from nothing, then the book read model.
        replayed, elapsed = timed(lambda: sum(1 for _ in ledger.events()))
        figures["replay_events_per_s"] = round(replayed / elapsed)
        tracemalloc.start()
        sum(1 for _ in ledger.events())
        figures["replay_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        _, elapsed = timed(ledger.exposure_model.catch_up)
        figures["read_model_rebuild_s"] = round(elapsed, 1)
        figures["read_model_rebuild_events_per_s"] = round(replayed / elapsed)
        _, elapsed = timed(ledger.book_model.catch_up)  # the premium, turnover and claims read model
        figures["book_model_rebuild_s"] = round(elapsed, 1)
        figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

        rng = random.Random(5)
        latencies = []
        touched = set()
        for number in range(200):
            buyer = rng.choice(buyers)
            touched.add(buyer)
            latencies.append(timed(lambda: ledger.append({
                "type": "limit_requested", "effective": "2025-12-31", "buyer": buyer, "amount": "1000",  # noqa: B023
                "key": f"BENCH-{number}"}))[1])  # noqa: B023
        figures["append_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["append_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        _, elapsed = timed(ledger.exposure_model.catch_up)
        figures["read_model_catch_up_ms"] = round(elapsed * 1e3)
        figures["read_model_catch_up_buyers"] = len(touched)
        _, elapsed = timed(ledger.book_model.catch_up)
        figures["book_model_catch_up_ms"] = round(elapsed * 1e3)

        first, last = imported, datetime.datetime.now(datetime.UTC)
        latencies = []
        for _ in range(200):
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))
            known_at = first + (last - first) * rng.random()
            arguments = {"buyer": rng.choice(buyers), "as_of": as_of, "known_at": known_at}
            latencies.append(timed(lambda: exposure_query(ledger, arguments))[1])  # noqa: B023
        figures["buyer_exposure_p50_ms"] = round(statistics.median(latencies) * 1e3, 2)
        figures["buyer_exposure_p99_ms"] = round(percentile(latencies, 0.99) * 1e3, 2)
        for label, known_at in (("book_exposure_now_ms", None), ("book_exposure_earlier_ms", first + (last - first) / 2)):
            _, elapsed = timed(lambda: exposure_query(ledger, {"as_of": YEAR_END, "known_at": known_at}))  # noqa: B023
            figures[label] = round(elapsed * 1e3)
        register, elapsed = timed(lambda: claims_query(ledger, {"as_of": YEAR_END}))
        figures["claims_register_ms"] = round(elapsed * 1e3)
        claimant = next((c.buyer for c in register.claims), buyers[0])
        _, elapsed = timed(lambda: claim_query(ledger, {"buyer": claimant, "as_of": "2025-12-31", "explain": True}))
        figures["claim_explain_ms"] = round(elapsed * 1e3)
        # The year's last loss too: its claim folds every buyer whose loss comes first (the worst case).
        latest = register.claims[-1].buyer if register.claims else buyers[0]
        _, elapsed = timed(lambda: claim_query(ledger, {"buyer": latest, "as_of": "2025-12-31", "explain": True}))
        figures["claim_explain_last_loss_ms"] = round(elapsed * 1e3)
        _, elapsed = timed(lambda: premium_query(ledger, {"as_of": "2026-01-31"}))
        figures["premium_account_ms"] = round(elapsed * 1e3)

    # Whole commands, each in a fresh process: what a user waits for. A command that fails is
    # reported as such (with its one line on stderr) and the run goes on.
    def whole(label: str, measured: Callable[[], dict[str, Any]]) -> None:
        try:
            figures.update(measured())
        except (RuntimeError, subprocess.CalledProcessError) as problem:
            figures[label] = "failed"
            print(f"{label}: {problem}", file=sys.stderr)

    def imported_as_command() -> dict[str, Any]:
        command("init", "--db", spare)
        command("policy", "load", str(book_file.with_suffix(".policy.toml")), "--db", spare)
        elapsed, peak_kib = command_peak("import", str(book_file), "--db", spare)
        return {"import_command_events_per_s": round(len(rows) / elapsed), "import_command_peak_mib": round(peak_kib / 1024)}

    whole("first_book_query_ms", lambda: {"first_book_query_ms": first_query_ms(location)})
    whole("command_help_ms", lambda: {"command_help_ms": command_ms("--help")})
    whole("command_buyer_exposure_ms", lambda: {"command_buyer_exposure_ms": command_ms(
        "exposure", "--db", location, "--buyer", buyers[0], "--as-of", "2025-12-31")})
    whole("command_claim_explain_ms", lambda: {"command_claim_explain_ms": command_ms(
        "claim", "--db", location, "--as-of", "2025-12-31", "--explain", claimant)})
    whole("command_premium_ms", lambda: {"command_premium_ms": command_ms(
        "premium", "--db", location, "--as-of", "2026-01-31")})
    whole("import_command_events_per_s", imported_as_command)
    # bench/serve_load.py: the HTTP service under load (8 clients on loopback).
    figures.update(serve_load.measure(location, len(rows)))

    if with_peers:  # the peers, on the same facts (SQLite only: they are SQLite programs)
        (app, ids), elapsed = timed(lambda: peers.build_peer_a(rows, workdir / "peer-a.db"))
        figures["peer_a_build_s"] = round(elapsed, 1)
        peer_events, elapsed = peers.replay_peer_a(app, ids)
        figures["peer_a_replay_events_per_s"] = round(peer_events / elapsed)
        figures["replay_vs_peer_a"] = round(figures["replay_events_per_s"] / figures["peer_a_replay_events_per_s"], 1)
        figures["rebuild_vs_peer_a"] = round(
            figures["read_model_rebuild_events_per_s"] / figures["peer_a_replay_events_per_s"], 2)
        database = peers.build_peer_b(rows, workdir / "peer-b.db")
        _, elapsed = peers.outstanding_peer_b(database, YEAR_END)
        figures["peer_b_outstanding_ms"] = round(elapsed * 1e3, 1)
        figures["book_now_vs_peer_b"] = round(figures["book_exposure_now_ms"] / max(elapsed * 1e3, 0.1), 1)
        database.close()
    return figures


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(SERVER, connect_timeout=3):
            return True
    except Exception:  # any failure to connect: the backend is left out of the run
        return False


def backends(workdir: Path) -> Iterator[tuple[str, str, str, Callable[[], None]]]:
    """(name, ledger location, spare location, clean-up) for each backend reachable here."""
    yield "sqlite", str(workdir / "bench.db"), str(workdir / "spare.db"), lambda: None
    if not postgres_reachable():
        print(f"PostgreSQL at {SERVER} cannot be reached; measuring SQLite alone", file=sys.stderr)
        return
    schemas = ["bench_" + uuid.uuid4().hex[:12] for _ in range(2)]

    def drop() -> None:
        import psycopg

        with psycopg.connect(SERVER, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    yield "postgresql", f"{SERVER}?schema={schemas[0]}", f"{SERVER}?schema={schemas[1]}", drop


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


def cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description="creditledger benchmark")
    parser.add_argument("--full", action="store_true", help="the 1,000,000-event book (long)")
    parser.add_argument("--events", type=int, help="the size of the book instead (default 100,000)")
    parser.add_argument("--sqlite-only", action="store_true", help="leave PostgreSQL out")
    args = parser.parse_args()
    size = args.events or (1_000_000 if args.full else 100_000)
    policy, rows = samplebook.generate(seed=11, events=size)
    # The generated rows stay alive for the peers: frozen, the collector never walks them, so
    # the figures are those of a process holding just the ledger (as the CLI does).
    gc.collect()
    gc.freeze()
    results: dict[str, Any] = {
        "machine": machine(), "when": datetime.datetime.now(datetime.UTC).isoformat(),
        "load_average": os.getloadavg(), "events": len(rows) + 1, "backends": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        book_file = Path(workdir) / "book.jsonl"
        command("sample", "generate", str(book_file), "--seed", "11", "--events", str(size))
        for name, location, spare, clean_up in backends(Path(workdir)):
            if args.sqlite_only and name != "sqlite":
                continue
            print(f"measuring {len(rows) + 1:,} events on {name} ...", file=sys.stderr)
            try:
                results["backends"][name] = measure(location, policy, rows, book_file, spare, Path(workdir),
                                                    with_peers=name == "sqlite")
            except Exception as problem:  # one backend failing (a lost connection, say) is a figure too
                results["backends"][name] = {"failed": f"{type(problem).__name__}: {problem}"[:200]}
                print(f"{name} failed: {problem}", file=sys.stderr)
            finally:
                clean_up()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    columns = list(results["backends"])
    names = sorted({name for figures in results["backends"].values() for name in figures})
    print(f"{'figure':34}" + "".join(f"{name:>14}" for name in columns) + f"{'target':>14}")
    for name in names:
        cells = "".join(f"{cell(results['backends'][b].get(name, '')):>14}" for b in columns)
        target = TARGETS.get(name)
        print(f"{name:34}{cells}{(f'{target[0]} {target[1]:,}' if target else ''):>14}")
    print(f"{results['events']:,} events; machine: {results['machine']}; load {results['load_average']}; "
          f"written to {RESULTS}")


if __name__ == "__main__":
    main()

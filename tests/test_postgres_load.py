"""The PostgreSQL load run (docs/reliability.md "PostgreSQL under load"): an import of a sample
book beside 2 appenders and 2 query loops, each a separate OS process, on one fresh schema.

The import (`creditledger import`, one transaction) records the book; each appender makes
keyed writes on a buyer of its own (an invoice, then a payment naming it; every seventh a
payment larger than its invoice, which the rules refuse) until the import has ended and it
has made its minimum; one query loop asks one buyer's exposure, the other the book's, until
the appenders end. Afterwards: no write refused for any reason but a rule, no query failed,
every acknowledged key recorded exactly once and nothing else recorded (counts equal),
`verify` clean, and the read model equal to a fresh fold.

`make test-postgres` runs it once on 3,000 events; `make soak` (CREDITLEDGER_SOAK=1) ten
times on 30,000. The module is also the script of its processes:

    python tests/test_postgres_load.py append LOCATION NAME GO STOP MINIMUM
    python tests/test_postgres_load.py query LOCATION buyer|book GO STOP
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_shared_readmodels import fresh_fold

from ledger.operations.verify import verify
from ledger.queries.exposure import book_exposures, buyer_exposure
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.terms import parse_policy

SOAK = os.environ.get("CREDITLEDGER_SOAK") == "1"
EVENTS, RUNS = (30_000, 10) if SOAK else (3_000, 1)
APPENDERS = ("a0", "a1")
OWN = tuple(f"{name}-" for name in APPENDERS)  # the appenders' keys
MINIMUM_WRITES = 40  # each appender's writes at least, however quick the import
MAXIMUM_WRITES = 4_000  # and at most: a bounded run even if the import hangs
OVERPAID = 7  # every seventh write pays more than its invoice: refused by the rules
AS_OF = datetime.date(2025, 12, 31)
HERE = Path(__file__)
ROOT = HERE.parent.parent


def buyer_of(name: str) -> str:
    return f"SOAK-{name}"


def writes(name: str, number: int) -> tuple[str, list[dict[str, str]]]:
    """The appender's write `number`: an invoice of 10.00 on its own buyer, or a payment naming
    the invoice before it (of 10.00, or of 500.00 every OVERPAID-th write: more than is open)."""
    buyer, key = buyer_of(name), f"{name}-{number}"
    if number % 2 == 0:
        return key, [{"type": "invoice_issued", "effective": "2025-06-01", "buyer": buyer, "invoice": key,
                      "amount": "10.00", "due": "2025-08-01", "key": key}]
    amount = "500.00" if (number // 2) % OVERPAID == OVERPAID - 1 else "10.00"
    return key, [{"type": "payment_received", "effective": "2025-06-15", "buyer": buyer,
                  "invoice": f"{name}-{number - 1}", "amount": amount, "key": key}]


def refused_by_rule(key: str, message: str) -> bool:
    number = int(key.rsplit("-", 1)[1])
    return number % 2 == 1 and (number // 2) % OVERPAID == OVERPAID - 1 and "open on invoice" in message


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 120
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def append_loop(location: str, name: str, go: Path, stop: Path, minimum: int) -> None:
    """An appender: keyed writes on its own buyer until STOP exists and MINIMUM were made."""
    recorded: list[str] = []
    refused: list[dict[str, str]] = []
    with Ledger(location) as ledger:
        ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": buyer_of(name),
                       "name": f"Soak buyer {name}", "country": "GB", "key": f"{name}-reg"})
        recorded.append(f"{name}-reg")
        go.with_name(f"{go.name}.{name}").touch()
        _wait_for(go)
        number = 0
        while number < MAXIMUM_WRITES and (number < minimum or not stop.exists()):
            key, events = writes(name, number)
            number += 1
            try:
                ledger.record(ledger.parse(list(enumerate(events, 1)), key))
            except LedgerError as problem:
                refused.append({"key": key, "message": str(problem)})
                continue
            recorded.append(key)
    json.dump({"recorded": recorded, "refused": refused}, sys.stdout)


def query_loop(location: str, kind: str, go: Path, stop: Path) -> None:
    """A query loop: one buyer's exposure, or the book's, until STOP exists."""
    answered, failed = 0, []
    with Ledger(location) as ledger:
        go.with_name(f"{go.name}.q-{kind}").touch()
        _wait_for(go)
        while not stop.exists():
            try:
                if kind == "buyer":
                    buyer_exposure(ledger, buyer_of(APPENDERS[0]), AS_OF, None)
                else:
                    book_exposures(ledger, AS_OF, None)
                answered += 1
            except Exception as problem:  # every failure is counted and reported, none expected
                failed.append(f"{type(problem).__name__}: {problem}")
    json.dump({"answered": answered, "failed": failed}, sys.stdout)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _report(process: subprocess.Popen[str], timeout: float) -> Any:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.postgres
@pytest.mark.parametrize("run", range(RUNS))
def test_an_import_beside_appenders_and_query_loops_refuses_loses_and_duplicates_nothing(
    postgres_location: str, tmp_path: Path, run: int
) -> None:
    policy, rows = samplebook.generate(seed=20 + run, events=EVENTS)
    book = tmp_path / "book.jsonl"
    samplebook.write_jsonl(book, rows)
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(parse_policy(policy))
    go, stop, imported = tmp_path / "go", tmp_path / "stop", tmp_path / "imported"

    appenders = [_start("append", postgres_location, name, str(go), str(stop), str(MINIMUM_WRITES))
                 for name in APPENDERS]
    queries = [_start("query", postgres_location, kind, str(go), str(imported)) for kind in ("buyer", "book")]
    for name in [*APPENDERS, "q-buyer", "q-book"]:
        _wait_for(go.with_name(f"go.{name}"))
        assert go.with_name(f"go.{name}").exists(), name
    go.touch()
    try:
        started = time.monotonic()
        importer = subprocess.run(
            [str(Path(sys.executable).with_name("creditledger")), "import", str(book), "--db", postgres_location,
             "--json"], capture_output=True, text=True, timeout=1800, cwd=ROOT,
        )
        import_s = time.monotonic() - started
        stop.touch()
        appended = [_report(process, 900) for process in appenders]
        imported.touch()
        asked = [_report(process, 900) for process in queries]
    finally:  # whatever failed, no process of the run is left behind
        stop.touch()
        imported.touch()
        for process in [*appenders, *queries]:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert importer.returncode == 0, importer.stderr[-3000:]

    told_recorded = [key for report in appended for key in report["recorded"]]
    told_refused = {r["key"]: r["message"] for report in appended for r in report["refused"]}
    by_rule = {key for key, message in told_refused.items() if refused_by_rule(key, message)}
    # No write refused for a connection, server or contention reason: only the rules refuse.
    assert set(told_refused) == by_rule, {k: m for k, m in told_refused.items() if k not in by_rule}
    assert by_rule, "every seventh payment is more than is open: some must be refused"
    # No query failed.
    assert [failure for report in asked for failure in report["failed"]] == []

    with Ledger(postgres_location) as ledger:
        stored = [event.key for event in ledger.events()]
        total = ledger.count()
        appender_keys = [key for key in stored if key and key.startswith(OWN)]
        book_keys = [key for key in stored if key and not key.startswith(OWN)]
        # Nothing lost, nothing duplicated: each acknowledged key once, nothing unacknowledged.
        assert len(stored) == len(set(stored)) == total
        assert sorted(appender_keys) == sorted(told_recorded)
        assert sorted(book_keys) == sorted(row["key"] for row in rows)
        assert total == 1 + len(rows) + len(told_recorded)  # the policy, the book, the appenders
        report = verify(ledger)
        assert report.clean, [finding.line() for finding in report.findings]
        # The read model (verify caught it up) equals a fresh fold.
        assert ledger.exposure_model.position() == ledger.log_position()[0]
        assert ledger.exposure_model.stored() == fresh_fold(ledger)

    print(f"postgres load run {run + 1}/{RUNS}: {len(rows)} events imported in {import_s:.1f} s beside "
          f"{len(APPENDERS)} appenders ({len(told_recorded)} writes recorded, {len(by_rule)} refused by a rule, "
          f"{len(told_refused) - len(by_rule)} for any other reason) and 2 query loops "
          f"({asked[0]['answered']} buyer and {asked[1]['answered']} book queries, 0 failed); "
          f"{total} events, each key once, verify clean, read model = fresh fold")


def test_a_write_waits_while_another_holds_its_turn_and_then_is_recorded(postgres_location: str, policy_terms):
    """The turn a write takes after losing a race (ledger/store/postgres.py `write_turn`): other
    processes' writes wait for it to end, then go through; the holder's own write does not wait."""
    with Ledger(postgres_location) as holder, Ledger(postgres_location) as other:
        holder.load_policy(policy_terms)
        register = {"type": "buyer_registered", "effective": "2025-01-02", "name": "B", "country": "GB"}
        done = threading.Event()
        with holder.store.write_turn():
            waiting = threading.Thread(target=lambda: (other.append({**register, "buyer": "B2", "key": "b2"}),
                                                       done.set()))
            waiting.start()
            holder.append({**register, "buyer": "B1", "key": "b1"})  # its own write goes through
            assert not done.wait(1.0), "a write went through while another held the turn"
            assert holder.count() == 2
        waiting.join(timeout=60)
        assert done.is_set()
        assert [event.key for event in holder.events()][1:] == ["b1", "b2"]


def test_the_read_model_tables_made_by_another_process_after_this_one_looked_are_kept(postgres_location: str):
    """Seen in the load run: two query processes on a new ledger both found no tracking table,
    and the second to create it was refused ("Failed to record tracking for __migration__ 1")."""
    from eventsourcing.persistence import ProgrammingError

    with Ledger(postgres_location) as first, Ledger(postgres_location) as second:
        late = first.exposure_model.tables.recorder
        looked = late.max_tracking_id

        def before_the_other(name: str) -> int | None:  # it looks, finds nothing; the other then makes them
            second.exposure_model.catch_up()
            raise ProgrammingError("relation does not exist")

        late.max_tracking_id = before_the_other
        try:
            late.create_table()
        finally:
            late.max_tracking_id = looked
        assert late.tracking_migration_current == 1
        assert first.exposure_model.position() == second.exposure_model.position()


if __name__ == "__main__":
    command, location = sys.argv[1], sys.argv[2]
    if command == "append":
        append_loop(location, sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]), int(sys.argv[6]))
    else:
        query_loop(location, sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))

"""Crash safety: a writer killed with SIGKILL loses nothing it reported and leaves nothing half done.

A child process (tests/crash_worker.py) imports a sample book in one
transaction, or makes a stream of single appends, and is killed at a random
moment. The ledger reopened afterwards holds exactly the committed events
(the import: all or none; the appends: every key the child reported, plus at
most the one it was about to report), its hash chain verifies, and the
figures equal those of a full replay of its events into a fresh store.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest
from crash_worker import append_rows

from ledger.adapters.policyfile import load_policy_file
from ledger.operations.verify import verify
from ledger.queries.exposure import exposure_query
from ledger.queries.premium import premium_query
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.events import to_public

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "crash_worker.py"
ROUNDS = int(os.environ.get("CREDITLEDGER_CRASH_ROUNDS", "3"))  # more for a soak run
AS_OF = "2025-12-31"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def read_until(stream: IO[str], prefix: str, child: subprocess.Popen[str]) -> list[str]:
    """Lines of the child up to and including the first starting with `prefix`."""
    lines = []
    while True:
        line = stream.readline()
        if not line:
            pytest.fail(f"the writer ended before {prefix!r}: {child.communicate()[1]}")
        lines.append(line.strip())
        if line.startswith(prefix):
            return lines


def kill(child: subprocess.Popen[str]) -> list[str]:
    """SIGKILL the child (if still running) and return the rest of what it printed."""
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    return rest.split()


def figures(ledger: Ledger) -> dict[str, Any]:
    return {"exposure": exposure_query(ledger, {"as_of": AS_OF}), "premium": premium_query(ledger, {"as_of": AS_OF})}


def check_reopened(location: str) -> list[str | None]:
    """The chain verifies and the figures equal a replay into a fresh store; returns each event's key."""
    with Ledger(location) as ledger:
        report = verify(ledger, checks=["chain"])
        assert report.clean, [f.line() for f in report.findings]
        assert report.events == ledger.count()
        events = list(ledger.events())
        currency = ledger.terms().currency
        found = figures(ledger)
    with Ledger("memory") as fresh:
        public = [to_public(e, currency) for e in events]
        fresh.record(fresh.parse(list(enumerate(public, 1)), "replay"), keep_recorded=True)
        assert figures(fresh) == found
    return [e.key for e in events]


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A sample book of about 1,500 events as JSON Lines, and a ledger holding only its policy."""
    folder = tmp_path_factory.mktemp("crash")
    policy, events = samplebook.generate(seed=11, buyers=30, events=1500)
    samplebook.write_jsonl(folder / "book.jsonl", events)
    samplebook.write_toml(folder / "policy.toml", policy, [])
    with Ledger(str(folder / "empty.db")) as ledger:
        ledger.load_policy(load_policy_file(folder / "policy.toml"))
    return folder / "book.jsonl", folder / "empty.db"


@pytest.mark.slow
def test_an_import_killed_at_a_random_moment_is_all_or_nothing(book: tuple[Path, Path], tmp_path: Path) -> None:
    events, empty = book
    size = sum(1 for line in events.read_text().splitlines() if line.strip())
    chance = random.Random()
    # One import left to finish: how long recording takes here, now (no figure is asserted on it).
    calibration = tmp_path / "calibration.db"
    shutil.copy(empty, calibration)
    child = start("import", str(calibration), str(events))
    assert child.stdout is not None
    read_until(child.stdout, "recording", child)
    begun = time.monotonic()
    read_until(child.stdout, "committed", child)
    took = time.monotonic() - begun
    child.communicate(timeout=60)
    assert len(check_reopened(str(calibration))) == size + 1
    outcomes = []
    for round_ in range(ROUNDS):
        location = tmp_path / f"import{round_}.db"
        shutil.copy(empty, location)
        child = start("import", str(location), str(events))
        assert child.stdout is not None
        read_until(child.stdout, "recording", child)
        # Kill somewhere in the checks, in the write transaction, or just after its commit.
        delay = chance.uniform(0, 2 * took)
        time.sleep(delay)
        printed = kill(child)
        imported = len(check_reopened(str(location))) - 1  # less the policy
        assert imported in (0, size), f"round {round_}, killed after {delay:.3f}s: {imported} of {size} events"
        if "committed" in printed:
            assert imported == size
        outcomes.append(f"{'all' if imported else 'none'} after {delay:.3f}s of {took:.3f}s")
    print(f"import kills: {outcomes}")


@pytest.mark.slow
def test_appends_killed_at_a_random_moment_keep_every_reported_one(book: tuple[Path, Path], tmp_path: Path) -> None:
    _, empty = book
    planned = [row["key"] for row in append_rows(4000)]  # ~0.6 s per 400 here: never done within the 1 s before the kill
    chance = random.Random()
    for round_ in range(ROUNDS):
        location = tmp_path / f"appends{round_}.db"
        shutil.copy(empty, location)
        with Ledger(str(location)) as ledger:
            ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme",
                           "country": "GB"})
            ledger.append({"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000"})
        child = start("append", str(location), str(len(planned)))
        assert child.stdout is not None
        read_until(child.stdout, "recording", child)
        reported = read_until(child.stdout, "k5", child)
        delay = chance.uniform(0, 1.0)
        time.sleep(delay)
        reported += kill(child)
        assert child.returncode == -signal.SIGKILL, "the writer finished before it was killed; plan more appends"
        keys = [key for key in check_reopened(str(location)) if key]  # the set-up events have none
        where = f"round {round_}, killed after {delay:.3f}s"
        # Every reported append is there, in order; beyond them at most the one that
        # committed before its key was printed; nothing else.
        assert keys[:len(reported)] == reported == planned[:len(reported)], where
        assert keys in (reported, planned[:len(reported) + 1]), where

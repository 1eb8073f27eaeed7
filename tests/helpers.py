"""Helpers shared by the test modules: a controllable clock, the refusal check,
the PostgreSQL probe, and the small book most refusal tests start from."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError

DATA = Path(__file__).parent / "data"
POLICY_FILE = DATA / "policy.toml"
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_UNREACHABLE = "no PostgreSQL server at 127.0.0.1:5432"
UTC = datetime.UTC
START = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A clock that stands still until a test moves it: deterministic `recorded` stamps."""

    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> datetime.datetime:
        """Move the clock forward (timedelta keywords) and return the new time."""
        self.now += datetime.timedelta(**delta)
        return self.now

    def set(self, moment: datetime.datetime) -> None:
        self.now = moment


@functools.cache
def postgres_available() -> bool:
    """True when a quick connect to the test server succeeds (asked once per session)."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_SERVER, connect_timeout=2):
            return True
    except Exception:
        return False


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_SERVER, connect_timeout=5, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


BOOK_EVENTS: list[dict[str, Any]] = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000", "basis": "underwriter"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "1000.00",
     "due": "2025-03-10"},
]


def refusal(ledger: Ledger, raw: Mapping[str, Any] | list[Mapping[str, Any]], field: str | None) -> LedgerError:
    """Append `raw` (one event or a batch), expect a refusal naming `field`, and
    check that nothing at all was recorded. Returns the error for more checks."""
    before = [(e.id, e.recorded) for e in ledger.events()]
    batch = raw if isinstance(raw, list) else [raw]
    with pytest.raises(LedgerError) as caught:
        ledger.record(ledger.parse([(None, r) for r in batch]))
    error = caught.value
    assert error.field == field, f"refusal names {error.field!r}, not {field!r}: {error}"
    if field is not None:
        assert str(error).startswith(f"{field}: ") or f" {field}: " in str(error), str(error)
    assert ledger.count() == len(before)
    assert [(e.id, e.recorded) for e in ledger.events()] == before
    return error


def record_book(table: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    """A fresh in-memory ledger with the policy `table` and the raw `rows` recorded live."""
    from ledger.service import Ledger
    from ledger.vocabulary.terms import parse_policy

    ledger = Ledger("memory")
    ledger.load_policy(parse_policy(table))
    ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
    return ledger


@pytest.fixture(autouse=True)
def no_default_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CLI test may touch a ledger it did not name: no env default, cwd in tmp."""
    monkeypatch.delenv("CREDITLEDGER_DB", raising=False)
    monkeypatch.delenv("CREDITLEDGER_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str, ok: bool = True) -> Any:
    """Invoke the CLI app in process; by default expect success and return the result."""
    from typer.testing import CliRunner

    from ledger.cli import app

    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result

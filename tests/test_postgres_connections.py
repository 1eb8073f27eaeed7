"""The PostgreSQL connections of a ledger: the session settings writes need, a read or a write
asked once more after a dropped connection (recorded exactly once, keyed or not), and
reserved schema names refused in one line."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from helpers import POSTGRES_SERVER
from test_readmodels import DAYS, assert_matches_the_fold, sample_ledger

from ledger.operations.verify import verify
from ledger.queries.exposure import book_exposures
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError

REGISTER = {"type": "buyer_registered", "buyer": "B1", "effective": "2025-01-01", "name": "One Ltd", "country": "GB"}


def dropped_connection() -> OperationalError:
    """What eventsourcing raises when the server closed the connection."""
    try:
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    except psycopg.OperationalError as cause:
        try:
            raise OperationalError(str(cause)) from cause
        except OperationalError as problem:
            return problem


def setting(ledger: Ledger, name: str) -> Any:
    with ledger.store.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        return conn.execute(f"SHOW {name}").fetchone()[name]  # type: ignore[index]


def test_sessions_allow_long_writes_and_bound_statements(postgres_location: str, policy_terms: Any):
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(policy_terms)
        assert setting(ledger, "idle_in_transaction_session_timeout") == "5min"  # not eventsourcing's 5 s
        assert setting(ledger, "statement_timeout") == "10min"


def test_a_write_whose_connection_dropped_after_the_commit_is_recorded_once(
    postgres_location: str, policy_terms: Any, monkeypatch: pytest.MonkeyPatch
):
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(policy_terms)
        recorder = ledger.store.recorder
        real, calls = type(recorder)._insert_once, []

        def commits_then_drops(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            real(self, *args, **kwargs)
            if len(calls) == 1:
                raise dropped_connection()
            return None

        monkeypatch.setattr(type(recorder), "_insert_once", commits_then_drops)
        ledger.append(REGISTER)  # no key: only the event id says it was recorded
        assert len(calls) == 1 and ledger.count() == 2
        assert [e.type for e in ledger.log()] == ["policy_started", "buyer_registered"]


def test_a_write_whose_connection_dropped_before_the_commit_is_written_again(
    postgres_location: str, policy_terms: Any, monkeypatch: pytest.MonkeyPatch
):
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(policy_terms)
        recorder = ledger.store.recorder
        real, calls = type(recorder)._insert_once, []

        def drops_first(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise dropped_connection()
            return real(self, *args, **kwargs)

        monkeypatch.setattr(type(recorder), "_insert_once", drops_first)
        ledger.append({**REGISTER, "key": "b1"})
        assert len(calls) == 2 and ledger.count() == 2


def test_a_read_whose_connection_dropped_is_asked_again(postgres_location: str, monkeypatch: pytest.MonkeyPatch):
    with Ledger(postgres_location) as ledger:
        recorder = ledger.store.recorder
        real, calls = type(recorder)._fetch_once, []

        def drops_first(self: Any, *args: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise dropped_connection()
            return real(self, *args)

        monkeypatch.setattr(type(recorder), "_fetch_once", drops_first)
        assert ledger.count() == 0 and len(calls) == 2


def test_a_ledger_goes_on_after_the_server_ended_its_connections(postgres_location: str, policy_terms: Any):
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(policy_terms)
        datastore = ledger.store.recorder.datastore  # type: ignore[attr-defined]
        with contextlib.ExitStack() as held:  # every connection of the pool, to learn their server processes
            pids = [held.enter_context(datastore.get_connection()).info.backend_pid for _ in range(5)]
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        ledger.append({**REGISTER, "key": "after"})
        assert ledger.count() == 2 and ledger.buyers() == ["B1"]


@pytest.mark.parametrize("schema", ["pg_catalog", "pg_temp", "pg_toast", "pg_mine", "information_schema"])
def test_reserved_schema_names_are_refused_in_one_line(schema: str):
    result = subprocess.run([str(Path(sys.executable).with_name("creditledger")), "summary", "--db",
                             f"{POSTGRES_SERVER}?schema={schema}"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr == f"error: db: schema {schema} is reserved by PostgreSQL (pg_* and information_schema): " \
                            "choose another\n"


@pytest.fixture
def reader(postgres_location: str) -> Iterator[str]:
    """The ledger's location as a PostgreSQL role that may only read its schema."""
    role = "reader_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        yield postgres_location.replace("postgresql://postgres@", f"postgresql://{role}@")
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


def grant_reading(location: str, role_location: str) -> None:
    schema, role = location.split("schema=")[1], role_location.split("://")[1].split("@")[0]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")


@pytest.mark.parametrize("queried", [True, False], ids=["model-stored", "model-stale"])
def test_a_user_who_may_only_read_can_query_and_verify(
    postgres_location: str, reader: str, queried: bool, caplog: pytest.LogCaptureFixture
):
    with sample_ledger(postgres_location) as ledger:
        if queried:
            book_exposures(ledger, DAYS[1], None)
            ledger.book_model.catch_up()  # both read models stored: verify reads them as they are
        expected = [book_exposures(ledger, day, None) for day in DAYS] if queried else None
    grant_reading(postgres_location, reader)
    with caplog.at_level(logging.WARNING, "creditledger"), Ledger(reader) as ledger:
        assert_matches_the_fold(ledger)
        assert verify(ledger).clean
        assert ledger.exposure_model.tables.in_ledger is queried  # stored rows served as they are
        assert ledger.book_model.tables.in_ledger is queried
        if expected is not None:
            assert [book_exposures(ledger, day, None) for day in DAYS] == expected
        with pytest.raises(LedgerError, match="cannot write the ledger"):
            ledger.append({**REGISTER, "buyer": "NEW9"})
    assert len(caplog.records) == (0 if queried else 1)


def test_a_pool_of_one_connection_still_catches_up(postgres_location: str, monkeypatch: pytest.MonkeyPatch):
    """A catch-up holds a connection while its fold reads through another: a pool asked to be
    one connection, with no overflow, gets a second rather than waiting on itself."""
    monkeypatch.setenv("CREDITLEDGER_PG_POOL_SIZE", "1")
    monkeypatch.setenv("CREDITLEDGER_PG_POOL_OVERFLOW", "0")
    with sample_ledger(postgres_location, events=300) as ledger:
        assert_matches_the_fold(ledger)


def test_pool_settings_that_are_not_numbers_are_refused_in_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CREDITLEDGER_PG_POOL_SIZE", "many")
    with pytest.raises(LedgerError, match="must be whole numbers"):
        Ledger(f"{POSTGRES_SERVER}?schema=never_created")

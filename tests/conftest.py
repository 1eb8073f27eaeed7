"""Shared fixtures: the three store backends, the SPEC 4 policy, a controllable clock.

`location` runs a test once per backend (in-memory SQLite, a SQLite file,
PostgreSQL in a schema of its own); `durable_location` only on the two that
outlive the process. The PostgreSQL parameter is skipped, with the reason,
when no server answers at 127.0.0.1:5432, and its schema is dropped after the
test.

`CREDITLEDGER_TEST_STORE=postgres` (`make test-postgres`) runs the whole suite
on PostgreSQL: those fixtures give only PostgreSQL schemas, and every
in-memory ledger a test opens is a fresh schema too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    BOOK_EVENTS,
    POLICY_FILE,
    POSTGRES_SERVER,
    POSTGRES_UNREACHABLE,
    Clock,
    drop_schema,
    postgres_available,
)

from ledger.adapters.policyfile import load_policy_file
from ledger.service import Ledger
from ledger.store import opening
from ledger.vocabulary.terms import PolicyTerms

ON_POSTGRES = os.environ.get("CREDITLEDGER_TEST_STORE") == "postgres"


def _backend(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "memory":
        yield "memory"
    elif kind == "sqlite":
        yield str(tmp_path / "ledger.db")
    else:
        if not postgres_available():
            pytest.skip(POSTGRES_UNREACHABLE)
        schema = "t_" + uuid.uuid4().hex[:16]
        try:
            yield f"{POSTGRES_SERVER}?schema={schema}"
        finally:
            drop_schema(schema)


POSTGRES_PARAM = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(autouse=True)
def memory_on_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Under `make test-postgres`, `Ledger("memory")` opens a fresh PostgreSQL schema."""
    if not ON_POSTGRES:
        yield
        return
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    schemas: list[str] = []
    environment = opening.store_environment

    def on_postgres(location: str) -> dict[str, str]:
        if location not in ("memory", ":memory:"):
            return environment(location)
        schemas.append("t_" + uuid.uuid4().hex[:16])
        return environment(f"{POSTGRES_SERVER}?schema={schemas[-1]}")

    monkeypatch.setattr(opening, "store_environment", on_postgres)
    yield
    for schema in schemas:
        drop_schema(schema)


@pytest.fixture(params=[POSTGRES_PARAM] if ON_POSTGRES else ["memory", "sqlite", POSTGRES_PARAM])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty ledger location on each backend."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture(params=[POSTGRES_PARAM] if ON_POSTGRES else ["sqlite", POSTGRES_PARAM])
def durable_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh ledger location that outlives one process (SQLite file, PostgreSQL)."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture(params=[POSTGRES_PARAM])
def postgres_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL ledger location (for what only PostgreSQL shows)."""
    yield from _backend(request.param, tmp_path)


@pytest.fixture(scope="session")
def policy_terms() -> PolicyTerms:
    """The complete policy of SPEC 4."""
    return load_policy_file(POLICY_FILE)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(location: str, clock: Clock) -> Iterator[Ledger]:
    """An empty ledger on each backend, stamped by `clock`."""
    with Ledger(location, clock=clock) as opened:
        yield opened


@pytest.fixture
def book(clock: Clock, policy_terms: PolicyTerms) -> Iterator[Ledger]:
    """An in-memory ledger with the SPEC 4 policy, buyer B1 (GB) holding an
    underwriter limit of 20000.00, and invoice I1 of 1000.00 issued 2025-01-10,
    due 2025-03-10. The clock moves a minute before each write."""
    with Ledger("memory", clock=clock) as opened:
        opened.load_policy(policy_terms)
        for raw in BOOK_EVENTS:
            clock.advance(minutes=1)
            opened.append(raw)
        clock.advance(minutes=1)
        yield opened

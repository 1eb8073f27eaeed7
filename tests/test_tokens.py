"""Write tokens (`creditledger token`, ledger/store/tokens.py): shown once, stored as a hash,
listed without secrets, revoked for good; on every backend."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import msgspec
import pytest
from helpers import cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.queries.answers import SCHEMAS
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError


def test_a_token_is_printed_once_and_stored_as_its_hash(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    cli("init", "--db", db)
    token = cli("token", "create", "--name", "erp", "--db", db).stdout.strip()
    assert token.startswith("clt_") and len(token) > 40
    with sqlite3.connect(db) as raw:
        stored = raw.execute("SELECT name, hash FROM ledger_tokens").fetchall()
    assert stored == [("erp", hashlib.sha256(token.encode()).hexdigest())]
    listed = cli("token", "list", "--json", "--db", db).stdout
    msgspec.json.decode(listed, type=SCHEMAS["token list"])  # its documented schema (docs/json.md)
    assert token not in listed and stored[0][1] not in listed
    assert [t["name"] for t in json.loads(listed)] == ["erp"] and json.loads(listed)[0]["revoked"] is None
    cli("token", "revoke", "erp", "--db", db)
    assert json.loads(cli("token", "list", "--json", "--db", db).stdout)[0]["revoked"]
    assert "erp" in cli("token", "list", "--db", db).stdout


def test_token_refusals(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    cli("init", "--db", db)
    cli("token", "create", "--name", "erp", "--db", db)
    for args, words in [
        (("create", "--name", "erp"), "already exists"),
        (("create", "--name", "a b"), "is not a token name"),
        (("create", "--name", ""), "is not a token name"),
        (("revoke", "nobody"), "there is no token named"),
    ]:
        refused = cli("token", *args, "--db", db, ok=False).exception
        assert isinstance(refused, LedgerError) and words in str(refused) and refused.field == "name"


def test_tokens_on_every_backend(durable_location: str) -> None:
    with Ledger(durable_location) as ledger:
        tokens = ledger.tokens
        first = tokens.create("erp", ledger.clock())
        second = tokens.create("bi", ledger.clock())
        assert tokens.holder(first) == "erp" and tokens.holder(second) == "bi"
        assert tokens.holder(first + "x") is None and tokens.active() == 2
        tokens.revoke("erp", ledger.clock())
        assert tokens.holder(first) is None and tokens.active() == 1
        tokens.note_write("bi", 3, 7, ledger.clock())
        assert [tokens.writer(p) for p in (2, 3, 7, 8)] == [None, "bi", "bi", None]
    with Ledger(durable_location) as again:  # stored, not kept in memory
        assert [t.name for t in again.tokens.list()] == ["erp", "bi"]


def test_reading_tokens_creates_nothing(durable_location: str) -> None:
    """A ledger that never had a token answers reads (none live, none listed, no holder, no writer)
    without creating the token tables, so a role or a file that may only be read can still serve;
    the first token made creates them."""
    with Ledger(durable_location) as ledger:
        tokens = ledger.tokens
        assert tokens.active() == 0 and tokens.list() == [] and tokens.holder("clt_guess") is None
        assert tokens.writer(1) is None and not tokens._exists()
        tokens.create("erp", ledger.clock())
        assert tokens._exists() and tokens.active() == 1


@pytest.mark.parametrize("name", ["erp-1", "bi_team", "a.b"])
def test_token_names(tmp_path: Path, name: str) -> None:
    with Ledger(str(tmp_path / "l.db")) as ledger:
        assert ledger.tokens.holder(ledger.tokens.create(name, ledger.clock())) == name

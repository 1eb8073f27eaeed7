"""The web service's write tokens and which token wrote which events, in the ledger's own database.

Two tables of their own, created by the first write (a ledger that never serves has neither):
- `ledger_tokens`: a token's name, the sha256 of its secret (never the secret), when it was made
  and when revoked;
- `ledger_writes`: one row per write made with a token: the first and last log position it
  recorded (one write's events are consecutive: it holds the write lock) and the token's name.

The events themselves are never touched: attribution sits beside the log, as the index does.
The same SQL serves SQLite and PostgreSQL (placeholders and schema from the recorder).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import format_recorded

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}ledger_tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL, "
    "created TEXT NOT NULL, revoked TEXT)",
    "CREATE TABLE IF NOT EXISTS {p}ledger_writes (first_position BIGINT PRIMARY KEY, "
    "last_position BIGINT NOT NULL, token TEXT NOT NULL, recorded TEXT NOT NULL)",
)
TOKEN_PREFIX = "clt_"  # so that a leaked token is recognisable in a secret scanner's rules


@dataclass(frozen=True)
class TokenInfo:
    """A token as `token list` shows it: never its secret nor its hash."""

    name: str
    created: str
    revoked: str | None


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class TokenTable:
    """Tokens and writes, over the recorder's own connections."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        schema = getattr(getattr(recorder, "datastore", None), "schema", "")
        self.prefix = f"{schema}." if schema else ""
        self.placeholder = getattr(recorder, "placeholder", "?")
        self._created = False

    def _run(self, sql: str, params: Sequence[Any] = (), *, commit: bool = False) -> list[Any]:
        """A statement on the two tables: a write (`commit`) creates them first where they are
        missing; a read of a ledger that has none finds no rows, and creates nothing (a role
        that may only read, a read-only file, can still serve and list tokens)."""
        if not self._created:
            if commit:
                for statement in _SCHEMA:
                    self._execute(statement, commit=True)
                self._created = True
            elif not self._exists():
                return []
            else:
                self._created = True
        return self._execute(sql, params, commit=commit)

    def _exists(self) -> bool:
        """Whether the tables were made (they are made together)."""
        if self.placeholder == "?":
            return bool(self._execute("SELECT count(*) FROM sqlite_master WHERE name = 'ledger_tokens'")[0][0])
        return self._execute("SELECT to_regclass(?)", [f"{self.prefix}ledger_tokens"])[0][0] is not None

    def _execute(self, sql: str, params: Sequence[Any] = (), *, commit: bool = False) -> list[Any]:
        sql = sql.replace("{p}", self.prefix).replace("?", self.placeholder)
        with self.recorder.datastore.transaction(commit=commit) as cursor:
            cursor.execute(sql, list(params))
            try:
                rows = cursor.fetchall()
            except Exception:  # a statement that returns no rows (psycopg raises; sqlite gives [])
                return []
        # PostgreSQL's cursor gives dicts (eventsourcing's row factory), SQLite's tuples.
        return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows]

    def create(self, name: str, now: datetime.datetime) -> str:
        """A new token named `name`: returns its secret, which is stored only as a hash."""
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise LedgerError(f"{name!r} is not a token name (letters, digits, - _ . ; at most 64)", field="name")
        if self._run("SELECT 1 FROM {p}ledger_tokens WHERE name = ?", [name]):
            raise LedgerError(f"a token named {name!r} already exists (names are never reused)", field="name")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._run("INSERT INTO {p}ledger_tokens (name, hash, created) VALUES (?, ?, ?)",
                  [name, hash_token(secret), format_recorded(now)], commit=True)
        return secret

    def list(self) -> list[TokenInfo]:
        rows = self._run("SELECT name, created, revoked FROM {p}ledger_tokens ORDER BY created, name")
        return [TokenInfo(str(r[0]), str(r[1]), None if r[2] is None else str(r[2])) for r in rows]

    def revoke(self, name: str, now: datetime.datetime) -> None:
        rows = self._run("SELECT revoked FROM {p}ledger_tokens WHERE name = ?", [name])
        if not rows:
            raise LedgerError(f"there is no token named {name!r}", field="name")
        if rows[0][0] is None:
            self._run("UPDATE {p}ledger_tokens SET revoked = ? WHERE name = ? AND revoked IS NULL",
                      [format_recorded(now), name], commit=True)

    def active(self) -> int:
        """How many tokens are not revoked."""
        rows = self._run("SELECT count(*) FROM {p}ledger_tokens WHERE revoked IS NULL")
        return int(rows[0][0]) if rows else 0

    def holder(self, secret: str) -> str | None:
        """The name of the live token whose secret this is, or None: every live token's hash is
        compared in constant time, so the time taken tells nothing of how close a guess was."""
        given = hash_token(secret)
        found = None
        for name, stored in self._run("SELECT name, hash FROM {p}ledger_tokens WHERE revoked IS NULL"):
            if hmac.compare_digest(given, str(stored)):
                found = str(name)
        return found

    def note_write(self, token: str, first: int, last: int, now: datetime.datetime) -> None:
        self._run("INSERT INTO {p}ledger_writes (first_position, last_position, token, recorded) VALUES (?, ?, ?, ?)",
                  [first, last, token, format_recorded(now)], commit=True)

    def writer(self, position: int) -> str | None:
        """The token that wrote the event at log position `position` (None: not written with a token)."""
        rows = self._run("SELECT token FROM {p}ledger_writes WHERE first_position <= ? AND last_position >= ? "
                         "ORDER BY first_position DESC LIMIT 1", [position, position])
        return str(rows[0][0]) if rows else None

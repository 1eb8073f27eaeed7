"""Where a ledger lives: one `Location` for every check of what a location string is.

A location is `memory` (or `:memory:`: a ledger private to one process), a
`postgresql://user:password@host:port/db?schema=name` URL, or else the path of
a SQLite file. Parsing checks a URL (its port, and that the schema is a plain
lower-case SQL identifier, since it is spliced into SQL) and refuses it with
`field="db"`. Pure: no file or network is touched; the store turns a location
into eventsourcing's settings, and whatever reads the disk does so itself.

A location may hold a password (in the URL, or as a query parameter). `shown`
is the one form that may be printed or written anywhere: the password and
every query parameter but `schema` masked as `***`; `redact` masks the password
inside a message (a driver's words may quote it; other parameters such as
`connect_timeout=5` are left alone there, or every "5" of the message would go).
A password must be percent-encoded: an "@" after the host, or a URL that does
not parse, is refused without quoting the URL (its password could be in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, parse_qsl, unquote, urlparse, urlsplit, urlunsplit

from ledger.vocabulary.errors import LedgerError

MEMORY_NAMES = ("memory", ":memory:")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MASK = "***"

Kind = Literal["memory", "sqlite", "postgres"]


@dataclass(frozen=True)
class Server:
    """A PostgreSQL ledger's server, database and schema, with the defaults filled in;
    the user and password are None when the URL gives none."""

    host: str
    port: int
    database: str
    schema: str
    user: str | None
    password: str | None

    @property
    def ledger(self) -> tuple[str, int, str, str]:
        """What names one ledger on PostgreSQL: the server, the database and the schema."""
        return self.host, self.port, self.database, self.schema


@dataclass(frozen=True)
class Location:
    """A parsed ledger location: its text as given, its kind, and a PostgreSQL one's server."""

    text: str
    kind: Kind
    server: Server | None = None

    @classmethod
    def parse(cls, text: str) -> Location:
        if text in MEMORY_NAMES:
            return cls(text, "memory")
        if text.startswith(POSTGRES_SCHEMES):
            return cls(text, "postgres", _server(text))
        return cls(text, "sqlite")

    @property
    def shown(self) -> str:
        """The location as it may be shown: a URL's password (which may itself hold an
        "@") and every query parameter but `schema` masked."""
        if self.kind != "postgres":
            return self.text
        parts = urlsplit(self.text)
        userinfo, at, host = parts.netloc.rpartition("@")  # as urllib splits it: the last "@"
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':' + MASK if colon else ''}{at}{host}"
        query = "&".join(
            f"{name}={value if name == 'schema' else MASK}"
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))

    def secrets(self) -> list[str]:
        """The passwords of the URL (in its user part, or a parameter such as `password`
        or `sslpassword`), as written and as decoded, longest first."""
        if self.kind != "postgres":
            return []
        parts = urlsplit(self.text)
        userinfo = parts.netloc.rpartition("@")[0]
        found = [userinfo.partition(":")[2]]
        found += [value for name, value in parse_qsl(parts.query, keep_blank_values=True) if "password" in name]
        found += [unquote(value) for value in found]
        return sorted({value for value in found if value}, key=len, reverse=True)

    def redact(self, message: str, *also: str) -> str:
        """`message` with the location's secrets (and `also`, e.g. a password taken from
        the environment) masked."""
        for secret in sorted({*self.secrets(), *(a for a in also if a)}, key=len, reverse=True):
            message = message.replace(secret, MASK)
        return message


def _server(url: str) -> Server:
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:  # its words quote the URL's parts, the password among them
        raise LedgerError(
            "not a valid postgresql:// URL (is the port a number, and is a password with : / ? # @ percent-encoded?)",
            field="db",
        ) from None
    # A password holding / ? or # ends the host early and leaves its "@" in the path, a
    # parameter's name or the fragment; an "@" in a parameter's value is the value's own.
    names = [name for name, _ in parse_qsl(parsed.query, keep_blank_values=True)]
    if "@" in parsed.path or "@" in parsed.fragment or any("@" in name for name in names):
        raise LedgerError("a postgresql:// URL with an @ after its host: percent-encode the password (@ is %40)",
                          field="db")
    schema = parse_qs(parsed.query).get("schema", ["public"])[0]
    if not SCHEMA_NAME.fullmatch(schema):
        raise LedgerError("schema must be a lower-case SQL identifier", field="db")
    if schema.startswith("pg_") or schema == "information_schema":
        raise LedgerError(f"schema {schema} is reserved by PostgreSQL (pg_* and information_schema): choose another",
                          field="db")
    return Server(
        host=parsed.hostname or "127.0.0.1",
        port=port or 5432,
        database=unquote(parsed.path.lstrip("/")) or "postgres",
        schema=schema,
        user=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
    )

"""`Location`: one answer to what a location string is, how it is shown, where its read models live."""

from __future__ import annotations

import pytest

from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.location import Location

URL = "postgresql://alice:p%40ss@db.example:5433/books?schema=pol1&sslpassword=k3y"


@pytest.mark.parametrize("text, kind", [
    ("memory", "memory"), (":memory:", "memory"), ("ledger.db", "sqlite"), ("/data/x/ledger.db", "sqlite"),
    (URL, "postgres"), ("postgres://u@h/db", "postgres"),
])
def test_the_kind_of_a_location(text: str, kind: str) -> None:
    assert Location.parse(text).kind == kind


def test_a_postgresql_location_names_its_server_with_the_defaults_filled_in() -> None:
    server = Location.parse(URL).server
    assert server is not None
    assert (server.host, server.port, server.database, server.schema) == ("db.example", 5433, "books", "pol1")
    assert (server.user, server.password) == ("alice", "p@ss")
    bare = Location.parse("postgresql://h").server
    assert bare is not None and bare.ledger == ("h", 5432, "postgres", "public") and bare.user is None


def test_the_shown_form_masks_every_secret_and_keeps_the_schema() -> None:
    assert Location.parse(URL).shown == "postgresql://alice:***@db.example:5433/books?schema=pol1&sslpassword=***"
    assert Location.parse("/data/ledger.db").shown == "/data/ledger.db"
    assert Location.parse("memory").shown == "memory"


def test_redact_masks_the_secrets_as_written_and_decoded() -> None:
    message = "password 'p@ss' (p%40ss) or k3y refused for alice"
    assert Location.parse(URL).redact(message, "") == "password '***' (***) or *** refused for alice"
    assert Location.parse("postgresql://u@h/db").redact("bad pw from-env", "from-env") == "bad pw ***"
    assert Location.parse("ledger.db").redact("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize("text", ["postgresql://h:notaport/db", "postgresql://h/db?schema=Bad", "postgresql://[::1/db"])
def test_a_bad_url_is_refused_on_the_db_field(text: str) -> None:
    with pytest.raises(LedgerError) as refused:
        Location.parse(text)
    assert refused.value.field == "db"


def test_redact_leaves_parameters_that_are_not_passwords() -> None:
    location = Location.parse("postgresql://u:s3cret@h/db?schema=x&sslmode=require&connect_timeout=5")
    message = "connection to port 5432 failed: SSL required (password s3cret)"
    assert location.redact(message) == "connection to port 5432 failed: SSL required (password ***)"


@pytest.mark.parametrize("text", ["postgresql://alice:pa/secret@h/db", "postgresql://alice:12/se#cret@h/db",
                                  "postgresql://alice:x?y@z@h/db"])
def test_a_password_that_is_not_percent_encoded_is_refused_without_being_quoted(text: str) -> None:
    with pytest.raises(LedgerError) as refused:
        Location.parse(text)
    assert refused.value.field == "db"
    assert "secret" not in str(refused.value) and "pa" not in str(refused.value).replace("password", "")
    assert "percent-encode" in str(refused.value)


def test_an_at_sign_in_a_parameters_value_is_the_values_own() -> None:
    server = Location.parse("postgresql://u@h/db?schema=x&application_name=me@home").server
    assert server is not None and server.schema == "x"

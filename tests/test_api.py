"""The JSON API of `creditledger serve` (ledger/web/api.py), in process through Litestar's test client.

Every query answers exactly what the command line prints with --json, on the book of
tests/test_json_schemas.py (late payments, a loss, a claim, a declaration); errors answer the
one documented shape; writes need a live token, are all or nothing and honour keys; the
event log pages by position.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)
from litestar.testing import TestClient
from test_json_schemas import EARLY, EVENTS, LATE, toml_events

from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.web.api import Problem
from ledger.web.app import create_app

MIDDLE = "2025-04-01T00:00:00Z"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("api")
    path, book = str(folder / "ledger.db"), folder / "book.toml"
    book.write_text(POLICY_FILE.read_text() + toml_events([{"recorded": EARLY, **e} for e in EVENTS]))
    cli("init", "--db", path)
    cli("import", str(book), "--keep-recorded", "--db", path)
    return path


@pytest.fixture(scope="module")
def client(db: str) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(db, read_only=True)) as test_client:
        yield test_client


# (API path, its query parameters, the command line giving the same JSON)
SAME_AS_CLI: list[tuple[str, dict[str, Any], list[str]]] = [
    ("/api/summary", {}, ["summary"]),
    ("/api/exposure", {"as_of": "2025-03-31"}, ["exposure", "--as-of", "2025-03-31"]),
    ("/api/exposure", {"as_of": "2025-03-31", "known_at": MIDDLE},
     ["exposure", "--as-of", "2025-03-31", "--known-at", MIDDLE]),
    ("/api/exposure", {"as_of": "2025-03-31", "buyer": "B1"}, ["exposure", "--as-of", "2025-03-31", "--buyer", "B1"]),
    ("/api/exposure/diff", {"as_of": "2025-03-31", "from": MIDDLE, "to": LATE},
     ["exposure", "--diff", "--as-of", "2025-03-31", "--known-at", MIDDLE, "--known-at", LATE]),
    ("/api/obligations", {"as_of": "2025-06-30"}, ["obligations", "--as-of", "2025-06-30"]),
    ("/api/obligations", {"as_of": "2025-06-30", "open": "true", "buyer": "B2"},
     ["obligations", "--as-of", "2025-06-30", "--open", "--buyer", "B2"]),
    ("/api/turnover", {"period": "2025-Q1"}, ["turnover", "--period", "2025-Q1"]),
    ("/api/turnover", {"period": "2025-Q1", "country": "GB", "known_at": MIDDLE},
     ["turnover", "--period", "2025-Q1", "--country", "GB", "--known-at", MIDDLE]),
    ("/api/premium", {"as_of": "2025-12-31"}, ["premium", "--as-of", "2025-12-31"]),
    ("/api/premium", {"as_of": "2025-12-31", "lines": "true"}, ["premium", "--as-of", "2025-12-31", "--lines"]),
    ("/api/premium", {"as_of": "2025-12-31", "lines": "true", "kind": "premium", "period": "2025-Q1", "by": "kind"},
     ["premium", "--as-of", "2025-12-31", "--lines", "--kind", "premium", "--period", "2025-Q1", "--by", "kind"]),
    ("/api/exposure", {"as_of": "2025-03-31", "status": "active", "country": "GB", "sort": "outstanding", "top": "1"},
     ["exposure", "--as-of", "2025-03-31", "--status", "active", "--country", "GB", "--sort", "outstanding",
      "--top", "1"]),
    ("/api/obligations", {"as_of": "2025-06-30", "open": "true", "due_within": "30"},
     ["obligations", "--as-of", "2025-06-30", "--open", "--due-within", "30"]),
    ("/api/claims", {"as_of": "2025-06-30"}, ["claims", "--as-of", "2025-06-30"]),
    ("/api/claims/B2", {"as_of": "2025-06-30"}, ["claim", "B2", "--as-of", "2025-06-30"]),
    ("/api/claims/B2", {"as_of": "2025-06-30", "explain": "true", "known_at": LATE},
     ["claim", "B2", "--as-of", "2025-06-30", "--explain", "--known-at", LATE]),
    ("/api/verify", {}, ["verify"]),
]


@pytest.mark.parametrize(("path", "params", "command"), SAME_AS_CLI, ids=[" ".join(c) for _, _, c in SAME_AS_CLI])
def test_every_query_answers_what_the_cli_prints(
    client: TestClient[Any], db: str, path: str, params: dict[str, Any], command: list[str]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    printed = json.loads(cli(*command, "--json", "--db", db).stdout)
    assert response.json() == printed


def test_every_query_of_the_registry_is_served(client: TestClient[Any]) -> None:
    from ledger.queries.registry import QUERIES

    served = {"exposure_diff": "/api/exposure/diff", "claim": "/api/claims/{buyer}"}
    paths = client.get("/api/openapi.json").json()["paths"]
    for name in QUERIES:
        assert served.get(name, f"/api/{name}") in paths, name


def test_the_declaration_is_the_query_answer(client: TestClient[Any], db: str) -> None:
    from ledger.queries.registry import run_query

    with Ledger(db) as ledger:
        expected = msgspec.json.decode(msgspec.json.encode(run_query("declaration", ledger, {"period": "2025-Q1"})))
    assert client.get("/api/declaration", params={"period": "2025-Q1"}).json() == expected
    assert expected["countries"]


def test_premium_lines_filter_by_kind_and_period(client: TestClient[Any]) -> None:
    every = client.get("/api/premium", params={"as_of": "2025-12-31", "lines": "true"}).json()["lines"]
    kind = every[0]["kind"]
    only = client.get("/api/premium", params={"as_of": "2025-12-31", "lines": "true", "kind": kind}).json()["lines"]
    assert only == [line for line in every if line["kind"] == kind]
    assert len(only) < len(every) or all(line["kind"] == kind for line in every)


def problem(response: Any, status: int) -> Problem:
    """The response is an error of the one documented shape, with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = msgspec.json.decode(response.content, type=Problem)
    assert answer.status == status and "\n" not in answer.error
    return answer


@pytest.mark.parametrize(("path", "params", "field", "words"), [
    ("/api/exposure", {"as_of": "31/03/2025"}, "as_of", "is not a date"),
    ("/api/exposure", {"buyer": "NOPE"}, None, "NOPE"),
    ("/api/turnover", {"period": "2025-Q5"}, "period", "is not a period"),
    ("/api/claims/B1", {"known_at": "yesterday"}, "known_at", "is not a timestamp"),
    ("/api/events", {"type": "invoice_paid"}, "type", "is not an event type"),
    ("/api/events", {"limit": "0"}, "limit", ""),
    ("/api/events", {"after": "x"}, "after", ""),
    ("/api/events", {"after": str(2**63)}, "after", ""),  # found by schemathesis: was a 500 (SQLite overflow)
    ("/api/obligations", {"open": "maybe"}, "open", ""),
])
def test_bad_parameters_answer_422_naming_the_field(
    client: TestClient[Any], db: str, path: str, params: dict[str, str], field: str | None, words: str
) -> None:
    answer = problem(client.get(path, params=params), 422)
    if field is not None:
        assert answer.field == field
    assert words in answer.error


def test_a_refusal_is_the_cli_reason(client: TestClient[Any], db: str) -> None:
    answer = problem(client.get("/api/turnover", params={"period": "2025-13"}), 422)
    refused = cli("turnover", "--period", "2025-13", "--db", db, ok=False).exception
    assert isinstance(refused, LedgerError) and str(refused) == answer.error  # main() prints "error: " + it


def test_the_openapi_document_and_its_docs_page(client: TestClient[Any]) -> None:
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "Problem" in document["components"]["schemas"]
    assert client.get("/api/docs").status_code == 200
    write = document["paths"]["/api/events"]["post"]
    assert {"401", "405", "409", "422"} <= set(write["responses"])


# ---------------------------------------------------------------- the event log

def test_events_page_by_position(client: TestClient[Any], db: str) -> None:
    every = client.get("/api/events").json()
    assert [e["position"] for e in every] == list(range(1, len(EVENTS) + 2))
    printed = json.loads(cli("log", "--json", "--db", db).stdout)
    assert [{k: v for k, v in e.items() if k != "position"} for e in every] == printed
    first = client.get("/api/events", params={"limit": 3}).json()
    rest = client.get("/api/events", params={"after": first[-1]["position"]}).json()
    assert first + rest == every
    only = client.get("/api/events", params={"buyer": "B2", "type": ["insolvency", "claim_filed"]}).json()
    assert [e["type"] for e in only] == ["insolvency", "claim_filed"]


# ---------------------------------------------------------------- writing

@pytest.fixture
def writable(tmp_path: Path) -> Iterator[tuple[TestClient[Any], str, str]]:
    """A fresh ledger with the policy and a buyer, a live token, and a client that may write."""
    path = str(tmp_path / "w.db")
    cli("init", "--db", path)
    cli("policy", "load", str(POLICY_FILE), "--db", path)
    cli("append", "buyer_registered", "--effective", "2025-01-02", "--buyer", "B1", "--name", "Acme",
        "--country", "GB", "--db", path)
    with Ledger(path) as ledger:
        token = ledger.tokens.create("erp", ledger.clock())
    with TestClient(app=create_app(path)) as test_client:
        yield test_client, path, token


INVOICE = {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1",
           "amount": "1000.00", "due": "2025-03-31", "key": "ERP-I1"}


def test_a_write_needs_a_live_token(writable: tuple[TestClient[Any], str, str]) -> None:
    client, path, token = writable
    problem(client.post("/api/events", json=INVOICE), 401)
    problem(client.post("/api/events", json=INVOICE, headers={"Authorization": f"Bearer {token}x"}), 401)
    problem(client.post("/api/events", json=INVOICE, headers={"Authorization": f"Basic {token}"}), 401)
    with Ledger(path) as ledger:
        assert ledger.count() == 2
        ledger.tokens.revoke("erp", ledger.clock())
    problem(client.post("/api/events", json=INVOICE, headers={"Authorization": f"Bearer {token}"}), 401)
    with Ledger(path) as ledger:
        assert ledger.count() == 2


def test_a_write_records_keys_once_and_notes_its_token(writable: tuple[TestClient[Any], str, str]) -> None:
    client, path, token = writable
    auth = {"Authorization": f"Bearer {token}"}
    first = client.post("/api/events", json=INVOICE, headers=auth)
    assert first.status_code == 201, first.text
    recorded = first.json()["recorded"]
    assert len(recorded) == 1 and first.json()["skipped"] == []
    payment = {"type": "payment_received", "effective": "2025-02-10", "buyer": "B1", "invoice": "I1",
               "amount": "400.00", "key": "PAY-1"}
    again = client.post("/api/events", json=[INVOICE, payment], headers=auth).json()
    assert again["skipped"] == [{"key": "ERP-I1", "earlier": recorded[0]}] and len(again["recorded"]) == 1
    with Ledger(path) as ledger:
        positions = ledger.positions([recorded[0], again["recorded"][0]])
        assert {ledger.tokens.writer(p) for p in positions.values()} == {"erp"}
        assert ledger.tokens.writer(1) is None  # the policy, loaded from the command line
    exposure = client.get("/api/exposure", params={"buyer": "B1", "as_of": "2025-02-28"}).json()
    assert exposure["outstanding"] == "600.00"


def test_a_bad_event_refuses_the_whole_batch(writable: tuple[TestClient[Any], str, str]) -> None:
    client, path, token = writable
    auth = {"Authorization": f"Bearer {token}"}
    bad = {**INVOICE, "key": "ERP-I2", "invoice": "I2", "amount": "12,5"}
    answer = problem(client.post("/api/events", json=[INVOICE, bad], headers=auth), 422)
    assert answer.field == "amount" and answer.error.startswith("line 2: amount:")
    problem(client.post("/api/events", json=[], headers=auth), 422)
    problem(client.post("/api/events", json=[1, 2], headers=auth), 422)
    problem(client.post("/api/events", content=b"{not json", headers=auth), 422)
    unknown = problem(client.post("/api/events", json={**INVOICE, "colour": "red"}, headers=auth), 422)
    assert unknown.field == "colour"
    with Ledger(path) as ledger:
        assert ledger.count() == 2


def test_a_read_only_service_refuses_writes(db: str, client: TestClient[Any]) -> None:
    with Ledger(db) as ledger:
        count = ledger.count()
    problem(client.post("/api/events", json=INVOICE), 405)
    with Ledger(db) as ledger:
        assert ledger.count() == count


def test_every_query_on_the_sample_book_answers_what_the_cli_prints(tmp_path: Path) -> None:
    """The queries of `make demo` on a smaller sample book: API body == CLI --json, each."""
    path, book = str(tmp_path / "demo.db"), str(tmp_path / "book.toml")
    cli("sample", "generate", book, "--buyers", "12", "--events", "400")
    cli("init", "--db", path)
    cli("import", book, "--db", path)
    insolvent = json.loads(cli("log", "--type", "insolvency", "--json", "--db", path).stdout)
    assert insolvent, "the sample book has a loss"
    loser = insolvent[0]["buyer"]
    asked: list[tuple[str, dict[str, Any], list[str]]] = [
        ("/api/summary", {}, ["summary"]),
        ("/api/exposure", {"as_of": "2025-12-31"}, ["exposure", "--as-of", "2025-12-31"]),
        ("/api/exposure", {"as_of": "2025-06-30", "buyer": loser}, ["exposure", "--as-of", "2025-06-30", "--buyer", loser]),
        ("/api/obligations", {"as_of": "2025-12-31", "open": "true"}, ["obligations", "--as-of", "2025-12-31", "--open"]),
        *[("/api/turnover", {"period": q}, ["turnover", "--period", q]) for q in ("2025-Q1", "2025-Q4", "2025")],
        ("/api/premium", {"as_of": "2026-01-31", "lines": "true"}, ["premium", "--as-of", "2026-01-31", "--lines"]),
        ("/api/claims", {"as_of": "2025-12-31"}, ["claims", "--as-of", "2025-12-31"]),
        ("/api/claims/" + loser, {"as_of": "2025-12-31", "explain": "true"},
         ["claim", loser, "--as-of", "2025-12-31", "--explain"]),
        ("/api/verify", {}, ["verify"]),
    ]
    with TestClient(app=create_app(path, read_only=True)) as client:
        for api_path, params, command in asked:
            response = client.get(api_path, params=params)
            assert response.status_code == 200, (api_path, response.text)
            assert response.json() == json.loads(cli(*command, "--json", "--db", path).stdout), command


def test_a_write_that_keeps_losing_the_race_answers_409(
    writable: tuple[TestClient[Any], str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer commits first on every attempt (as if): the service gives up, the API says 409."""
    from ledger.vocabulary.errors import ConcurrencyConflict

    client, path, token = writable

    def lost(*_: Any, **__: Any) -> Any:
        raise ConcurrencyConflict("UNIQUE constraint failed: stored_events.originator_id")

    monkeypatch.setattr(Ledger, "_record_once", lost)
    monkeypatch.setattr("ledger.service.time.sleep", lambda _: None)
    answer = problem(client.post("/api/events", json=INVOICE, headers={"Authorization": f"Bearer {token}"}), 409)
    assert "gave up" in answer.error and "recorded nothing" in answer.error
    monkeypatch.undo()
    with Ledger(path) as ledger:
        assert ledger.count() == 2

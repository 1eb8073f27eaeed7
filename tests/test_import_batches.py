"""A large write is admitted and saved a batch at a time inside one transaction
(`Ledger._record_in_batches`): it records exactly what the one-batch write records
(the hash chain intact),
and a refusal in its last batch leaves nothing of the earlier batches behind."""

from __future__ import annotations

from typing import Any

import pytest

import ledger.service
from ledger.operations.verify import verify
from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.terms import parse_policy


def book_rows() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return samplebook.generate(seed=5, buyers=8, events=300)


def recorded(location: str, rows: list[dict[str, Any]], policy: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every event of the ledger after recording `rows`: stream, version, type, key, effective, amount."""
    with Ledger(location) as opened:
        opened.load_policy(parse_policy(policy))
        outcome = opened.record(opened.parse(list(enumerate(rows, 1)), "book"))
        assert len(outcome.recorded) == len(rows)
        report = verify(opened)
        assert report.clean and report.events == len(rows) + 1, report.findings
        return [
            (n.originator_id, n.originator_version, event.type, event.key, event.effective, getattr(event, "amount", None))
            for n in opened.store.read_notifications(1, 100_000)
            for event in [opened.store.decode(n.topic, n.state)]
        ]


def test_batches_record_what_one_write_records(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policy, rows = book_rows()
    whole = recorded("memory", rows, policy)
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 37)  # many batches, one ragged
    assert recorded(location, rows, policy) == whole


def test_a_refusal_in_the_last_batch_records_nothing(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policy, rows = book_rows()
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 50)
    bad = {"type": "payment_received", "effective": "2025-06-01", "buyer": "NOBODY", "amount": "1.00"}
    with Ledger(location) as opened:
        opened.load_policy(parse_policy(policy))
        with pytest.raises(LedgerError) as caught:
            opened.record(opened.parse(list(enumerate([*rows, bad], 1)), "book"))
        assert f"book:{len(rows) + 1}" in str(caught.value)
        assert opened.count() == 1  # the policy alone
        assert len(opened.record(opened.parse(list(enumerate(rows, 1)), "book")).recorded) == len(rows)


def test_a_batched_amendment_rechecks_every_buyer(monkeypatch: pytest.MonkeyPatch) -> None:
    """An amendment in a large write re-checks buyers recorded before it, not only those it touches."""
    policy, _ = book_rows()
    monkeypatch.setattr(ledger.service, "SAVE_BATCH", 1)
    with Ledger("memory") as opened:
        opened.load_policy(parse_policy(policy))
        opened.append({"type": "buyer_registered", "effective": "2025-02-01", "buyer": "U1", "name": "x", "country": "US"})
        zones = {country: zone for country, zone in policy["fees"]["zones"].items() if country != "US"}
        amended = {**policy, "fees": {**policy["fees"], "zones": zones}}
        writes = [
            {"type": "policy_amended", "effective": "2025-01-01", "terms": amended},
            {"type": "buyer_registered", "effective": "2025-02-01", "buyer": "G1", "name": "y", "country": "GB"},
        ]
        with pytest.raises(LedgerError, match="amended terms would make the buyer_registered of U1"):
            opened.record(opened.parse(list(enumerate(writes, 1)), "book"))
        assert opened.count() == 2

"""`declare`: the turnover declaration of a period as CSV, and with `--record` recorded too
(one `turnover_declared` per country, keyed by period and country, so running it again records nothing)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.service import Ledger

# Q1 2025: GB 1,000.00 + 250.50 and DE 400.00 to buyers with limits; FR 900.00 to one without (declared 0.00).
EVENTS: list[list[str]] = [
    ["buyer_registered", "--effective", "2025-01-02", "--buyer", "B1", "--name", "Acme", "--country", "GB"],
    ["buyer_registered", "--effective", "2025-01-02", "--buyer", "B2", "--name", "Beta", "--country", "DE"],
    ["buyer_registered", "--effective", "2025-01-02", "--buyer", "B3", "--name", "Gamma", "--country", "FR"],
    ["limit_granted", "--effective", "2025-01-03", "--buyer", "B1", "--amount", "20000"],
    ["limit_granted", "--effective", "2025-01-03", "--buyer", "B2", "--amount", "5000"],
    ["invoice_issued", "--effective", "2025-01-10", "--buyer", "B1", "--invoice", "I1", "--amount", "1000.00",
     "--due", "2025-03-10"],
    ["invoice_issued", "--effective", "2025-02-10", "--buyer", "B1", "--invoice", "I2", "--amount", "250.50",
     "--due", "2025-04-10"],
    ["invoice_issued", "--effective", "2025-03-10", "--buyer", "B2", "--invoice", "J1", "--amount", "400.00",
     "--due", "2025-05-10"],
    ["invoice_issued", "--effective", "2025-03-11", "--buyer", "B3", "--invoice", "K1", "--amount", "900.00",
     "--due", "2025-05-10"],
]


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "ledger.db")
    cli("init", "--db", path)
    cli("policy", "load", str(POLICY_FILE), "--db", path)
    for event in EVENTS:
        cli("append", *event, "--db", path)
    return path


def declarations(db: str) -> list[dict[str, Any]]:
    return [e for e in json.loads(cli("log", "--type", "turnover_declared", "--json", "--db", db).stdout)]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_declare_alone_prints_and_records_nothing(db: str):
    result = cli("declare", "--period", "2025-Q1", "--db", db)
    assert [(r["country"], r["insurable_turnover"]) for r in csv_rows(result.stdout)] == [
        ("DE", "400.00"), ("FR", "0.00"), ("GB", "1250.50")]
    assert declarations(db) == []


def test_record_records_each_country_once_and_says_what(db: str):
    first = cli("declare", "--period", "2025-Q1", "--record", "--effective", "2025-04-12", "--db", db)
    assert [(r["country"], r["insurable_turnover"]) for r in csv_rows(first.stdout)] == [
        ("DE", "400.00"), ("FR", "0.00"), ("GB", "1250.50")]  # stdout stays the CSV alone
    assert "recorded turnover_declared 2025-Q1 DE 400.00 GBP effective 2025-04-12" in first.stderr
    assert "recorded turnover_declared 2025-Q1 GB 1250.50 GBP effective 2025-04-12" in first.stderr
    recorded = declarations(db)
    assert [(e["period"], e["country"], e["amount"], e["effective"], e["key"]) for e in recorded] == [
        ("2025-Q1", "DE", "400.00", "2025-04-12", "declared:2025-Q1:DE"),
        ("2025-Q1", "FR", "0.00", "2025-04-12", "declared:2025-Q1:FR"),
        ("2025-Q1", "GB", "1250.50", "2025-04-12", "declared:2025-Q1:GB"),
    ]
    with Ledger(db) as ledger:
        count = ledger.count()
    again = cli("declare", "--period", "2025-Q1", "--record", "--effective", "2025-04-20", "--db", db)
    assert "recorded turnover_declared" not in again.stderr
    assert again.stderr.count("already recorded: key declared:2025-Q1:") == 3
    with Ledger(db) as ledger:
        assert ledger.count() == count
    turnover = json.loads(cli("turnover", "--period", "2025-Q1", "--json", "--db", db).stdout)
    assert turnover["declared"] == turnover["insurable"] == "1650.50"


def test_a_recorded_declaration_meets_the_duty(db: str):
    def duty() -> str:
        duties = json.loads(cli("obligations", "--as-of", "2025-06-30", "--json", "--db", db).stdout)
        return next(d["status"] for d in duties if d["kind"] == "declare_turnover" and d["due"] == "2025-04-30")

    assert duty() == "missed"
    cli("declare", "--period", "2025-Q1", "--record", "--effective", "2025-04-30", "--db", db)
    assert duty() == "met"


def test_effective_goes_with_record_and_must_be_a_date(db: str):
    alone = cli("declare", "--period", "2025-Q1", "--effective", "2025-04-12", "--db", db, ok=False)
    assert alone.exit_code != 0 and "--record" in str(alone.exception)
    bad = cli("declare", "--period", "2025-Q1", "--record", "--effective", "2025-04-31", "--db", db, ok=False)
    assert bad.exit_code != 0 and "effective" in str(bad.exception)
    monthly = cli("declare", "--period", "2025-03", "--record", "--effective", "2025-04-12", "--db", db, ok=False)
    assert monthly.exit_code != 0 and "not a quarterly declaration period" in str(monthly.exception)
    assert declarations(db) == []


def test_a_period_without_sales_records_nothing_and_says_so(db: str):
    result = cli("declare", "--period", "2025-Q3", "--record", "--effective", "2025-10-05", "--db", db)
    assert "nothing recorded: no sales in 2025-Q3" in result.stderr
    assert declarations(db) == []

"""The `exposure` and `obligations` commands (SPEC 6.3, 6.5, 9) through Typer's
CliRunner, the in-process entry point for one-line refusals, and every cover
scenario (SPEC 10) through the scenario runner."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.adapters.scenario import run_scenario
from ledger.cli import main
from ledger.vocabulary.errors import LedgerError

ROOT = Path(__file__).resolve().parent.parent
COVER_SCENARIOS = sorted((ROOT / "scenarios" / "cover").glob("*.toml"))
FIGURES = ("outstanding", "overdue", "insured", "uninsured", "limit", "top_up", "headroom", "available")

# Three buyers. B1's payment of 5000.00 on 2025-02-20 was recorded late, on
# 2025-04-15; B2 owes an invoice above its limit, overdue since March and not
# reported; B3 was paid in full. Q1 turnover was declared in time.
EVENTS: list[dict[str, Any]] = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB",
     "key": "reg-B1", "recorded": "2025-01-02T09:00:00Z"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Beta GmbH", "country": "DE",
     "key": "reg-B2", "recorded": "2025-01-02T09:00:01Z"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B3", "name": "Gamma SA", "country": "FR",
     "key": "reg-B3", "recorded": "2025-01-02T09:00:02Z"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000", "basis": "underwriter",
     "key": "lim-B1", "recorded": "2025-01-03T09:00:00Z"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B2", "amount": "5000", "basis": "discretionary",
     "criterion": "trading_history", "key": "lim-B2", "recorded": "2025-01-03T09:00:01Z"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B3", "amount": "3000", "basis": "underwriter",
     "key": "lim-B3", "recorded": "2025-01-03T09:00:02Z"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "10000.00",
     "due": "2025-03-10", "key": "inv-I1", "recorded": "2025-01-10T09:00:00Z"},
    {"type": "invoice_issued", "effective": "2025-01-15", "buyer": "B2", "invoice": "J1", "amount": "8000.00",
     "due": "2025-02-28", "key": "inv-J1", "recorded": "2025-01-15T09:00:00Z"},
    {"type": "invoice_issued", "effective": "2025-01-20", "buyer": "B3", "invoice": "K1", "amount": "1000.00",
     "due": "2025-02-20", "key": "inv-K1", "recorded": "2025-01-20T09:00:00Z"},
    {"type": "payment_received", "effective": "2025-02-18", "buyer": "B3", "invoice": "K1", "amount": "1000.00",
     "key": "pay-K1", "recorded": "2025-02-18T09:00:00Z"},
    {"type": "turnover_declared", "effective": "2025-04-10", "period": "2025-Q1", "country": "GB",
     "amount": "10000.00", "key": "decl-Q1", "recorded": "2025-04-10T09:00:00Z"},
    {"type": "payment_received", "effective": "2025-02-20", "buyer": "B1", "invoice": "I1", "amount": "5000.00",
     "key": "PAY-LATE", "recorded": "2025-04-15T10:00:00Z"},
    {"type": "invoice_issued", "effective": "2025-04-20", "buyer": "B2", "invoice": "J2", "amount": "100.00",
     "due": "2025-05-20", "key": "inv-J2", "recorded": "2025-04-20T09:00:00Z"},
]
BEFORE_LATE = "2025-04-01T00:00:00Z"
AFTER_LATE = "2025-05-01T00:00:00Z"


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--json").stdout)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A ledger imported with its recorded stamps from a file that carries the SPEC 4 policy."""
    text = POLICY_FILE.read_text() + "\n"
    for row in EVENTS:
        text += "[[events]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in row.items()) + "\n"
    source = tmp_path / "book.toml"
    source.write_text(text)
    path = str(tmp_path / "ledger.db")
    cli("init", "--db", path)
    cli("import", str(source), "--keep-recorded", "--db", path)
    return path


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["creditledger", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


# ---------------------------------------------------------------- exposure

def test_exposure_of_one_buyer(db: str):
    row = cli_json("exposure", "--buyer", "B1", "--as-of", "2025-03-31", "--db", db)
    assert row == {
        "buyer": "B1", "name": "Acme Ltd", "country": "GB", "outstanding": "5000.00", "overdue": "5000.00", "insured": "5000.00", "uninsured": "0.00",
        "limit": "20000.00", "top_up": "0.00", "headroom": "15000.00", "available": "15000.00", "status": "overdue",
        "not_available": "",
    }
    # B2's invoice is above its limit: the cap is the limit.
    row = cli_json("exposure", "--buyer", "B2", "--as-of", "2025-01-31", "--db", db)
    assert (row["outstanding"], row["insured"], row["uninsured"], row["headroom"], row["status"]) == (
        "8000.00", "5000.00", "3000.00", "0.00", "active")


def test_exposure_of_the_book_is_the_sum_of_its_rows(db: str):
    for as_of in ("2025-01-31", "2025-03-31", "2025-06-30"):
        book = cli_json("exposure", "--as-of", as_of, "--db", db)
        assert [row["buyer"] for row in book["buyers"]] == ["B1", "B2", "B3"]
        for name in FIGURES:
            assert Decimal(book[name]) == sum(Decimal(row[name]) for row in book["buyers"]), (as_of, name)
        for row in book["buyers"]:
            one = cli_json("exposure", "--buyer", row["buyer"], "--as-of", as_of, "--db", db)
            assert one == row
            assert Decimal(row["uninsured"]) == Decimal(row["outstanding"]) - Decimal(row["insured"])
    book = cli_json("exposure", "--as-of", "2025-03-31", "--db", db)
    assert (book["outstanding"], book["insured"], book["limit"]) == ("13000.00", "10000.00", "28000.00")


def test_exposure_as_known_at_an_earlier_time(db: str):
    early = cli_json("exposure", "--buyer", "B1", "--as-of", "2025-03-31", "--known-at", BEFORE_LATE, "--db", db)
    late = cli_json("exposure", "--buyer", "B1", "--as-of", "2025-03-31", "--known-at", AFTER_LATE, "--db", db)
    assert (early["outstanding"], late["outstanding"]) == ("10000.00", "5000.00")
    # A bare date means the end of that day.
    assert cli_json("exposure", "--buyer", "B1", "--as-of", "2025-03-31", "--known-at", "2025-03-31",
                    "--db", db) == early


def test_exposure_table(db: str):
    table = cli("exposure", "--as-of", "2025-03-31", "--db", db).stdout
    for text in ("B1", "B2", "B3", "book", "13000.00", "overdue"):
        assert text in table


# ---------------------------------------------------------------- exposure --diff

def test_diff_names_the_late_payment_behind_a_change(db: str):
    data = cli_json("exposure", "--diff", "--known-at", BEFORE_LATE, "--known-at", AFTER_LATE,
                    "--as-of", "2025-03-31", "--db", db)
    assert data["as_of"] == "2025-03-31"
    (change,) = data["changes"]
    assert change["buyer"] == "B1"
    assert change["changed"]["outstanding"] == {"before": "10000.00", "after": "5000.00"}
    assert change["changed"]["insured"] == {"before": "10000.00", "after": "5000.00"}
    assert "limit" not in change["changed"]
    assert [(e["type"], e.get("key")) for e in change["because"]] == [("payment_received", "PAY-LATE")]
    (payment,) = change["because"]
    assert (payment["effective"], payment["amount"], payment["invoice"]) == ("2025-02-20", "5000.00", "I1")
    assert payment["recorded"].startswith("2025-04-15T10:00:00")
    # The declaration (policy-wide) and J2 were recorded in between too, but are effective after as_of.
    assert data["late_events"] == 1


def test_diff_in_either_order_and_for_one_buyer(db: str):
    both = cli_json("exposure", "--diff", "--known-at", AFTER_LATE, "--known-at", BEFORE_LATE,
                    "--as-of", "2025-03-31", "--db", db)
    one = cli_json("exposure", "--diff", "--buyer", "B1", "--known-at", BEFORE_LATE, "--known-at", AFTER_LATE,
                   "--as-of", "2025-03-31", "--db", db)
    assert [c["buyer"] for c in both["changes"]] == [c["buyer"] for c in one["changes"]] == ["B1"]
    assert one["changes"][0]["because"] == both["changes"][0]["because"]
    other = cli_json("exposure", "--diff", "--buyer", "B2", "--known-at", BEFORE_LATE, "--known-at", AFTER_LATE,
                     "--as-of", "2025-03-31", "--db", db)
    assert other["changes"] == []


def test_diff_table_says_because(db: str):
    text = cli("exposure", "--diff", "--known-at", BEFORE_LATE, "--known-at", AFTER_LATE, "--as-of", "2025-03-31",
               "--db", db).stdout
    assert "outstanding: 10000.00 -> 5000.00" in text
    assert "because: payment_received" in text and "PAY-LATE" in text


@pytest.mark.parametrize("moments", [[], [BEFORE_LATE], [BEFORE_LATE, AFTER_LATE, AFTER_LATE]],
                         ids=["none", "one", "three"])
def test_diff_needs_two_known_at(db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                 moments: list[str]):
    args = [arg for moment in moments for arg in ("--known-at", moment)]
    result = cli("exposure", "--diff", *args, "--as-of", "2025-03-31", "--db", db, ok=False)
    assert result.exit_code == 1
    assert isinstance(result.exception, LedgerError) and result.exception.field == "known_at"
    code, out, err = run_main(monkeypatch, capsys, "exposure", "--diff", *args, "--as-of", "2025-03-31", "--db", db)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: known_at: ") and "two --known-at" in err


def test_two_known_at_without_diff_is_refused(db: str):
    result = cli("exposure", "--known-at", BEFORE_LATE, "--known-at", AFTER_LATE, "--db", db, ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, LedgerError)
    assert result.exception.field == "known_at"


@pytest.mark.parametrize("command", [
    ["exposure"], ["exposure", "--buyer", "B1"], ["exposure", "--diff", "--known-at", BEFORE_LATE,
                                                  "--known-at", AFTER_LATE], ["obligations"],
], ids=["exposure", "exposure-buyer", "exposure-diff", "obligations"])
@pytest.mark.parametrize("bad", ["2025-02-30", "31/03/2025", "yesterday"])
def test_a_bad_as_of_is_one_line_naming_as_of(db: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], command: list[str], bad: str):
    result = cli(*command, "--as-of", bad, "--db", db, ok=False)
    assert result.exit_code == 1
    assert isinstance(result.exception, LedgerError) and result.exception.field == "as_of"
    code, out, err = run_main(monkeypatch, capsys, *command, "--as-of", bad, "--db", db)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: as_of: ") and bad in err and "Traceback" not in err


def test_a_bad_known_at_is_one_line_naming_known_at(db: str, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]):
    code, _, err = run_main(monkeypatch, capsys, "exposure", "--known-at", "soon", "--db", db)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: known_at: ")


def test_an_unknown_buyer_is_refused(db: str):
    result = cli("exposure", "--buyer", "B9", "--as-of", "2025-03-31", "--db", db, ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, LedgerError)
    assert result.exception.field == "buyer"


# ---------------------------------------------------------------- obligations

def test_obligations_json(db: str):
    duties = cli_json("obligations", "--as-of", "2025-04-20", "--db", db)
    assert duties == sorted(duties, key=lambda d: (d["status"] != "missed", d["due"], d["kind"], d.get("buyer", "")))
    for duty in duties:
        assert duty["kind"] in ("report_overdue", "file_claim", "declare_turnover")
        assert duty["status"] in ("pending", "met", "missed")
    assert {"kind": "report_overdue", "buyer": "B2", "due": "2025-04-29", "status": "pending"} in duties
    assert {"kind": "report_overdue", "buyer": "B1", "due": "2025-05-09", "status": "pending"} in duties
    assert {"kind": "declare_turnover", "due": "2025-04-30", "status": "met"} in duties
    assert not any(d.get("buyer") == "B3" for d in duties)  # paid before it fell due
    # The deadline passed unreported: missed, and the invoice lost its cover.
    later = cli_json("obligations", "--buyer", "B2", "--as-of", "2025-05-31", "--db", db)
    assert {"kind": "report_overdue", "buyer": "B2", "due": "2025-04-29", "status": "missed"} in later
    assert cli_json("exposure", "--buyer", "B2", "--as-of", "2025-05-31", "--db", db)["insured"] == "0.00"


def test_obligations_open_lists_the_missed_first_and_the_pending(db: str):
    for as_of in ("2025-04-20", "2025-05-31", "2025-12-31"):
        every = cli_json("obligations", "--as-of", as_of, "--db", db)
        to_act_on = cli_json("obligations", "--open", "--as-of", as_of, "--db", db)
        assert to_act_on == [d for d in every if d["status"] != "met"]
        statuses = [d["status"] for d in to_act_on]
        assert statuses == sorted(statuses, key=lambda status: status != "missed")  # the missed first
    # On 31 May the reports due 29 April (B2) and 9 May (B1) were missed and B2's next is pending.
    may = cli_json("obligations", "--open", "--as-of", "2025-05-31", "--db", db)
    assert [(d["buyer"], d["due"], d["status"]) for d in may] == [
        ("B2", "2025-04-29", "missed"), ("B1", "2025-05-09", "missed"), ("B2", "2025-07-19", "pending")]
    table = cli("obligations", "--open", "--as-of", "2025-04-20", "--db", db).stdout
    assert "report_overdue" in table and "pending" in table and "met" not in table


def test_obligations_due_within_days(db: str):
    every = cli_json("obligations", "--as-of", "2025-04-20", "--db", db)
    soon = cli_json("obligations", "--as-of", "2025-04-20", "--due-within", "10", "--db", db)
    assert soon == [d for d in every if d["due"] <= "2025-04-30"]
    assert {"kind": "report_overdue", "buyer": "B2", "due": "2025-04-29", "status": "pending"} in soon
    assert not any(d["due"] == "2025-05-09" for d in soon) and any(d["due"] == "2025-05-09" for d in every)
    assert cli_json("obligations", "--as-of", "2025-04-20", "--due-within", "0", "--open", "--db", db) == [
        d for d in every if d["due"] <= "2025-04-20" and d["status"] != "met"]


@pytest.mark.parametrize(("args", "field"), [
    (["obligations", "--due-within", "-1"], "due_within"),
    (["exposure", "--status", "stopped"], "statuses"),
    (["exposure", "--country", "G1"], "countries"),
    (["exposure", "--sort", "size"], "sort"),
    (["exposure", "--top", "0"], "top"),
    (["exposure", "--buyer", "B1", "--status", "active"], "statuses"),
    (["premium", "--kind", "fee"], "kind"),
    (["premium", "--by", "country"], "by"),
    (["premium", "--period", "2025-Q5"], "period"),
])
def test_a_bad_choice_is_one_line_naming_it(db: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], args: list[str], field: str):
    code, out, err = run_main(monkeypatch, capsys, *args, "--db", db)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {field}: ") and "Traceback" not in err


def test_obligations_as_known_at_an_earlier_time(db: str):
    early = cli_json("obligations", "--buyer", "B1", "--as-of", "2025-04-20", "--known-at", BEFORE_LATE,
                     "--db", db)
    assert early == [{"kind": "report_overdue", "buyer": "B1", "due": "2025-05-09", "status": "pending"}]
    before_any = cli_json("obligations", "--as-of", "2025-04-20", "--known-at", "2025-01-01", "--db", db)
    assert [d["kind"] for d in before_any] == ["declare_turnover"]


# ---------------------------------------------------------------- help

@pytest.mark.parametrize(("command", "options"), [
    ("exposure", ["--buyer", "--as-of", "--known-at", "--diff", "--status", "--country", "--sort", "--top", "--json",
                  "--db"]),
    ("obligations", ["--buyer", "--as-of", "--known-at", "--open", "--due-within", "--json", "--db"]),
    ("premium", ["--lines", "--kind", "--period", "--by"]),
])
def test_help(command: str, options: list[str]):
    result = cli(command, "--help")
    assert "Usage:" in result.stdout
    for option in options:
        assert option in result.stdout, option


# ---------------------------------------------------------------- cover scenarios

def test_the_cover_scenarios_are_found():
    assert len(COVER_SCENARIOS) >= 20


@pytest.mark.parametrize("path", COVER_SCENARIOS, ids=lambda p: p.stem)
def test_cover_scenario_passes(path: Path):
    result = run_scenario(path)
    assert result.failures == (), "\n".join(result.failures)
    assert result.passed > 0, "a scenario must check something"

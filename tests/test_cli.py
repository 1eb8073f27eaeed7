"""The `creditledger` command line: through Typer's CliRunner, through `main()`
in-process (to see the one-line refusals exactly as a user does), and through
a real subprocess of the installed script (exit codes, no traceback)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.cli import app, main
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import EVENT_TYPES, field_words

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "creditledger"

BUYER = ["--effective", "2025-01-02", "--buyer", "B1", "--name", "Acme Ltd", "--country", "GB"]
INVOICE = ["--effective", "2025-01-10", "--buyer", "B1", "--invoice", "I1", "--amount", "1000.00",
           "--due", "2025-03-10"]


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A ledger file with the SPEC 4 policy loaded."""
    path = str(tmp_path / "ledger.db")
    cli("init", "--db", path)
    cli("policy", "load", str(POLICY_FILE), "--db", path)
    return path


def count(db: str) -> int:
    with Ledger(db) as ledger:
        return ledger.count()


def log_json(db: str, *filters: str) -> list[dict[str, Any]]:
    result = cli("log", "--json", "--db", db, *filters)
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


# ---------------------------------------------------------------- help

def command_paths() -> Iterator[list[str]]:
    """Every command and group of the app, found by walking it (new ones are picked up)."""

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "creditledger")
def test_help_on_every_command(path: list[str]):
    result = cli(*path, "--help")
    assert "Usage:" in result.stdout
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    first_line = (command.help or "").strip().splitlines()[0]
    assert first_line and first_line[:40] in " ".join(result.stdout.split())
    # A user has the clone, not the team's domain reference: help stands alone.
    assert "SPEC" not in result.stdout


def test_help_shows_brackets_as_written() -> None:
    """Rich reads [policy] as markup and drops it unless escaped."""
    assert "[[events]]" in cli("import", "--help").stdout
    assert "[policy]" in cli("policy", "load", "--help").stdout


# Options that take a date (or a date or timestamp): their help must show the format.
DATE_OPTIONS = {"as_of", "known_at", "effective", "effective_from", "effective_to", "date_from", "date_to"}


def squeezed(text: str) -> str:
    """`text` without whitespace or the box lines Rich draws around help panels, so that
    wrapped help compares with the help as written."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│╭╮╰╯─")


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "creditledger")
def test_help_loses_no_text_to_markup_and_shows_date_formats(path: list[str]):
    """Every help text of every command and option shows whole, brackets and all ([[events]] was
    once eaten by Rich's markup), and every date option says how to write the date."""
    shown = squeezed(cli(*path, "--help").stdout)
    assert "\\[" not in shown  # help is printed as written: an escape for Rich markup would show
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    first_paragraph = (command.help or "").strip().split("\n\n")[0]
    assert squeezed(first_paragraph) in shown
    for param in command.params:
        written = (getattr(param, "help", None) or "").replace("\\[", "[")
        assert squeezed(written) in shown, (param.name, written)
        if param.name in DATE_OPTIONS:
            assert "YYYY-MM-DD" in written, (param.name, written)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_append_type_help_lists_the_fields_of_that_type_with_their_formats(event_type: str):
    shown = cli("append", event_type, "--help").stdout
    assert f"Fields of {event_type}" in shown
    fields = field_words(event_type)
    for name, words in fields:
        assert f"--{name.replace('_', '-')}" in shown and squeezed(words) in squeezed(shown), name
    assert "--recorded" not in shown and "--id " not in shown  # the ledger sets them
    assert {name for name, _ in fields} >= {"effective", "key"}
    if "due" in dict(fields):
        assert "date YYYY-MM-DD" in dict(fields)["due"]


def test_append_help_without_a_type_lists_the_types():
    shown = " ".join(cli("append", "--help").stdout.split())
    assert "append TYPE --help lists" in shown and all(name in shown for name in EVENT_TYPES)


def test_the_app_has_the_commands_of_the_contract():
    paths = {" ".join(p) for p in command_paths()}
    assert {"init", "policy load", "policy show", "append", "import", "log", "scenario run"} <= paths


# ---------------------------------------------------------------- init, policy, append

def test_init_creates_a_ledger_and_never_overwrites_one(tmp_path: Path):
    path = tmp_path / "new.db"
    result = cli("init", "--db", str(path))
    assert path.exists() and "created an empty ledger" in result.stdout
    assert count(str(path)) == 0
    again = cli("init", "--db", str(path), ok=False)
    assert again.exit_code == 1
    assert isinstance(again.exception, LedgerError) and "never overwritten" in str(again.exception)


def test_commands_refuse_a_missing_ledger(tmp_path: Path):
    result = cli("log", "--db", str(tmp_path / "missing.db"), ok=False)
    assert result.exit_code == 1 and "creditledger init" in str(result.exception)
    assert not (tmp_path / "missing.db").exists()


def test_policy_load_show_and_amend(db: str):
    shown = json.loads(cli("policy", "show", "--json", "--db", db).stdout)
    assert (shown["id"], shown["currency"], shown["indemnity_pct"]) == ("POL-2025-001", "GBP", "90")
    assert cli("policy", "show", "--db", db).stdout.count("POL-2025-001") == 1
    amended = POLICY_FILE.read_text().replace('discretionary_limit_max = "5000"', 'discretionary_limit_max = "8000"')
    Path("amended.toml").write_text(amended)
    result = cli("policy", "load", "amended.toml", "--effective", "2025-07-01", "--db", db)
    assert "policy_amended POL-2025-001 effective 2025-07-01" in result.stdout
    assert json.loads(cli("policy", "show", "--json", "--db", db).stdout)["discretionary_limit_max"] == "8000.00"
    assert [e["type"] for e in log_json(db)] == ["policy_started", "policy_amended"]


def test_loading_unchanged_terms_records_nothing_and_says_so(db: str):
    again = cli("policy", "load", str(POLICY_FILE), "--db", db)
    assert "policy POL-2025-001 unchanged" in again.stdout and "nothing recorded" in again.stdout
    as_json = json.loads(cli("policy", "load", str(POLICY_FILE), "--effective", "2025-07-01", "--json", "--db", db).stdout)
    assert as_json["recorded"] == [] and "nothing recorded" in as_json["warnings"][0]
    assert [e["type"] for e in log_json(db)] == ["policy_started"]


@pytest.mark.parametrize(("effective", "words"), [
    (None, "is after the policy end 2025-12-31"),  # today, by the real clock, is after the 2025 policy
    ("2026-01-01", "is after the policy end 2025-12-31"),
    ("2024-12-31", "is before the policy start 2025-01-01"),
])
def test_an_amendment_dated_outside_the_policy_period_is_refused(db: str, effective: str | None, words: str):
    Path("amended.toml").write_text(
        POLICY_FILE.read_text().replace('discretionary_limit_max = "5000"', 'discretionary_limit_max = "8000"'))
    result = cli("policy", "load", "amended.toml", *(["--effective", effective] if effective else []), "--db", db,
                 ok=False)
    assert result.exit_code == 1 and words in str(result.exception)
    assert str(result.exception).startswith("effective: ") and "\n" not in str(result.exception)
    assert [e["type"] for e in log_json(db)] == ["policy_started"]
    on_the_last_day = cli("policy", "load", "amended.toml", "--effective", "2025-12-31", "--db", db)
    assert "policy_amended POL-2025-001 effective 2025-12-31" in on_the_last_day.stdout


def test_append_records_one_event(db: str):
    assert "recorded 1 events" in cli("append", "buyer_registered", *BUYER, "--db", db).stdout
    result = cli("append", "invoice_issued", *INVOICE, "--prepaid", "--key", "INV-KEY", "--db", db, "--json")
    report = json.loads(result.stdout)
    assert len(report["recorded"]) == 1 and report["skipped"] == [] and report["warnings"] == []
    (invoice,) = log_json(db, "--type", "invoice_issued")
    assert invoice["id"] == report["recorded"][0]
    assert (invoice["amount"], invoice["prepaid"], invoice["delivered"]) == ("1000.00", True, "2025-01-10")
    # The same key again is skipped and reported.
    again = json.loads(cli("append", "invoice_issued", *INVOICE, "--key", "INV-KEY", "--db", db, "--json").stdout)
    assert again["recorded"] == [] and again["skipped"] == [{"key": "INV-KEY", "earlier": invoice["id"]}]
    assert count(db) == 3


def test_append_warns_for_a_due_date_beyond_max_credit_days(db: str):
    cli("append", "buyer_registered", *BUYER, "--db", db)
    result = cli("append", "invoice_issued", "--effective", "2025-01-10", "--buyer", "B1", "--invoice", "I9",
                 "--amount", "10.00", "--due", "2025-06-30", "--db", db)
    assert "recorded 1 events" in result.stdout
    assert "warning:" in result.stderr and "max_credit_days" in result.stderr


def test_the_db_can_come_from_the_environment(db: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CREDITLEDGER_DB", db)
    cli("append", "buyer_registered", *BUYER)
    assert count(db) == 2


def test_summary_counts_events_and_money(db: str):
    cli("append", "buyer_registered", *BUYER, "--db", db)
    cli("append", "invoice_issued", *INVOICE, "--db", db)
    cli("append", "payment_received", "--effective", "2025-02-01", "--buyer", "B1", "--amount", "250.50", "--db", db)
    data = json.loads(cli("summary", "--json", "--db", db).stdout)
    assert data["events"] == 4 and data["policy"] == "POL-2025-001"
    assert data["by_type"] == {"buyer_registered": 1, "invoice_issued": 1, "payment_received": 1,
                               "policy_started": 1}
    assert data["amounts"]["payment_received"] == "250.50" and data["buyers_by_country"] == {"GB": 1}


# ---------------------------------------------------------------- import

EVENTS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB",
     "key": "reg-1"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000", "key": "lim-1"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "1000.00",
     "due": "2025-03-10", "key": "inv-1"},
    {"type": "payment_received", "effective": "2025-02-01", "buyer": "B1", "invoice": "I1", "amount": "400.00",
     "key": "pay-1"},
]


def write(path: Path, rows: list[dict[str, Any]], policy: bool = False) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        columns = list(dict.fromkeys(k for r in rows for k in r))
        lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        text = POLICY_FILE.read_text() + "\n" if policy else ""
        for row in rows:
            text += "[[events]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in row.items()) + "\n"
        path.write_text(text)
    return path


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "toml"])
def test_import_each_format_then_again_records_nothing(db: str, tmp_path: Path, suffix: str):
    path = write(tmp_path / f"events.{suffix}", EVENTS)
    assert "recorded 4 events, skipped 0" in cli("import", str(path), "--db", db).stdout
    logged = log_json(db)[1:]
    assert [e["key"] for e in logged] == [r["key"] for r in EVENTS]
    assert logged[3]["amount"] == "400.00" and logged[2]["due"] == "2025-03-10"
    second = cli("import", str(path), "--db", db)
    assert "recorded 0 events, skipped 4 already recorded" in second.stdout
    assert f"{path}:" in second.stderr and "skipped: key reg-1 is already recorded" in second.stderr
    assert count(db) == 5


def test_import_a_toml_file_with_its_policy_into_an_empty_ledger(tmp_path: Path):
    path = str(tmp_path / "fresh.db")
    cli("init", "--db", path)
    source = write(tmp_path / "book.toml", EVENTS, policy=True)
    assert "recorded 5 events" in cli("import", str(source), "--db", path).stdout
    assert [e["type"] for e in log_json(path)][0] == "policy_started"
    # The same file again: the policy matches, the events are known.
    assert "recorded 0 events, skipped 4" in cli("import", str(source), "--db", path).stdout


@pytest.mark.parametrize(("currency", "amount"), [("JPY", "1000"), ("KWD", "1.500")])
def test_import_with_its_policy_reads_amounts_in_the_policy_currency(tmp_path: Path, currency: str, amount: str):
    path = str(tmp_path / "fresh.db")
    cli("init", "--db", path)
    source = write(tmp_path / "book.toml", [EVENTS[0], {**EVENTS[2], "amount": amount}], policy=True)
    source.write_text(source.read_text().replace('currency = "GBP"', f'currency = "{currency}"'))
    cli("import", str(source), "--db", path)
    (invoice,) = log_json(path, "--type", "invoice_issued")
    assert invoice["amount"] == amount


def test_import_refuses_a_policy_that_differs_from_the_ledgers(db: str, tmp_path: Path):
    source = write(tmp_path / "book.toml", EVENTS, policy=True)
    source.write_text(source.read_text().replace('excess = "500"', 'excess = "600"'))
    result = cli("import", str(source), "--db", db, ok=False)
    assert result.exit_code == 1 and "differs from the ledger's" in str(result.exception)
    assert count(db) == 1


def test_import_format_can_be_given(db: str, tmp_path: Path):
    path = write(tmp_path / "events.jsonl", EVENTS).rename(tmp_path / "events.txt")
    assert cli("import", str(path), "--db", db, ok=False).exit_code == 1
    assert "recorded 4 events" in cli("import", str(path), "--format", "jsonl", "--db", db).stdout


# ---------------------------------------------------------------- log

def test_log_json_shows_both_time_axes_and_filters(db: str):
    cli("import", str(write(Path("events.jsonl"), EVENTS)), "--db", db)
    events = log_json(db)
    assert [e["type"] for e in events] == ["policy_started", "buyer_registered", "limit_granted", "invoice_issued",
                                          "payment_received"]
    for event in events:
        assert {"type", "id", "effective", "recorded"} <= set(event)
        assert len(event["effective"]) == 10 and event["recorded"].endswith("Z")
    assert [e["recorded"] for e in events] == sorted(e["recorded"] for e in events)
    assert [e["key"] for e in log_json(db, "--buyer", "B1", "--type", "invoice_issued", "--type",
                                        "payment_received")] == ["inv-1", "pay-1"]
    assert [e["key"] for e in log_json(db, "--from", "2025-01-03", "--to", "2025-01-10")] == ["lim-1", "inv-1"]
    assert len(log_json(db, "--limit", "2")) == 2
    assert log_json(db, "--known-at", "2000-01-01") == []
    assert log_json(db, "--known-at", events[-1]["recorded"]) == events
    table = cli("log", "--db", db).stdout
    assert "5 events" in table and "invoice_issued" in table


def test_log_json_reimported_with_keep_recorded_gives_the_same_events(db: str, tmp_path: Path):
    cli("import", str(write(tmp_path / "events.jsonl", EVENTS)), "--db", db)
    cli("append", "invoice_issued", "--effective", "2025-02-03", "--buyer", "B1", "--invoice", "USD-1",
        "--amount", "100.01", "--currency", "USD", "--fx-rate", "0.7931", "--due", "2025-04-01", "--db", db)
    cli("append", "payment_reversed", "--effective", "2025-02-04", "--buyer", "B1", "--payment", "pay-1", "--db", db)
    cli("append", "turnover_declared", "--effective", "2025-04-05", "--period", "2025-Q1", "--country", "GB",
        "--amount", "1100.00", "--db", db)
    exported = log_json(db)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(event) + "\n" for event in exported))
    fresh = str(tmp_path / "copy.db")
    cli("init", "--db", fresh)
    assert f"recorded {len(exported)} events" in cli("import", str(export), "--keep-recorded", "--db", fresh).stdout
    assert log_json(fresh) == exported
    with Ledger(db) as original, Ledger(fresh) as copy:
        assert list(copy.events()) == list(original.events())


def test_log_json_output_saved_as_is_imports_again(db: str, tmp_path: Path):
    cli("import", str(write(tmp_path / "events.jsonl", EVENTS)), "--db", db)
    export = tmp_path / "export.json"
    export.write_text(cli("log", "--json", "--db", db).stdout)
    fresh = str(tmp_path / "copy.db")
    cli("init", "--db", fresh)
    cli("import", str(export), "--keep-recorded", "--db", fresh)
    assert log_json(fresh) == log_json(db)


def test_a_file_with_recorded_stamps_is_refused_until_told_what_to_do_with_them(db: str, tmp_path: Path):
    """An audit copy (`log --json`) imported without a choice would lose its recorded axis: refused, naming both."""
    cli("import", str(write(tmp_path / "events.jsonl", EVENTS)), "--db", db)
    exported = log_json(db)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(exported))
    fresh = str(tmp_path / "copy.db")
    cli("init", "--db", fresh)
    refused = cli("import", str(export), "--db", fresh, ok=False)
    message = str(refused.exception)
    assert refused.exit_code == 1 and message.startswith(f"{export}:") and " recorded: " in message
    assert "--keep-recorded" in message and "--restamp" in message
    both = cli("import", str(export), "--keep-recorded", "--restamp", "--db", fresh, ok=False)
    assert both.exit_code == 1 and "not both" in str(both.exception)
    assert count(fresh) == 0
    restamped = cli("import", str(export), "--restamp", "--db", fresh)
    assert f"recorded {len(exported)} events" in restamped.stdout and "carried recorded stamps" in restamped.stderr
    assert [e["recorded"] for e in log_json(fresh)] != [e["recorded"] for e in exported]
    assert [e["id"] for e in log_json(fresh)] == [e["id"] for e in exported]  # the same events, stamped now


def test_a_file_without_recorded_stamps_needs_no_choice(db: str, tmp_path: Path):
    path = tmp_path / "events.csv"
    write(path, [{**row, "recorded": ""} for row in EVENTS])  # an empty recorded column is no stamp
    assert f"recorded {len(EVENTS)} events" in cli("import", str(path), "--db", db).stdout


def test_append_field_equals_value_keeps_the_value(db: str):
    cli("append", "buyer_registered", "--effective", "2025-01-02", "--buyer=B-2", "--name=Acme-Nord",
        "--country=GB", "--key=REG-2", "--db", db)
    (event,) = log_json(db, "--type", "buyer_registered")
    assert (event["buyer"], event["name"], event["key"]) == ("B-2", "Acme-Nord", "REG-2")


@pytest.mark.parametrize("command", [["policy", "load"], ["import"]])
def test_malformed_toml_is_refused_with_its_line(db: str, command: list[str]):
    Path("broken.toml").write_text("[policy]\nid = \n")
    result = cli(*command, "broken.toml", "--db", db, ok=False)
    assert isinstance(result.exception, LedgerError)
    assert (result.exception.source, result.exception.line) == ("broken.toml", 2)
    assert count(db) == 1


# ---------------------------------------------------------------- refusals: one line, nothing recorded

def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["creditledger", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


BAD_APPENDS = [
    pytest.param(["payment_received", "--effective", "2025-02-01", "--buyer", "B1", "--amount", "1000.001",
                  "--invoice", "I1"], "amount: 1000.001 has more decimals", id="too-many-decimals"),
    pytest.param(["payment_received", "--effective", "2025-02-01", "--buyer", "B1", "--amount", "1000.01",
                  "--invoice", "I1"], "amount: 1000.01 is more than the 1000.00 open", id="overpayment"),
    pytest.param(["payment_received", "--effective", "2025-02-01", "--buyer", "B9", "--amount", "1"],
                 "buyer: B9 is not a registered buyer", id="unknown-buyer"),
    pytest.param(["invoice_paid", "--effective", "2025-02-01"], "type: 'invoice_paid' is not an event type",
                 id="unknown-type"),
    pytest.param(["payment_received", "--effective", "2025-02-30", "--buyer", "B1", "--amount", "1"],
                 "effective: '2025-02-30' is not a valid date", id="bad-date"),
    pytest.param(["payment_received", "--effective", "2025-02-01", "--buyer", "B1", "--amount", "1",
                  "--colour", "red"], "colour: is not a field of payment_received", id="unknown-field"),
    pytest.param(["payment_received", "stray"], "expected --field value", id="not-a-field"),
]


@pytest.mark.parametrize(("args", "message"), BAD_APPENDS)
def test_a_bad_append_is_one_line_and_records_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], message: str
):
    cli("append", "buyer_registered", *BUYER, "--db", db)
    cli("append", "invoice_issued", *INVOICE, "--db", db)
    code, out, err = run_main(monkeypatch, capsys, "append", *args, "--db", db)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert message in err
    assert out == ""
    assert count(db) == 3


BAD_COMMANDS = [
    pytest.param(["log", "--known-at", "yesterday"], "known_at: 'yesterday' is not a timestamp", id="bad-known-at"),
    pytest.param(["log", "--from", "2025-02-30"], "from: '2025-02-30' is not a date", id="bad-from"),
    pytest.param(["log", "--type", "invoice_paid"], "type: 'invoice_paid' is not an event type", id="bad-type"),
    pytest.param(["import", "missing.jsonl"], "missing.jsonl: cannot read the file", id="missing-file"),
    pytest.param(["import", "events.xml"], "cannot tell the format", id="unknown-format"),
    pytest.param(["policy", "load", "bad_policy.toml"], "bad_policy.toml:10: policy.indemnity_pct: 120 is out of range",
                 id="bad-policy"),
    pytest.param(["policy", "load", "broken.toml"], "broken.toml:2: malformed TOML", id="malformed-policy"),
]


@pytest.mark.parametrize(("args", "message"), BAD_COMMANDS)
def test_bad_input_to_a_command_is_one_line_and_records_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], message: str
):
    Path("events.xml").write_text("<events/>")
    Path("bad_policy.toml").write_text(POLICY_FILE.read_text().replace('indemnity_pct = "90"', 'indemnity_pct = "120"'))
    Path("broken.toml").write_text("[policy]\nid = \n")
    code, out, err = run_main(monkeypatch, capsys, *args, "--db", db)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert message in err
    assert count(db) == 1


def test_an_import_with_a_bad_line_names_file_and_line_and_records_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    rows = [dict(EVENTS[0])] + [
        {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": f"I{n}", "amount": "10.00",
         "due": "2025-03-10"} for n in range(60)
    ]
    rows[49]["due"] = "2025-02-30"
    path = write(tmp_path / "big.jsonl", rows)
    code, _, err = run_main(monkeypatch, capsys, "import", str(path), "--db", db)
    assert code == 1
    assert err == f"error: {path}:50: due: '2025-02-30' is not a valid date (write 2025-01-31)\n"
    assert count(db) == 1


# ---------------------------------------------------------------- a real subprocess

def creditledger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [shutil.which("creditledger") or "creditledger"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={"PATH": str(SCRIPT.parent), "HOME": str(cwd)})


def test_the_installed_script_end_to_end(tmp_path: Path):
    db = str(tmp_path / "ledger.db")
    assert creditledger("init", "--db", db, cwd=tmp_path).returncode == 0
    assert creditledger("policy", "load", str(POLICY_FILE), "--db", db, cwd=tmp_path).returncode == 0
    done = creditledger("append", "buyer_registered", *BUYER, "--db", db, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "" and "recorded 1 events" in done.stdout

    refused = creditledger("append", "limit_granted", "--effective", "2025-01-03", "--buyer", "B1", "--amount",
                           "6000", "--basis", "discretionary", "--criterion", "credit_report", "--db", db, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == "error: amount: 6000.00 is above discretionary_limit_max 5000.00\n"
    assert refused.stdout == ""

    bad_file = write(tmp_path / "bad.csv", [EVENTS[1], {**EVENTS[2], "amount": "-1"}])
    imported = creditledger("import", str(bad_file), "--db", db, cwd=tmp_path)
    assert imported.returncode == 1 and "Traceback" not in imported.stderr
    assert imported.stderr.splitlines() == [f"error: {bad_file}:3: amount: -1 is negative; amounts are never below 0"]

    missing = creditledger("log", "--db", str(tmp_path / "nope.db"), cwd=tmp_path)
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1

    logged = creditledger("log", "--json", "--db", db, cwd=tmp_path)
    assert logged.returncode == 0
    assert [e["type"] for e in json.loads(logged.stdout)] == ["policy_started", "buyer_registered"]

    usage = creditledger("append", cwd=tmp_path)  # a usage error is Click's, exit 2
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert creditledger("--help", cwd=tmp_path).returncode == 0


def test_the_installed_script_refuses_a_huge_exponent(tmp_path: Path):
    db = str(tmp_path / "ledger.db")
    creditledger("init", "--db", db, cwd=tmp_path)
    creditledger("policy", "load", str(POLICY_FILE), "--db", db, cwd=tmp_path)
    creditledger("append", "buyer_registered", *BUYER, "--db", db, cwd=tmp_path)
    result = creditledger("append", "payment_received", "--effective", "2025-02-01", "--buyer", "B1", "--amount",
                          "1e999999", "--db", db, cwd=tmp_path)
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert (result.returncode, result.stderr.startswith("error: amount: ")) == (1, True)


def test_append_without_effective_takes_today_from_the_ledgers_clock(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the machine's local date: the ledger's clock (UTC), the one that stamps `recorded`."""
    import datetime
    import functools

    import ledger.cli.common

    late_evening = datetime.datetime(2031, 5, 6, 23, 30, tzinfo=datetime.UTC)
    monkeypatch.setattr(ledger.cli.common, "Ledger", functools.partial(Ledger, clock=lambda: late_evening))
    cli("append", "buyer_registered", "--buyer", "B9", "--name", "Late Ltd", "--country", "GB", "--db", db)
    (event,) = log_json(db, "--buyer", "B9")
    assert (event["effective"], event["recorded"][:10]) == ("2031-05-06", "2031-05-06")

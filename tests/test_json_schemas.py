"""Every command's `--json` against its one schema (`ledger/queries/answers.py`, documented in docs/json.md).

The ledger is a small book imported with fixed `recorded` stamps, so that a
late payment makes `exposure --diff` show a change. Each output is decoded
with the command's Struct, which forbids unknown fields and requires the
fields always printed: a field added, renamed or dropped fails here.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, get_args, get_origin

import msgspec
import pytest
import typer
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.cli import app
from ledger.queries import answers as schemas
from ledger.queries.registry import run_query
from ledger.service import Ledger
from ledger.vocabulary.events import parse_event, to_public
from ledger.vocabulary.terms import parse_policy

ROOT = Path(__file__).resolve().parent.parent
ERP = ROOT / "examples/erp"
EARLY, LATE = "2025-03-01T09:00:00Z", "2025-05-01T09:00:00Z"
EVENTS: list[dict[str, Any]] = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt GmbH", "country": "DE"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000", "basis": "underwriter"},
    {"type": "limit_granted", "effective": "2025-01-05", "buyer": "B2", "amount": "5000", "basis": "underwriter"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "8000.00",
     "due": "2025-03-10", "key": "ERP-I1"},
    {"type": "invoice_issued", "effective": "2025-01-20", "buyer": "B2", "invoice": "J1", "amount": "3000.00",
     "due": "2025-03-20"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "I2", "amount": "15000.00",
     "due": "2025-04-01"},
    {"type": "payment_received", "effective": "2025-02-15", "buyer": "B1", "amount": "5000.00", "invoice": "I1"},
    # Recorded late: a payment effective in March that the ledger learnt in May (exposure --diff).
    {"type": "payment_received", "effective": "2025-03-20", "buyer": "B1", "amount": "1000.00", "invoice": "I1",
     "recorded": LATE},
    {"type": "insolvency", "effective": "2025-04-01", "buyer": "B2", "proceeding": "liquidation", "recorded": LATE},
    {"type": "claim_filed", "effective": "2025-04-10", "buyer": "B2", "recorded": LATE},
    {"type": "turnover_declared", "effective": "2025-04-15", "period": "2025-Q1", "country": "GB",
     "amount": "20000.00", "recorded": LATE},
    {"type": "indemnity_paid", "effective": "2025-04-20", "buyer": "B2", "amount": "2250.00", "recorded": LATE},
    {"type": "recovery_received", "effective": "2025-04-25", "buyer": "B2", "amount": "300.00", "recorded": LATE},
]


def toml_events(events: list[dict[str, Any]]) -> str:
    """[[events]] tables; every value is a string, which TOML writes as JSON does."""
    return "".join(
        "\n[[events]]\n" + "".join(f"{name} = {json.dumps(value)}\n" for name, value in event.items())
        for event in events
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The book, imported with its policy and its recorded stamps kept."""
    folder = tmp_path_factory.mktemp("json")
    path, book = str(folder / "ledger.db"), folder / "book.toml"
    book.write_text(POLICY_FILE.read_text() + toml_events([{"recorded": EARLY, **e} for e in EVENTS]))
    cli("init", "--db", path)
    imported = decoded("import", cli("import", str(book), "--keep-recorded", "--json", "--db", path).stdout)
    assert len(imported.recorded) == len(EVENTS) + 1  # and the policy
    return path


def decoded(name: str, text: str) -> Any:
    """The output decoded with the command's schema (raises on any difference)."""
    return msgspec.json.decode(text, type=schemas.SCHEMAS[name])


def run(db: str, name: str, *args: str, ok: bool = True) -> Any:
    """Run the command `name` with --json and decode its output with its schema (ok=False: it exits 1
    and still prints its JSON, as verify does with findings)."""
    command = name.split(" --")[0].split()
    result = cli(*command, *args, "--json", "--db", db, ok=ok)
    assert result.exit_code == (0 if ok else 1), (result.stdout, result.stderr)
    return decoded(name, result.stdout)


# ---------------------------------------------------------------- one test per command

def test_policy_load(tmp_path: Path):
    path = str(tmp_path / "fresh.db")
    cli("init", "--db", path)
    outcome = run(path, "policy load", str(POLICY_FILE))
    assert len(outcome.recorded) == 1 and outcome.skipped == () and outcome.warnings == ()


def test_append_with_a_warning(db: str):
    outcome = run(db, "append", "invoice_issued", "--effective", "2025-06-01", "--buyer", "B1", "--invoice", "I9",
                  "--amount", "10.00", "--due", "2025-12-01")  # beyond max_credit_days: recorded, not insured
    assert len(outcome.recorded) == 1 and outcome.warnings and "max_credit_days" in outcome.warnings[0]


def test_import_again_is_skipped_with_the_earlier_id(db: str, tmp_path: Path):
    again = tmp_path / "again.jsonl"
    again.write_text(json.dumps(EVENTS[4]) + "\n")
    outcome = run(db, "import", str(again))
    assert outcome.recorded == () and [s.key for s in outcome.skipped] == ["ERP-I1"]


def test_policy_show_reads_back_as_the_same_terms(db: str):
    table = run(db, "policy show")
    with Ledger(db) as ledger:
        assert parse_policy(table) == ledger.terms()  # a renamed or added term would be refused by name


def test_log_events_read_back_as_the_same_events(db: str):
    events = run(db, "log")
    rows = json.loads(cli("log", "--json", "--db", db).stdout)
    assert len(events) == len(rows) >= len(EVENTS)
    for event, row in zip(events, rows, strict=True):
        assert event.type == row["type"]
        parsed = parse_event(row, "GBP")  # an unknown or renamed field is refused by name
        assert json.loads(msgspec.json.encode(to_public(parsed, "GBP"))) == row


def test_summary(db: str):
    summary = run(db, "summary")
    assert summary.recorded_from is not None and summary.recorded_from < summary.recorded_to  # type: ignore[operator]
    assert summary.amounts["invoice_issued"].startswith("26")


def test_exposure_of_the_book_and_of_a_buyer(db: str):
    book = run(db, "exposure", "--as-of", "2025-03-31")
    assert [row.buyer for row in book.buyers] == ["B1", "B2"]
    one = run(db, "exposure --buyer", "--buyer", "B1", "--as-of", "2025-03-31")
    assert one == book.buyers[0]


def test_exposure_diff(db: str):
    diff = run(db, "exposure --diff", "--diff", "--as-of", "2025-03-31", "--known-at", "2025-03-15", "--known-at", "2025-06-01")
    assert diff.known_at == ("2025-03-15T23:59:59.999999Z", "2025-06-01T23:59:59.999999Z")
    assert [change.buyer for change in diff.changes] == ["B1"]
    assert diff.changes[0].changed["outstanding"] == schemas.FieldChange("18000.00", "17000.00")
    assert [event["type"] for event in diff.changes[0].because] == ["payment_received"]


def test_obligations(db: str):
    duties = run(db, "obligations", "--as-of", "2025-12-31")
    assert {duty.kind for duty in duties} == {"report_overdue", "file_claim", "declare_turnover"}
    assert all((duty.buyer is msgspec.UNSET) == (duty.kind == "declare_turnover") for duty in duties)


def test_turnover(db: str):
    everywhere = run(db, "turnover", "--period", "2025-Q1")
    assert everywhere.country is msgspec.UNSET and everywhere.finding is not msgspec.UNSET
    gb = run(db, "turnover", "--period", "2025-Q1", "--country", "GB")
    assert gb.country == "GB" and gb.declared == "20000.00"


def test_premium_with_and_without_lines(db: str):
    account = run(db, "premium", "--as-of", "2025-12-31")
    assert account.lines is msgspec.UNSET
    with_lines = run(db, "premium", "--as-of", "2025-12-31", "--lines")
    assert {line.kind for line in with_lines.lines} >= {"premium", "monitoring_fee"}


def test_claim_claims_and_the_explanation(db: str):
    register = run(db, "claims", "--as-of", "2025-12-31")
    b2 = run(db, "claim", "B2", "--as-of", "2025-12-31")
    assert b2 in register and b2.cause == "insolvency"
    explained = run(db, "claim --explain", "B2", "--as-of", "2025-12-31", "--explain")
    assert explained.invoices[0].invoice == "J1" and explained.steps and explained.recovery_shares
    before_loss = run(db, "claim", "B2", "--as-of", "2025-03-31")
    assert before_loss.loss_date == "" and before_loss.cause == ""


def test_scenario_run():
    results = decoded("scenario run", cli("scenario", "run", str(ROOT / "tests/data/scenarios"), "--json").stdout)
    assert results and all(result.failures == () for result in results)


def erp_ledger(folder: Path) -> str:
    """A fresh ledger holding examples/erp/book.toml: the policy and three buyers with limits."""
    path = str(folder / "erp.db")
    cli("init", "--db", path)
    cli("import", str(ERP / "book.toml"), "--db", path)
    return path


def import_erp(db: str, name: str, csv_file: Path, *args: str, ok: bool = True) -> Any:
    command = ["import-erp", str(csv_file), "--mapping", str(ERP / "mapping.toml"), *args, "--json", "--db", db]
    return decoded(name, cli(*command, ok=ok).stdout)


def test_import_erp_dry_run_import_and_again(tmp_path: Path):
    db = erp_ledger(tmp_path)
    trial = import_erp(db, "import-erp --dry-run", ERP / "invoices.csv", "--dry-run")
    assert [row.line for row in trial.would_record] == [2, 3, 4, 5] and trial.skipped == trial.rejected == ()
    printed = json.loads(cli("import-erp", str(ERP / "invoices.csv"), "--mapping", str(ERP / "mapping.toml"),
                             "--dry-run", "--json", "--db", db).stdout)
    for row in printed["would_record"]:  # each event as log prints it: its own fields read back by name
        assert json.loads(msgspec.json.encode(to_public(parse_event(row["event"], "GBP"), "GBP"))) == row["event"]
    outcome = import_erp(db, "import-erp", ERP / "invoices.csv")
    assert len(outcome.recorded) == 4 and outcome.rejected == () and outcome.rejects_file is msgspec.UNSET
    assert {row.event.id for row in trial.would_record}.isdisjoint(outcome.recorded)  # a dry run's ids are provisional
    again = import_erp(db, "import-erp", ERP / "invoices.csv")
    assert again.recorded == () and [s.key for s in again.skipped][0] == "ERP-RE-2025-0001"
    trial = import_erp(db, "import-erp --dry-run", ERP / "invoices.csv", "--dry-run")
    assert trial.would_record == () and [(s.line, s.key) for s in trial.skipped][0] == (2, "ERP-RE-2025-0001")


def test_import_erp_rejected_rows(tmp_path: Path):
    db = erp_ledger(tmp_path)
    payments = tmp_path / "payments.csv"
    payments.write_text("Zahlungsnr;Kundennr;Zahlungsdatum;Rechnungsnr;Betrag\n"
                        "ZE-1;B-1001;14/03/2025;;100,00\n"
                        "ZE-2;B-9999;14/03/2025;;100,00\n"  # not a registered buyer
                        "ZE-3;B-1001;14/03/2025\n", encoding="utf-8")  # too few cells: no field to name
    trial = import_erp(db, "import-erp --dry-run", payments, "--dry-run", ok=False)
    assert [(r.line, r.field) for r in trial.rejected] == [(3, "buyer"), (4, msgspec.UNSET)]
    outcome = import_erp(db, "import-erp", payments, "--skip-bad")
    assert len(outcome.recorded) == 1 and [r.line for r in outcome.rejected] == [3, 4]
    assert outcome.rejects_file == str(tmp_path / "payments.rejects.csv")
    assert outcome.rejected[0].message.endswith(f"{outcome.rejected[0].field}: {outcome.rejected[0].reason}")


def test_verify_clean_and_with_findings(db: str, tmp_path: Path):
    report = run(db, "verify")
    assert report.clean and report.findings == () and report.checks == ("chain", "read_models")
    assert report.events == report.head.notification_id > len(EVENTS)
    bogus = run(db, "verify", "--expect-head", "f" * 64, ok=False)  # a head this chain never had
    assert not bogus.clean and [(f.check, f.problem) for f in bogus.findings] == [("head", "head")]
    assert bogus.findings[0].notification_id is bogus.findings[0].event_id is msgspec.UNSET
    tampered = tmp_path / "tampered.db"
    with sqlite3.connect(db) as source, sqlite3.connect(tampered) as copy:
        source.backup(copy)  # the whole database, whatever its WAL still holds
    with sqlite3.connect(tampered) as edit:  # an amount changed behind the ledger's back
        (n,) = edit.execute("SELECT notification_id FROM ledger_index WHERE key = 'ERP-I1'").fetchone()
        (state,) = edit.execute("SELECT state FROM stored_events WHERE rowid = ?", [n]).fetchone()
        edit.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", [state.replace(b"800000", b"900000"), n])
    found = run(str(tampered), "verify", ok=False)
    # The read models, stored in the file, were folded from the event as it was recorded: the exposure
    # timeline of its buyer, and in the book read model its buyer's sales and the book's they add to.
    assert not found.clean and [f.check for f in found.findings] == ["chain"] + ["read_models"] * 3
    assert [f.message.split(" of buyer ")[0] for f in found.findings[1:3]] == [
        "the exposure read model", "the book read model"]
    assert (found.findings[0].problem, found.findings[0].notification_id, found.findings[0].key) == ("changed", n, "ERP-I1")
    assert found.head == schemas.Head(0, "0" * 64)  # a broken chain vouches for no head


def test_copy(db: str, tmp_path: Path):
    copy = str(tmp_path / "copy.db")
    result = cli("copy", "--from", db, "--to", copy, "--json")
    report = decoded("copy", result.stdout)
    with Ledger(db) as source:
        assert report.verified and report.differences == () and report.copied == source.count()


def test_the_json_is_the_encoded_answer(db: str):
    """`--json` prints the query's typed answer, encoded: the very object the library returns."""
    asked = [
        (["summary"], "summary", {}),
        (["exposure", "--as-of", "2025-03-31"], "exposure", {"as_of": "2025-03-31"}),
        (["exposure", "--diff", "--as-of", "2025-03-31", "--known-at", "2025-06-01", "--known-at", "2025-03-15"],
         "exposure_diff", {"as_of": "2025-03-31", "known_at": ["2025-06-01", "2025-03-15"]}),
        (["turnover", "--period", "2025-Q1", "--country", "GB"], "turnover", {"period": "2025-Q1", "country": "GB"}),
        (["premium", "--as-of", "2025-12-31", "--lines"], "premium", {"as_of": "2025-12-31"}),
        (["claim", "B2", "--as-of", "2025-12-31", "--explain"], "claim",
         {"buyer": "B2", "as_of": "2025-12-31", "explain": True}),
    ]
    for command, query, arguments in asked:
        printed = cli(*command, "--json", "--db", db).stdout
        with Ledger(db) as ledger:
            answer = run_query(query, ledger, arguments)
        assert printed == msgspec.json.encode(answer).decode() + "\n", command
    lists = [(["obligations", "--as-of", "2025-12-31"], "obligations", "obligations"),
             (["claims", "--as-of", "2025-12-31"], "claims", "claims")]
    for command, query, field in lists:  # these two print the answer's one list
        printed = cli(*command, "--json", "--db", db).stdout
        with Ledger(db) as ledger:
            answer = run_query(query, ledger, {"as_of": "2025-12-31"})
        assert printed == msgspec.json.encode(getattr(answer, field)).decode() + "\n", command


def test_what_the_cli_shows_is_in_the_answer(db: str):
    """`--open` and `--lines` are query arguments: the answer holds what the command shows."""
    with Ledger(db) as ledger:
        every = run_query("obligations", ledger, {"as_of": "2025-12-31"})
        pending = run_query("obligations", ledger, {"as_of": "2025-12-31", "open": True})
        bare = run_query("premium", ledger, {"as_of": "2025-12-31", "lines": False})
        lined = run_query("premium", ledger, {"as_of": "2025-12-31"})  # lines by default
    assert isinstance(every, schemas.Obligations) and isinstance(pending, schemas.Obligations)
    assert {duty.status for duty in every.obligations} > {"pending"}
    assert pending.obligations == tuple(duty for duty in every.obligations if duty.status != "met")
    printed = cli("obligations", "--as-of", "2025-12-31", "--open", "--json", "--db", db).stdout
    assert printed == msgspec.json.encode(pending.obligations).decode() + "\n"
    assert isinstance(bare, schemas.Premium) and isinstance(lined, schemas.Premium)
    assert bare.lines is msgspec.UNSET and lined.lines and bare == msgspec.structs.replace(lined, lines=msgspec.UNSET)
    printed = cli("premium", "--as-of", "2025-12-31", "--json", "--db", db).stdout
    assert printed == msgspec.json.encode(bare).decode() + "\n"


def test_declare_renders_the_declaration_answer(db: str):
    with Ledger(db) as ledger:
        answer = run_query("declaration", ledger, {"period": "2025-Q1"})
    assert isinstance(answer, schemas.Declaration) and answer.countries
    printed = cli("declare", "--period", "2025-Q1", "--db", db).stdout.splitlines()
    assert printed[0] == "policy,period,country,currency,insurable_turnover"
    assert printed[1:] == [f"{answer.policy},2025-Q1,{row.country},{answer.currency},{row.insurable_turnover}"
                           for row in answer.countries]


# ---------------------------------------------------------------- the schemas themselves

def test_a_field_added_renamed_or_dropped_fails(db: str):
    text = cli("exposure", "--buyer", "B1", "--as-of", "2025-03-31", "--json", "--db", db).stdout
    row = json.loads(text)
    for changed in ({**row, "currency": "GBP"},
                    {("limit_amount" if k == "limit" else k): v for k, v in row.items()},
                    {k: v for k, v in row.items() if k != "headroom"},
                    {**row, "insured": 1500.0},  # money is never a float
                    {**row, "status": "asleep"}):
        with pytest.raises(msgspec.ValidationError):
            decoded("exposure --buyer", json.dumps(changed))


def json_commands() -> set[str]:
    """Every command path of the app that takes --json (found by walking it)."""
    found = set()

    def walk(command: Any, path: list[str]) -> None:
        if any("--json" in getattr(p, "opts", []) for p in getattr(command, "params", [])):
            found.add(" ".join(path))
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_json_command_has_a_schema():
    assert json_commands() == {name.split(" --")[0] for name in schemas.SCHEMAS}


def struct_fields(kind: Any, seen: dict[str, set[str]]) -> dict[str, set[str]]:
    """Each Struct reachable from `kind` with its field names."""
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        if kind.__name__ not in seen:
            seen[kind.__name__] = set(kind.__struct_fields__)
            for info in msgspec.structs.fields(kind):
                struct_fields(info.type, seen)
    for argument in get_args(kind) if get_origin(kind) is not None else ():
        struct_fields(argument, seen)
    return seen


def test_docs_name_every_field_of_every_schema():
    text = (ROOT / "docs/json.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    for name in schemas.SCHEMAS:
        assert f"`{name}`" in text, f"docs/json.md has no section for {name}"
    every: dict[str, set[str]] = {}
    for kind in schemas.SCHEMAS.values():
        struct_fields(kind, every)
    assert len(every) > 20
    for struct, fields in every.items():
        assert fields <= documented, f"{struct}: {sorted(fields - documented)} not in docs/json.md"


def test_schemas_export_as_json_schema():
    for name, kind in schemas.SCHEMAS.items():
        exported = msgspec.json.schema(kind)
        assert exported, name

"""ERP imports (issue 7): the mapping's refusals, each format conversion, the CLI's
all-or-nothing import, the dry run, --skip-bad with its reject file, re-imports,
and the examples of examples/erp imported as a user would."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.adapters.erp import ErpMapping, load_mapping, parse_mapping, read_export
from ledger.adapters.policyfile import load_policy_file
from ledger.cli import main
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "erp"
MAPPING = EXAMPLES / "mapping.toml"
INVOICE_HEADER = "Kundennr;Kunde;Belegnr;Belegdatum;Lieferdatum;Fällig am;Betrag;Währung"
PAYMENT_HEADER = "Zahlungsnr;Kundennr;Zahlungsdatum;Rechnungsnr;Betrag"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A ledger with the SPEC 4 policy and the three buyers of examples/erp/book.toml."""
    path = str(tmp_path / "erp.db")
    cli("init", "--db", path)
    cli("import", str(EXAMPLES / "book.toml"), "--db", path)
    return path


def write(tmp_path: Path, name: str, *lines: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def events(db: str, event_type: str | None = None) -> list[dict[str, Any]]:
    args = ["log", "--json", "--db", db] + (["--type", event_type] if event_type else [])
    return list(json.loads(cli(*args).stdout))


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI through `main` as a user does: exit code, stdout, stderr."""
    import sys

    old = sys.argv
    sys.argv = ["creditledger", *args]
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def mapping(**changes: Any) -> dict[str, Any]:
    """A valid mapping document (one invoices export) with `changes` merged in by dotted key."""
    document: dict[str, Any] = {
        "format": {"delimiter": ";", "date": "%d/%m/%Y", "decimal_separator": ",", "thousands_separator": "."},
        "exports": {"invoices": {
            "event": "invoice_issued", "key_columns": "No",
            "columns": {"Customer": "buyer", "No": "invoice", "Date": "effective", "Due": "due", "Total": "amount"},
        }},
    }
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        table = document
        for part in path:
            table = table.setdefault(part, {})
        if value is None:
            table.pop(last, None)
        else:
            table[last] = value
    return document


# ---------------------------------------------------------------- the mapping


def test_the_example_mapping_and_book_use_the_spec_4_policy():
    load_mapping(MAPPING)
    import tomllib

    book = tomllib.loads((EXAMPLES / "book.toml").read_text())
    from ledger.vocabulary.terms import parse_policy

    assert parse_policy(book["policy"]) == load_policy_file(POLICY_FILE)


@pytest.mark.parametrize(("changes", "key", "rule"), [
    ({"columns": {}}, "columns", "is not a key of the mapping"),
    ({"format.quote": '"'}, "format.quote", "is not a key"),
    ({"exports.invoices.sheet": "1"}, "exports.invoices.sheet", "is not a key"),
    ({"exports": None}, "exports", "is required"),
    ({"exports": {}}, "exports", "at least one"),
    ({"exports.invoices.event": None}, "exports.invoices.event", "is required"),
    ({"exports.invoices.event": "limit_granted"}, "exports.invoices.event", "is not one of"),
    ({"exports.invoices.columns": None}, "exports.invoices.columns", "is required"),
    ({"exports.invoices.columns.Note": "memo"}, "exports.invoices.columns.Note", "is not a field of invoice_issued"),
    ({"exports.invoices.columns.Stamp": "recorded"}, "exports.invoices.columns.Stamp", "cannot be mapped"),
    ({"exports.invoices.columns.Ref": "key"}, "exports.invoices.columns.Ref", "use key_columns"),
    ({"exports.invoices.columns.Total2": "amount"}, "exports.invoices.columns.Total2", "already fed"),
    ({"exports.invoices.columns.Due": None}, "exports.invoices.columns", "invoice_issued needs due"),
    ({"exports.invoices.constants.due": "2025-03-01"}, "exports.invoices.constants.due", "also fed by a column"),
    ({"exports.invoices.constants.prepaid": 1}, "exports.invoices.constants.prepaid", "must be a string"),
    ({"exports.invoices.key_columns": None}, "exports.invoices.key_columns", "importing the file again"),
    ({"exports.invoices.key_columns": []}, "exports.invoices.key_columns", "a header or a list"),
    ({"exports.invoices.amounts_negative": "yes"}, "exports.invoices.amounts_negative", "true or false"),
    ({"exports.invoices.event_column": "Kind"}, "exports.invoices.event_column", "not with event"),
    ({"format.delimiter": ";;"}, "format.delimiter", "one character"),
    ({"format.encoding": "klingon"}, "format.encoding", "is not an encoding"),
    ({"format.date": "%d/%m"}, "format.date", "whole date"),
    ({"format.date": "%d/%m/%Y%d"}, "format.date", "whole date"),  # a directive twice: found by the long fuzz run
    ({"format.date": 20250101}, "format.date", "must be a string"),
    ({"format.decimal_separator": ";"}, "format.decimal_separator", "is not one of"),
    ({"format.thousands_separator": "_"}, "format.thousands_separator", "is not one of"),
    ({"format.thousands_separator": ","}, "format.thousands_separator", "same as the decimal"),
])
def test_a_bad_mapping_is_refused_naming_the_key(changes: dict[str, Any], key: str, rule: str):
    with pytest.raises(LedgerError) as caught:
        parse_mapping(mapping(**changes))
    assert caught.value.field == key, str(caught.value)
    assert rule in caught.value.message


def test_a_mixed_export_needs_its_document_types_and_each_event_complete():
    mixed = {"event": None, "event_column": "Kind", "events": {"RE": "invoice_issued", "ZE": "payment_received"}}
    assert parse_mapping(mapping(**{f"exports.invoices.{k}": v for k, v in mixed.items()})).exports
    with pytest.raises(LedgerError, match="is required with event_column") as caught:
        parse_mapping(mapping(**{"exports.invoices.event": None, "exports.invoices.event_column": "Kind"}))
    assert caught.value.field == "exports.invoices.events"
    bad = {**mixed, "events": {"RE": "invoice_issued", "XX": "insolvency"}}
    with pytest.raises(LedgerError) as caught:
        parse_mapping(mapping(**{f"exports.invoices.{k}": v for k, v in bad.items()}))
    assert caught.value.field == "exports.invoices.events.XX"


def test_a_mapping_that_is_not_toml_is_refused_with_its_line(tmp_path: Path):
    path = tmp_path / "map.toml"
    path.write_text('[format]\ndelimiter = ";"\ndate = \n')
    with pytest.raises(LedgerError) as caught:
        load_mapping(path)
    assert caught.value.source == str(path) and caught.value.line == 3


# ---------------------------------------------------------------- conversions


def read_one(tmp_path: Path, document: dict[str, Any], *lines: str, encoding: str = "utf-8") -> dict[str, Any]:
    """The raw event of the one data row of `lines`, read through `document`."""
    erp: ErpMapping = parse_mapping(document)
    file = read_export(write(tmp_path, "export.csv", *lines, encoding=encoding), erp)
    assert len(file.rows) == 1
    row = file.rows[0]
    if row.error:
        raise row.error
    assert row.raw is not None
    return row.raw


@pytest.mark.parametrize(("date_format", "written", "iso"), [
    ("%d/%m/%Y", "31/12/2025", "2025-12-31"),
    ("%d.%m.%Y", "01.02.2025", "2025-02-01"),
    ("%m/%d/%Y", "02/01/2025", "2025-02-01"),
    ("%Y%m%d", "20250201", "2025-02-01"),
    ("%d-%b-%y", "05-Mar-25", "2025-03-05"),
])
def test_dates_are_read_in_the_mapping_format(tmp_path: Path, date_format: str, written: str, iso: str):
    document = mapping(**{"format.date": date_format})
    raw = read_one(tmp_path, document, "Customer;No;Date;Due;Total", f"B1;I1;{written};{written};1,00")
    assert raw["effective"] == raw["due"] == iso


@pytest.mark.parametrize("written", ["31/02/2025", "2025-12-31", "31/12/25", "tomorrow"])
def test_a_date_not_in_the_mapping_format_is_refused_naming_field_and_column(tmp_path: Path, written: str):
    with pytest.raises(LedgerError) as caught:
        read_one(tmp_path, mapping(), "Customer;No;Date;Due;Total", f"B1;I1;01/01/2025;{written};1,00")
    assert caught.value.field == "due" and "'Due'" in caught.value.message and "%d/%m/%Y" in caught.value.message
    assert caught.value.line == 2


@pytest.mark.parametrize(("decimal", "thousands", "written", "canonical"), [
    (",", ".", "1.234,56", "1234.56"),
    (",", ".", "1234,56", "1234.56"),
    (",", ".", "1.234.567", "1234567"),
    (",", " ", "1 234,5", "1234.5"),
    (".", ",", "1,234.56", "1234.56"),
    (".", "'", "12'345.00", "12345.00"),
    (".", "", "1234.56", "1234.56"),
])
def test_numbers_are_read_in_the_mapping_format(tmp_path: Path, decimal: str, thousands: str, written: str,
                                                canonical: str):
    document = mapping(**{"format.decimal_separator": decimal, "format.thousands_separator": thousands})
    raw = read_one(tmp_path, document, "Customer;No;Date;Due;Total", f'B1;I1;01/01/2025;01/03/2025;"{written}"')
    assert raw["amount"] == canonical


@pytest.mark.parametrize(("decimal", "thousands", "written"), [
    (",", ".", "1,234.56"),   # the other convention: refused, never misread as 1.23456
    (",", ".", "12.34,56"),   # groups of three or none
    (",", ".", "1.2345"),
    (".", ",", "1.234,56"),
    (".", "", "1,234.56"),
    (",", ".", "EUR 5,00"),
    (",", ".", ""),            # empty is absent: amount is then required
])
def test_a_number_not_in_the_mapping_format_is_refused(tmp_path: Path, decimal: str, thousands: str, written: str):
    document = mapping(**{"format.decimal_separator": decimal, "format.thousands_separator": thousands})
    file = read_export(write(tmp_path, "e.csv", "Customer;No;Date;Due;Total",
                            f'B1;I1;01/01/2025;01/03/2025;"{written}"'), parse_mapping(document))
    row = file.rows[0]
    if written:
        assert row.error is not None and row.error.field == "amount" and row.error.line == 2
        assert "not a number written like 1" in row.error.message
    else:
        assert row.raw is not None and "amount" not in row.raw  # the ledger refuses it as required


def test_negative_amounts_only_where_the_mapping_says_the_export_writes_them(tmp_path: Path):
    lines = ("Customer;No;Date;Due;Total", "B1;I1;01/01/2025;01/03/2025;-500,00")
    with pytest.raises(LedgerError, match="is negative"):
        read_one(tmp_path, mapping(), *lines)
    negative = mapping(**{"exports.invoices.amounts_negative": True})
    assert read_one(tmp_path, negative, *lines)["amount"] == "500.00"
    with pytest.raises(LedgerError, match="is not negative"):
        read_one(tmp_path, negative, "Customer;No;Date;Due;Total", "B1;I1;01/01/2025;01/03/2025;500,00")


def test_encoding_delimiter_quoting_constants_and_key_come_from_the_mapping(tmp_path: Path):
    document = mapping(**{
        "format.encoding": "cp1252", "format.delimiter": "\t",
        "exports.invoices.columns": {"Kunde": "buyer", "Nr": "invoice", "Datum": "effective", "Fällig": "due",
                                     "Betrag": "amount"},
        "exports.invoices.key_columns": ["Kunde", "Nr"], "exports.invoices.key_prefix": "SAP:",
        "exports.invoices.constants": {"prepaid": True},
    })
    raw = read_one(tmp_path, document, "Kunde\tNr\tDatum\tFällig\tBetrag\tBemerkung",
                   'B1\tI1\t01/01/2025\t01/03/2025\t"1.000,00"\tMüller, «bar»', encoding="cp1252")
    assert raw == {"type": "invoice_issued", "prepaid": True, "buyer": "B1", "invoice": "I1",
                   "effective": "2025-01-01", "due": "2025-03-01", "amount": "1000.00", "key": "SAP:B1/I1"}


def test_a_byte_order_mark_is_not_part_of_the_first_header(tmp_path: Path):
    raw = read_one(tmp_path, mapping(), "\ufeffCustomer;No;Date;Due;Total", "B1;I1;01/01/2025;01/03/2025;1,00")
    assert raw["buyer"] == "B1"


def test_text_in_another_encoding_is_refused_with_its_line(tmp_path: Path):
    path = write(tmp_path, "e.csv", "Customer;No;Date;Due;Total", "Müller;I1;01/01/2025;01/03/2025;1,00",
                 encoding="cp1252")
    with pytest.raises(LedgerError, match="is not utf-8") as caught:
        read_export(path, parse_mapping(mapping()))
    assert caught.value.line == 2


def test_the_export_is_chosen_by_the_header_or_by_name(tmp_path: Path):
    erp = load_mapping(MAPPING)
    assert read_export(EXAMPLES / "payments.csv", erp).export.name == "payments"
    assert read_export(EXAMPLES / "invoices.csv", erp, "invoices").export.event == "invoice_issued"
    with pytest.raises(LedgerError, match="has no column 'Belegdatum'"):
        read_export(EXAMPLES / "payments.csv", erp, "invoices")
    with pytest.raises(LedgerError, match="fits no export") as caught:
        read_export(write(tmp_path, "x.csv", "Kundennr;Betrag", "B-1001;1,00"), erp)
    assert caught.value.line == 1
    with pytest.raises(LedgerError) as unknown:
        read_export(EXAMPLES / "payments.csv", erp, "orders")
    assert unknown.value.field == "export"


def test_a_mixed_export_gives_each_row_its_event_and_only_its_fields(tmp_path: Path):
    document = mapping(**{
        "exports.invoices.event": None, "exports.invoices.event_column": "Kind",
        "exports.invoices.events": {"RE": "invoice_issued", "ZE": "payment_received"},
    })
    erp = parse_mapping(document)
    file = read_export(write(tmp_path, "m.csv", "Kind;Customer;No;Date;Due;Total",
                             "RE;B1;I1;01/01/2025;01/03/2025;10,00", "ZE;B1;I1;02/01/2025;01/03/2025;4,00",
                             "XX;B1;I2;02/01/2025;;4,00"), erp)
    first, second, third = file.rows
    assert first.raw is not None and first.raw["type"] == "invoice_issued" and first.raw["due"] == "2025-03-01"
    assert second.raw is not None and second.raw["type"] == "payment_received" and "due" not in second.raw
    assert third.error is not None and third.error.field == "type" and third.error.line == 4


# ---------------------------------------------------------------- the command


def test_the_examples_import_cleanly_and_give_the_expected_exposure(db: str):
    for name in ("invoices", "credit_notes", "payments"):
        cli("import-erp", str(EXAMPLES / f"{name}.csv"), "--mapping", str(MAPPING), "--db", db)
    assert len(events(db, "invoice_issued")) == 4
    credit = events(db, "credit_note_issued")
    assert [(c["buyer"], c["invoice"], c["amount"], c["key"]) for c in credit] == [
        ("B-1001", "RE-2025-0002", "500.00", "ERP-GS-2025-0001")]
    exposure = json.loads(cli("exposure", "--as-of", "2025-04-30", "--json", "--db", db).stdout)
    # 1234.56 + 12500 + 8760.40 + 3050 invoiced, 500 credited, 1234.56 + 4000 + 1000 paid.
    assert exposure["outstanding"] == "18810.40"


def test_re_importing_an_export_records_nothing(db: str):
    args = ("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(MAPPING), "--db", db, "--json")
    first = json.loads(cli(*args).stdout)
    again = json.loads(cli(*args).stdout)
    assert len(first["recorded"]) == 4 and first["rejected"] == []
    assert again["recorded"] == [] and [s["key"] for s in again["skipped"]] == [
        "ERP-RE-2025-0001", "ERP-RE-2025-0002", "ERP-RE-2025-0003", "ERP-RE-2025-0004"]
    assert len(events(db, "invoice_issued")) == 4


def bad_invoices(tmp_path: Path) -> Path:
    return write(
        tmp_path, "invoices.csv", INVOICE_HEADER,
        "B-1001;Acme;RE-1;15/01/2025;;16/03/2025;1.000,00;GBP",
        "B-1001;Acme;RE-2;31/02/2025;;16/03/2025;2.000,00;GBP",     # no such date
        "B-9999;Nobody;RE-3;15/01/2025;;16/03/2025;3.000,00;GBP",  # the ledger: not a registered buyer
        "B-1002;Brandt;RE-4;15/01/2025;;16/03/2025;4.000,00;GBP",
    )


def test_bad_rows_are_each_named_by_file_and_line_and_nothing_is_recorded(db: str, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]):
    before = len(events(db))
    path = bad_invoices(tmp_path)
    code, _, err = run("import-erp", str(path), "--mapping", str(MAPPING), "--db", db, capsys=capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"rejected: {path}:3: effective: '31/02/2025' (column 'Belegdatum')")
    assert lines[1].startswith(f"rejected: {path}:4: buyer: B-9999 is not a registered buyer")
    assert lines[2] == f"error: {path}: 2 of 4 rows rejected; nothing recorded (fix them, or --skip-bad to record the good rows)"
    assert "Traceback" not in err and len(events(db)) == before


def test_every_refusal_of_the_ledger_applies_to_an_erp_row(db: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]):
    cli("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(MAPPING), "--db", db)
    path = write(tmp_path, "payments.csv", PAYMENT_HEADER, "Z-1;B-1001;14/03/2025;RE-2025-0001;1.234,57")
    code, _, err = run("import-erp", str(path), "--mapping", str(MAPPING), "--db", db, capsys=capsys)
    assert code == 1
    assert f"{path}:2: amount: 1234.57 is more than the 1234.56 open on invoice RE-2025-0001" in err
    assert events(db, "payment_received") == []


def test_a_dry_run_prints_what_would_be_recorded_and_records_nothing(db: str, capsys: pytest.CaptureFixture[str]):
    before = len(events(db))
    code, out, _ = run("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(MAPPING), "--db", db,
                       "--dry-run", "--json", capsys=capsys)
    assert code == 0
    data = json.loads(out)
    assert [(r["line"], r["event"]["invoice"], r["event"]["amount"]) for r in data["would_record"]] == [
        (2, "RE-2025-0001", "1234.56"), (3, "RE-2025-0002", "12500.00"), (4, "RE-2025-0003", "8760.40"),
        (5, "RE-2025-0004", "3050.00")]
    assert data["would_record"][2]["event"]["delivered"] == "2025-02-10"  # empty cell: the issue date
    assert len(events(db)) == before
    code, out, _ = run("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(MAPPING), "--db", db,
                       "--dry-run", capsys=capsys)
    assert code == 0 and "would record 4 events" in out and "RE-2025-0004" in out
    assert len(events(db)) == before


def test_a_dry_run_checks_against_the_ledger_and_lists_the_bad_rows(db: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]):
    path = bad_invoices(tmp_path)
    code, out, err = run("import-erp", str(path), "--mapping", str(MAPPING), "--db", db, "--dry-run",
                         capsys=capsys)
    assert code == 1
    assert "would record 2 events, skip 0 already recorded, reject 2 rows" in out
    assert f"{path}:4: buyer: B-9999" in err and "would be rejected" in err
    code, _, _ = run("import-erp", str(path), "--mapping", str(MAPPING), "--db", db, "--dry-run", "--skip-bad",
                     capsys=capsys)
    assert code == 0
    assert events(db, "invoice_issued") == [] and not (tmp_path / "invoices.rejects.csv").exists()


def test_skip_bad_records_the_good_rows_and_writes_the_bad_ones_with_a_reason(db: str, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]):
    path = bad_invoices(tmp_path)
    code, out, err = run("import-erp", str(path), "--mapping", str(MAPPING), "--db", db, "--skip-bad",
                         capsys=capsys)
    assert code == 0
    assert "recorded 2 events" in out and f"rejected 2 rows, written with their reason to {tmp_path}" in out
    assert [e["invoice"] for e in events(db, "invoice_issued")] == ["RE-1", "RE-4"]
    with (tmp_path / "invoices.rejects.csv").open(encoding="utf-8-sig", newline="") as handle:
        rejected = list(csv.reader(handle, delimiter=";"))
    assert rejected[0] == [*INVOICE_HEADER.split(";"), "reject_reason"]
    assert rejected[1][:-1] == "B-1001;Acme;RE-2;31/02/2025;;16/03/2025;2.000,00;GBP".split(";")
    assert rejected[1][-1].startswith("line 3: effective: '31/02/2025'")
    assert rejected[2][2] == "RE-3" and rejected[2][-1].startswith("line 4: buyer: B-9999 is not a registered")
    assert len(rejected) == 3


def test_rows_that_depend_on_a_rejected_row_are_rejected_too_and_say_which(db: str, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]):
    # A mixed export (document type per row): the payment and the credit note need the invoice of line 2.
    document = (
        '[format]\ndelimiter = ";"\ndate = "%d/%m/%Y"\ndecimal_separator = ","\nthousands_separator = "."\n'
        '[exports.journal]\nevent_column = "Art"\nkey_columns = "Beleg"\n'
        'events = { RE = "invoice_issued", GS = "credit_note_issued", ZE = "payment_received" }\n'
        '[exports.journal.columns]\n"Kunde" = "buyer"\n"Rechnung" = "invoice"\n"Datum" = "effective"\n'
        '"Fällig" = "due"\n"Betrag" = "amount"\n'
    )
    map_path = tmp_path / "journal.toml"
    map_path.write_text(document, encoding="utf-8")
    path = write(tmp_path, "journal.csv", "Art;Beleg;Kunde;Rechnung;Datum;Fällig;Betrag",
                 "RE;R-1;B-1001;I-1;15/01/2025;16/03/2025;1.000,00,00",   # a bad amount
                 "RE;R-2;B-1001;I-2;15/01/2025;16/03/2025;2.000,00",
                 "GS;G-1;B-1001;I-1;20/01/2025;;100,00",
                 "ZE;Z-1;B-1001;I-1;01/02/2025;;900,00",
                 "ZE;Z-2;B-1001;I-2;01/02/2025;;2.000,00")
    rejects = tmp_path / "out" / "bad.csv"
    rejects.parent.mkdir()
    result = json.loads(cli("import-erp", str(path), "--mapping", str(map_path), "--db", db, "--skip-bad",
                            "--rejects", str(rejects), "--json").stdout)
    assert [(r["line"], r["field"]) for r in result["rejected"]] == [(2, "amount"), (4, "invoice"), (5, "invoice")]
    assert all("its invoice was rejected on line 2" in r["reason"] for r in result["rejected"][1:])
    assert result["rejects_file"] == str(rejects)
    assert [(e["type"], e.get("invoice")) for e in events(db) if e["type"] != "buyer_registered"
            and e["type"] != "limit_granted" and e["type"] != "policy_started"] == [
        ("invoice_issued", "I-2"), ("payment_received", "I-2")]
    # Fixed in the reject file (its extra column is not mapped), the three rows import together.
    text = rejects.read_text(encoding="utf-8-sig").replace("1.000,00,00", "1.000,00")
    rejects.write_text(text, encoding="utf-8")
    again = json.loads(cli("import-erp", str(rejects), "--mapping", str(map_path), "--db", db, "--json").stdout)
    assert len(again["recorded"]) == 3 and again["rejected"] == []


def test_rejects_without_skip_bad_and_an_export_without_rows_are_refused(db: str, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]):
    code, _, err = run("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(MAPPING), "--db", db,
                       "--rejects", str(tmp_path / "r.csv"), capsys=capsys)
    assert code == 1 and "rejects: --rejects goes with --skip-bad" in err
    empty = write(tmp_path, "empty.csv", INVOICE_HEADER)
    code, _, err = run("import-erp", str(empty), "--mapping", str(MAPPING), "--db", db, capsys=capsys)
    assert code == 1 and f"{empty}: has no rows" in err


def test_a_row_with_the_wrong_number_of_cells_is_a_bad_row(db: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]):
    path = write(tmp_path, "invoices.csv", INVOICE_HEADER, "B-1001;Acme;RE-1;15/01/2025;;16/03/2025;1.000,00")
    code, _, err = run("import-erp", str(path), "--mapping", str(MAPPING), "--db", db, capsys=capsys)
    assert code == 1 and f"{path}:2: has 7 cells; the header row has 8" in err


def test_the_mapping_is_checked_before_the_ledger_is_touched(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "map.toml"
    bad.write_text('[exports.x]\nevent = "invoice_issued"\nkey_columns = "No"\n[exports.x.columns]\nNo = "invoce"\n')
    code, _, err = run("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(bad),
                       "--db", str(tmp_path / "none.db"), capsys=capsys)
    assert code == 1
    assert err.startswith(f"error: {bad}:5: exports.x.columns.No: 'invoce' is not a field of invoice_issued")


def test_the_ledger_api_trial_records_nothing_and_collects_every_refusal(tmp_path: Path):
    with Ledger("memory") as ledger:
        ledger.load_policy(load_policy_file(POLICY_FILE))
        raws = [
            {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "A", "country": "GB"},
            {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B2", "invoice": "I1", "amount": "5",
             "due": "2025-02-10"},
            {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "5",
             "due": "2025-02-10"},
            {"type": "payment_received", "effective": "2025-01-20", "buyer": "B1", "invoice": "I1", "amount": "6"},
        ]
        drafts = ledger.parse(list(enumerate(raws, 1)), "t")
        trial = ledger.trial(drafts)
        assert [d.line for d in trial.admitted] == [1, 3]
        assert [(r.draft.line, r.problem.field) for r in trial.refused] == [(2, "buyer"), (4, "amount")]
        assert ledger.count() == 1


def test_the_example_in_docs_erp_md_is_the_example_in_examples_erp():
    import re
    import tomllib

    text = (Path(__file__).resolve().parent.parent / "docs" / "erp.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    documented = parse_mapping(tomllib.loads(block.group(1)), str(MAPPING))
    assert documented == load_mapping(MAPPING)
    csv_block = re.search(r"`invoices.csv`.*?```\n(.*?)```", text, re.S)
    assert csv_block is not None
    assert csv_block.group(1).splitlines() == (EXAMPLES / "invoices.csv").read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------- comma-separated, and reject files as the input was

US_MAPPING = (
    '[format]\ndelimiter = ","\ndate = "%m/%d/%Y"\ndecimal_separator = "."\nthousands_separator = ","\n'
    '[exports.invoices]\nevent = "invoice_issued"\nkey_columns = "Invoice"\n'
    '[exports.invoices.columns]\nCustomer = "buyer"\nInvoice = "invoice"\n"Invoice Date" = "effective"\n'
    '"Due Date" = "due"\nAmount = "amount"\n'
)
US_HEADER = "Customer,Invoice,Invoice Date,Due Date,Amount"


def test_a_comma_separated_export_with_quoted_thousands_separators_imports(db: str, tmp_path: Path):
    """An ordinary US export: cells separated by ',', "2,345.67" quoted, dates 01/15/2025 (docs/erp.md's)."""
    import re
    import tomllib

    text = (Path(__file__).resolve().parent.parent / "docs" / "erp.md").read_text(encoding="utf-8")
    block = re.search(r"## A comma-separated export\n.*?```toml\n(.*?)```", text, re.S)
    assert block is not None and tomllib.loads(block.group(1)) == tomllib.loads(US_MAPPING)
    mapping = tmp_path / "us.toml"
    mapping.write_text(US_MAPPING, encoding="utf-8")
    path = write(tmp_path, "invoices.csv", US_HEADER,
                 'B-1001,INV-1,01/15/2025,03/16/2025,"2,345.67"',
                 "B-1002,INV-2,01/20/2025,03/21/2025,999.00",
                 'B-1002,INV-3,01/21/2025,03/22/2025,"1,002,003.04"')
    result = json.loads(cli("import-erp", str(path), "--mapping", str(mapping), "--db", db, "--json").stdout)
    assert len(result["recorded"]) == 3 and result["rejected"] == []
    assert [(e["invoice"], e["effective"], e["due"], e["amount"]) for e in events(db, "invoice_issued")] == [
        ("INV-1", "2025-01-15", "2025-03-16", "2345.67"),
        ("INV-2", "2025-01-20", "2025-03-21", "999.00"),
        ("INV-3", "2025-01-21", "2025-03-22", "1002003.04"),
    ]


def test_an_unquoted_number_in_a_comma_separated_export_is_refused_with_the_cure(db: str, tmp_path: Path,
                                                                                 capsys: pytest.CaptureFixture[str]):
    mapping = tmp_path / "us.toml"
    mapping.write_text(US_MAPPING, encoding="utf-8")
    path = write(tmp_path, "invoices.csv", US_HEADER, "B-1001,INV-1,01/15/2025,03/16/2025,2,345.67")
    before = len(events(db))
    code, _, err = run("import-erp", str(path), "--mapping", str(mapping), "--db", db, capsys=capsys)
    assert code == 1
    assert f"{path}:2: has 6 cells; the header row has 5 (a number written with ',' must be quoted, " in err
    assert '"1,234.56"' in err and len(err.splitlines()) == 1
    assert len(events(db)) == before


@pytest.mark.parametrize(("encoding", "bom"), [
    ("utf-8", b""),
    ("utf-8", b"\xef\xbb\xbf"),
    ("cp1252", b""),
    ("utf-16", b"\xff\xfe"),
    ("utf-16", b"\xfe\xff"),
    ("utf-16-le", b""),
])
def test_the_reject_file_keeps_the_encoding_and_byte_order_mark_of_the_export(db: str, tmp_path: Path,
                                                                               encoding: str, bom: bytes):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace('encoding = "utf-8"', f'encoding = "{encoding}"'),
                       encoding="utf-8")
    lines = [INVOICE_HEADER, "B-1001;Acme;RE-1;15/01/2025;;16/03/2025;1.000,00;GBP",
             "B-9999;Müller;RE-3;15/01/2025;;16/03/2025;3.000,00;GBP"]  # not a registered buyer
    text = "".join(line + "\r\n" for line in lines)
    body_codec = {b"\xfe\xff": "utf-16-be", b"\xff\xfe": "utf-16-le"}.get(bom, encoding)
    path = tmp_path / "invoices.csv"
    path.write_bytes(bom + text.encode(body_codec))
    cli("import-erp", str(path), "--mapping", str(mapping), "--db", db, "--skip-bad")
    written = (tmp_path / "invoices.rejects.csv").read_bytes()
    assert written.startswith(bom) and not written[len(bom):].startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"))
    rows = written[len(bom):].decode(body_codec).split("\r\n")
    assert rows[0] == INVOICE_HEADER + ";reject_reason"
    assert rows[1].startswith(lines[2] + ";line 3: buyer: B-9999")  # the row as read, ü and all
    # As the input was, so the mapping reads it again: the same row, the same reason.
    again = json.loads(cli("import-erp", str(tmp_path / "invoices.rejects.csv"), "--mapping", str(mapping),
                           "--db", db, "--dry-run", "--skip-bad", "--json").stdout)
    assert [(r["line"], r["field"]) for r in again["rejected"]] == [(2, "buyer")]

"""Hostile input through `import-erp` (issue 8): the CSV files of the hostile
corpus, every TOML file of the corpus given as a mapping, broken mappings,
and ERP exports with bad cells, bad encodings, a wrong delimiter and
over-long lines.

In-process through `main()` for every case, and as real subprocesses of the
installed script for a few. Each case must give exit 1, one line on stderr
naming the file, line and field where they exist, no traceback, and leave
the ledger's event count unchanged. Files are written in tmp_path at test
time (the 100 MB line too); nothing new is committed to the corpus.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)
from test_hostile import HOSTILE, assert_one_line_refusal, count, creditledger, run_main

from ledger.adapters.eventfiles import MAX_LINE_CHARS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "erp"
MAPPING_TEXT = (EXAMPLES / "mapping.toml").read_text(encoding="utf-8")
INVOICE_HEADER = "Kundennr;Kunde;Belegnr;Belegdatum;Lieferdatum;Fällig am;Betrag;Währung"
INVOICE = ["B-1001", "Acme Ltd", "RE-9001", "15/01/2025", "14/01/2025", "16/03/2025", "1.234,56", "GBP"]
PAYMENT_HEADER = "Zahlungsnr;Kundennr;Zahlungsdatum;Rechnungsnr;Betrag"
CREDIT_HEADER = "Gutschriftnr;Kundennr;Datum;Rechnungsnr;Betrag;Grund"

# The corpus's CSV files are event files (a type column, ISO dates, plain decimals). This mapping
# reads them as an ERP export would be read; the buyer_registered files' name cell is fed to an id
# (invoice), so that the characters in it meet the ledger's check of ids.
CORPUS_MAPPING = """
[exports.payments]
event_column = "type"
events = { payment_received = "payment_received" }
key_columns = ["buyer", "effective"]
[exports.payments.columns]
buyer = "buyer"
effective = "effective"
amount = "amount"

[exports.names]
event = "payment_received"
key_columns = ["buyer", "effective"]
constants = { amount = "1.00" }
[exports.names.columns]
buyer = "buyer"
effective = "effective"
name = "invoice"
"""

# corpus file -> (line, field, words of the rule)
CORPUS_CASES: dict[str, tuple[int | None, str | None, str]] = {
    "arabic_digits.csv": (2, "amount", "'١٢' is not a decimal number"),
    "empty.csv": (1, None, "is empty; an export needs a header row"),
    "escape_in_name.csv": (2, "invoice", "without control characters"),
    "extra_cells.csv": (2, None, "has 5 cells; the header row has 4"),
    "feb30.csv": (2, "effective", "'2025-02-30' (column 'effective') is not a date written %Y-%m-%d"),
    "nan_amount.csv": (2, "amount", "'NaN' (column 'amount') is not a number"),
    "newline_in_name.csv": (2, "invoice", "without control characters"),
    "no_type_column.csv": (1, None, "the nearest, payments, needs the column 'type'"),
    "not_utf8.csv": (2, None, "is not utf-8 text (format.encoding of the mapping)"),
    "nul_bytes.csv": (1, None, "fits no export"),
    "text_amount.csv": (2, "amount", "'twelve' (column 'amount') is not a number"),
    "thirty_decimals.csv": (2, "amount", "has more decimals than GBP allows"),
    "underscore_amount.csv": (2, "amount", "'1_000' (column 'amount') is not a number"),
    "unterminated_quote.csv": (2, None, "malformed CSV: unexpected end of data"),
}
# A header the mapping does not name is ignored by design (docs/erp.md): the row is a good payment.
CORPUS_ACCEPTED = {"unknown_column.csv"}


@pytest.fixture(scope="module")
def erp_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One ledger for the module: the SPEC 4 policy, the examples' buyers and B1 (the corpus's buyer).
    Every case compares the event count before and after, so sharing it hides nothing."""
    path = str(tmp_path_factory.mktemp("erp-hostile") / "ledger.db")
    cli("init", "--db", path)
    cli("import", str(EXAMPLES / "book.toml"), "--db", path)
    cli("append", "buyer_registered", "--effective", "2025-01-02", "--buyer", "B1", "--name", "Acme",
        "--country", "GB", "--db", path)
    return path


def import_erp(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], file: Path, mapping: Path,
               db: str, *more: str) -> tuple[int, str, str]:
    return run_main(monkeypatch, capsys, "import-erp", str(file), "--mapping", str(mapping), "--db", db, *more)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# ---------------------------------------------------------------- the corpus's CSV files

def test_every_corpus_csv_has_its_expected_outcome():
    assert sorted(p.name for p in (HOSTILE / "import").glob("*.csv")) == sorted([*CORPUS_CASES, *CORPUS_ACCEPTED])


@pytest.mark.parametrize("name", sorted(CORPUS_CASES))
def test_import_erp_refuses_each_corpus_csv(name: str, erp_db: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    line, field, words = CORPUS_CASES[name]
    mapping = tmp_path / "corpus.toml"
    mapping.write_text(CORPUS_MAPPING, encoding="utf-8")
    path = HOSTILE / "import" / name
    before = count(erp_db)
    code, out, err = import_erp(monkeypatch, capsys, path, mapping, erp_db)
    assert_one_line_refusal(code, err, str(path), line, field, words)
    assert out == ""
    assert count(erp_db) == before


def test_a_corpus_csv_with_an_unmapped_column_would_be_recorded(erp_db: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]):
    mapping = tmp_path / "corpus.toml"
    mapping.write_text(CORPUS_MAPPING, encoding="utf-8")
    before = count(erp_db)
    code, out, err = import_erp(monkeypatch, capsys, HOSTILE / "import" / "unknown_column.csv", mapping, erp_db,
                                "--dry-run")
    assert (code, err) == (0, "") and "would record 1 events" in out
    assert count(erp_db) == before


# ---------------------------------------------------------------- every corpus TOML file as a mapping

CORPUS_TOML = sorted([*(HOSTILE / "import").glob("*.toml"), *(HOSTILE / "policy").glob("*.toml")])


@pytest.mark.parametrize("path", CORPUS_TOML, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_corpus_toml_is_refused_as_a_mapping(path: Path, erp_db: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]):
    """None is a mapping: each is refused naming the mapping file (deep nesting and a 5,000-digit
    integer used to end in `error: internal: ...`, exit 3)."""
    before = count(erp_db)
    code, out, err = import_erp(monkeypatch, capsys, EXAMPLES / "invoices.csv", path, erp_db)
    assert_one_line_refusal(code, err, None, None, None, "")
    assert err.startswith(f"error: {path}"), err
    assert "internal" not in err and out == ""
    assert count(erp_db) == before


# ---------------------------------------------------------------- broken mappings

def changed(old: str, new: str) -> str:
    """The example mapping with its first `old` replaced by `new`."""
    assert old in MAPPING_TEXT
    return MAPPING_TEXT.replace(old, new, 1)


CONSTANT_AMOUNT = changed('"Betrag" = "amount"\n', "") + '\n[exports.invoices.constants]\namount = 1500\n'
# (id, mapping text, needle on the refused line or None, field, words of the rule)
MAPPING_CASES: list[tuple[str, str, str | None, str | None, str]] = [
    ("malformed", changed("[format]", "[format"), "[format", None, "malformed TOML"),
    ("unknown-table", MAPPING_TEXT + '\n[include]\nfile = "/etc/passwd"\n', "[include]", "include",
     "is not a key of the mapping here"),
    ("unknown-format-key", changed('delimiter = ";"', "delimiter = \";\"\nquote = \"'\""), "quote =",
     "format.quote", "is not a key of the mapping here"),
    ("unknown-field", changed('"Betrag" = "amount"', '"Betrag" = "colour"'), '"Betrag" = "colour"',
     "exports.invoices.columns.Betrag", "'colour' is not a field of invoice_issued"),
    ("field-set-by-ledger", changed('"Belegnr" = "invoice"', '"Belegnr" = "recorded"'), '"Belegnr" = "recorded"',
     "exports.invoices.columns.Belegnr", "recorded cannot be mapped"),
    ("two-columns-one-field", changed('"Betrag" = "amount"', '"Betrag" = "amount"\n"Währung" = "amount"'),
     '"Währung" =', "exports.invoices.columns.Währung", "amount is already fed by another column"),
    ("no-required-field", changed('"Fällig am" = "due"\n', ""), "[exports.invoices.columns]",
     "exports.invoices.columns", "invoice_issued needs due"),
    ("date-without-day", changed('date = "%d/%m/%Y"', 'date = "%Y-%m"'), "date =", "format.date",
     "does not name a whole date"),
    ("date-bad-directive", changed('date = "%d/%m/%Y"', 'date = "%Q"'), "date =", "format.date",
     "does not name a whole date"),
    ("date-empty", changed('date = "%d/%m/%Y"', 'date = ""'), "date =", "format.date", "does not name a whole date"),
    ("date-not-text", changed('date = "%d/%m/%Y"', "date = 2025-01-31"), "date =", "format.date", "must be a string"),
    ("decimal-semicolon", changed('decimal_separator = ","', 'decimal_separator = ";"'), "decimal_separator",
     "format.decimal_separator", "is not one of"),
    ("thousands-is-decimal", changed('thousands_separator = "."', 'thousands_separator = ","'),
     "thousands_separator", "format.thousands_separator", "is the same as the decimal separator"),
    ("thousands-underscore", changed('thousands_separator = "."', 'thousands_separator = "_"'),
     "thousands_separator", "format.thousands_separator", "is not one of"),
    ("delimiter-empty", changed('delimiter = ";"', 'delimiter = ""'), "delimiter =", "format.delimiter",
     "is not one character"),
    ("delimiter-two", changed('delimiter = ";"', 'delimiter = ";;"'), "delimiter =", "format.delimiter",
     "is not one character"),
    ("delimiter-newline", changed('delimiter = ";"', 'delimiter = "\\n"'), "delimiter =", "format.delimiter",
     "is not one character"),
    ("delimiter-quote", changed('delimiter = ";"', "delimiter = '\"'"), "delimiter =", "format.delimiter",
     "is not one character"),
    ("encoding-unknown", changed('encoding = "utf-8"', 'encoding = "klingon"'), "encoding =", "format.encoding",
     "is not an encoding Python knows"),
    *[(f"encoding-{codec}", changed('encoding = "utf-8"', f'encoding = "{codec}"'), "encoding =", "format.encoding",
       "is not an encoding of text files") for codec in ("rot13", "base64", "zlib", "hex", "undefined")],
    ("constant-not-text", CONSTANT_AMOUNT, "amount = 1500", "exports.invoices.constants.amount",
     "must be a string"),
    ("key-columns-empty", changed('key_columns = "Belegnr"', "key_columns = []"), "key_columns = []",
     "exports.invoices.key_columns", "must be a header or a list of headers"),
    ("unknown-event", changed('event = "invoice_issued"', 'event = "invoice_paid"'), 'event = "invoice_paid"',
     "exports.invoices.event", "'invoice_paid' is not one of"),
    ("negative-not-bool", changed("amounts_negative = true", 'amounts_negative = "yes"'), "amounts_negative",
     "exports.credit_notes.amounts_negative", "must be true or false"),
    ("no-exports", MAPPING_TEXT[: MAPPING_TEXT.index("[exports.invoices]")], None, "exports", "is required"),
    ("long-line", MAPPING_TEXT + "# " + "x" * MAX_LINE_CHARS + "\n", "# xxx", None, "the line is too long"),
]


@pytest.mark.parametrize(("text", "needle", "field", "words"), [c[1:] for c in MAPPING_CASES],
                         ids=[c[0] for c in MAPPING_CASES])
def test_import_erp_refuses_each_broken_mapping(text: str, needle: str | None, field: str | None, words: str,
                                                erp_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(text, encoding="utf-8")
    before = count(erp_db)
    code, out, err = import_erp(monkeypatch, capsys, EXAMPLES / "invoices.csv", mapping, erp_db)
    assert_one_line_refusal(code, err, str(mapping), line_of(text, needle) if needle else None, field, words)
    assert out == ""
    assert count(erp_db) == before


@pytest.mark.parametrize("kind", ["missing", "folder", "utf16"])
def test_a_mapping_that_cannot_be_read_is_refused(kind: str, erp_db: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    mapping = tmp_path / "mapping.toml"
    if kind == "folder":
        mapping.mkdir()
    elif kind == "utf16":
        mapping.write_text(MAPPING_TEXT, encoding="utf-16")
    code, _, err = import_erp(monkeypatch, capsys, EXAMPLES / "invoices.csv", mapping, erp_db)
    words = "is not UTF-8 text" if kind == "utf16" else "cannot read the file"
    assert_one_line_refusal(code, err, str(mapping), 1 if kind == "utf16" else None, None, words)


# ---------------------------------------------------------------- hostile exports

def invoice(**cells: str) -> str:
    """One row of the example invoices export, with `cells` changed by header position name."""
    row = list(INVOICE)
    positions = {"buyer": 0, "invoice": 2, "issued": 3, "delivered": 4, "due": 5, "amount": 6}
    for name, value in cells.items():
        row[positions[name]] = value
    return ";".join(row)


def rows(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


NO_FIELD: None = None
# (id, file bytes, line, field, words of the rule)
EXPORT_CASES: list[tuple[str, bytes, int | None, str | None, str]] = [
    ("thirty-decimals", rows(INVOICE_HEADER, invoice(amount="1.234,000000000000000000000000000001")), 2, "amount",
     "has more decimals than GBP allows"),
    ("thirty-decimals-ungrouped", rows(INVOICE_HEADER, invoice(amount="0,000000000000000000000000000001")), 2,
     "amount", "has more decimals than GBP allows"),
    ("text-amount", rows(INVOICE_HEADER, invoice(amount="zwölf")), 2, "amount",
     "'zwölf' (column 'Betrag') is not a number written like 1.234,56"),
    ("other-convention", rows(INVOICE_HEADER, invoice(amount="1,234.56")), 2, "amount", "is not a number written"),
    ("bad-grouping", rows(INVOICE_HEADER, invoice(amount="12.34,56")), 2, "amount", "is not a number written"),
    ("exponent", rows(INVOICE_HEADER, invoice(amount="1e999999")), 2, "amount", "is not a number written"),
    ("infinity", rows(INVOICE_HEADER, invoice(amount="Infinity")), 2, "amount", "is not a number written"),
    ("negative-invoice", rows(INVOICE_HEADER, invoice(amount="-1.234,56")), 2, "amount", "amounts are never below 0"),
    ("huge-amount", rows(INVOICE_HEADER, invoice(amount="999.999.999.999.999.999.999,00")), 2, "amount",
     "above the largest amount"),
    ("positive-credit-note", rows(CREDIT_HEADER, "GS-9;B-1001;20/02/2025;RE-1;500,00;x"), 2, "amount",
     "is not negative"),
    ("feb30", rows(INVOICE_HEADER, invoice(issued="30/02/2025")), 2, "effective",
     "'30/02/2025' (column 'Belegdatum') is not a date written %d/%m/%Y"),
    ("iso-date", rows(INVOICE_HEADER, invoice(due="2025-03-16")), 2, "due", "is not a date written %d/%m/%Y"),
    ("year-1", rows(INVOICE_HEADER, invoice(issued="01/01/0001", delivered="")), 2, "effective", "out of range"),
    ("escape-in-buyer", rows(INVOICE_HEADER, invoice(buyer="B-1001\x1b[2J")), 2, "buyer", "without control characters"),
    # Belegnr feeds both the invoice and the key; the key (ERP-RE-...) is checked first.
    ("bidi-in-invoice", rows(INVOICE_HEADER, invoice(invoice="RE-\u202e1009")), 2, "key",
     "without control characters"),
    ("nul-in-invoice", rows(INVOICE_HEADER, invoice(invoice="RE-\x001")), 2, "key", "without control characters"),
    ("line-separator-in-buyer", rows(INVOICE_HEADER, invoice(buyer="B-1001\u2028")), 2, "buyer",
     "without control characters"),
    ("nel-in-buyer", rows(INVOICE_HEADER, invoice(buyer="B-1001\x85")), 2, "buyer", "without control characters"),
    ("separator-in-buyer", rows(INVOICE_HEADER, invoice(buyer="\x1cB-1001")), 2, "buyer", "without control characters"),
    ("nel-only-row", rows(INVOICE_HEADER, invoice(), "\x85;;;;;;;"), 3, "key", "the key column 'Belegnr' is empty"),
    ("bidi-in-key-only", rows(PAYMENT_HEADER, "ZE-\u202e9;B-1001;14/03/2025;;100,00"), 2, "key",
     "without control characters"),
    ("empty-key", rows(PAYMENT_HEADER, ";B-1001;14/03/2025;;100,00"), 2, "key", "is empty"),
    ("long-key", rows(PAYMENT_HEADER, "Z" * 200 + ";B-1001;14/03/2025;;100,00"), 2, "key", "longer than 100"),
    ("short-row", rows(INVOICE_HEADER, ";".join(INVOICE[:5])), 2, NO_FIELD, "has 5 cells; the header row has 8"),
    ("unterminated-quote", rows(INVOICE_HEADER, invoice(), invoice(buyer='"B-1001', invoice="RE-2"), invoice()), 3,
     NO_FIELD, "malformed CSV"),
    ("text-after-quote", rows(INVOICE_HEADER, invoice(buyer='"B-1001"x')), 2, NO_FIELD, "malformed CSV"),
    ("empty-file", b"", 1, NO_FIELD, "is empty; an export needs a header row"),
    ("blank-lines-only", b"\r\n\r\n  \r\n", 1, NO_FIELD, "is empty; an export needs a header row"),
    ("header-only", rows(INVOICE_HEADER), None, NO_FIELD, "has no rows"),
    ("header-twice", rows(INVOICE_HEADER + ";Betrag", invoice() + ";1"), 1, NO_FIELD, "the column 'Betrag' twice"),
    ("delimiter-not-in-file", rows(INVOICE_HEADER.replace(";", ","), invoice().replace(";", ",")), 1, NO_FIELD,
     "are its cells separated by ';', format.delimiter of the mapping?"),
    ("cp1252-header", (INVOICE_HEADER + "\r\n" + invoice() + "\r\n").encode("cp1252"), 1, NO_FIELD,
     "is not utf-8 text (format.encoding of the mapping)"),
    ("cp1252-row-3", rows(INVOICE_HEADER, invoice()) + invoice(buyer="Bé").encode("cp1252"), 3, NO_FIELD,
     "is not utf-8 text"),
    ("utf16-with-bom", (INVOICE_HEADER + "\r\n" + invoice() + "\r\n").encode("utf-16"), 1, NO_FIELD,
     "starts with a utf-16 byte-order mark but format.encoding of the mapping is utf-8"),
    ("binary", bytes(range(256)) * 4, 2, NO_FIELD, "is not utf-8 text"),
    ("truncated-character", rows(INVOICE_HEADER, invoice()) + "B-é".encode()[:-1], 3, NO_FIELD, "is not utf-8 text"),
]


@pytest.mark.parametrize(("data", "line", "field", "words"), [c[1:] for c in EXPORT_CASES],
                         ids=[c[0] for c in EXPORT_CASES])
def test_import_erp_refuses_each_hostile_export(data: bytes, line: int | None, field: str | None, words: str,
                                               erp_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    before = count(erp_db)
    code, out, err = import_erp(monkeypatch, capsys, path, EXAMPLES / "mapping.toml", erp_db)
    assert_one_line_refusal(code, err, str(path), line, field, words)
    assert out == ""
    assert count(erp_db) == before


def test_a_utf8_bom_is_dropped_but_contradicts_a_cp1252_mapping(erp_db: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + rows(INVOICE_HEADER, invoice()))
    code, out, err = import_erp(monkeypatch, capsys, path, EXAMPLES / "mapping.toml", erp_db, "--dry-run")
    assert (code, err) == (0, "") and "would record 1 events" in out
    cp1252 = tmp_path / "cp1252.toml"
    cp1252.write_text(changed('encoding = "utf-8"', 'encoding = "cp1252"'), encoding="utf-8")
    before = count(erp_db)
    code, _, err = import_erp(monkeypatch, capsys, path, cp1252, erp_db)
    assert_one_line_refusal(code, err, str(path), 1, None, "starts with a utf-8 byte-order mark but "
                            "format.encoding of the mapping is cp1252")
    assert count(erp_db) == before


def test_one_bad_row_among_good_ones_records_nothing(erp_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "export.csv"
    path.write_bytes(rows(INVOICE_HEADER, invoice(invoice="RE-8001"), invoice(invoice="RE-8002", issued="30/02/2025"),
                          invoice(invoice="RE-8003")))
    before = count(erp_db)
    code, _, err = import_erp(monkeypatch, capsys, path, EXAMPLES / "mapping.toml", erp_db)
    assert_one_line_refusal(code, err, str(path), 3, "effective", "(1 of 3 rows rejected; nothing recorded)")
    assert count(erp_db) == before


def write_long_row(path: Path, characters: int) -> None:
    """The example invoices header, then a row whose customer name has `characters` two-byte characters."""
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(INVOICE_HEADER + "\r\nB-1001;")
        chunk = "é" * 1_000_000
        for _ in range(characters // len(chunk)):
            file.write(chunk)
        file.write("é" * (characters % len(chunk)) + ";RE-1;15/01/2025;;16/03/2025;1,00;GBP\r\n")


def test_a_row_over_the_line_limit_is_refused_with_its_line(erp_db: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "long.csv"
    write_long_row(path, MAX_LINE_CHARS + 1)
    before = count(erp_db)
    code, _, err = import_erp(monkeypatch, capsys, path, EXAMPLES / "mapping.toml", erp_db)
    assert_one_line_refusal(code, err, str(path), 2, None, "the line is too long")
    assert count(erp_db) == before


def test_a_row_just_under_the_line_limit_is_not_refused_as_long(tmp_path: Path):
    """The limit counts characters in the mapping's encoding, not bytes (the csv module's own
    limit of 131,072 characters a cell then refuses such a row as malformed CSV, naming its line)."""
    from ledger.adapters.erp import _decode

    path = tmp_path / "wide.csv"
    write_long_row(path, MAX_LINE_CHARS - 200)
    assert path.stat().st_size > 2 * (MAX_LINE_CHARS - 200)
    assert MAX_LINE_CHARS - 200 < len(_decode(path, "utf-8-sig")[0].splitlines()[1]) <= MAX_LINE_CHARS


def test_a_100_mb_row_is_refused_without_loading_it(tmp_path: Path, erp_db: str):
    """A real process: the refusal names file and line, and the process never holds the row
    (its peak memory stays well below the file's 100 MB)."""
    path = tmp_path / "huge.csv"
    write_long_row(path, 50_000_000)  # 50 million two-byte characters: 100 MB
    assert path.stat().st_size > 100_000_000
    peak_file = tmp_path / "peak"
    probe = (
        "import sys\n"
        "from ledger.cli import main\n"
        f"sys.argv = ['creditledger', 'import-erp', {str(path)!r}, '--mapping', "
        f"{str(EXAMPLES / 'mapping.toml')!r}, '--db', {erp_db!r}]\n"
        "try:\n    main()\nfinally:\n"
        "    peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        f"    open({str(peak_file)!r}, 'w').write(peak)\n"
    )
    before = count(erp_db)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    path.unlink()  # pytest keeps recent tmp folders; no need to keep 100 MB in them
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr == f"error: {path}:2: the line is too long: a row may have at most 1,000,000 characters\n"
    peak_mb = int(peak_file.read_text()) / 1024  # VmHWM is in KiB
    assert peak_mb < 90, f"peak memory {peak_mb:.0f} MB: the 100 MB row was loaded"
    assert count(erp_db) == before


# ---------------------------------------------------------------- real subprocesses, a few

def test_the_installed_script_refuses_hostile_erp_input(erp_db: str, tmp_path: Path):
    before = count(erp_db)
    corpus = tmp_path / "corpus.toml"
    corpus.write_text(CORPUS_MAPPING, encoding="utf-8")
    mapping = str(EXAMPLES / "mapping.toml")
    for name in ("unterminated_quote.csv", "escape_in_name.csv", "not_utf8.csv"):
        line, field, words = CORPUS_CASES[name]
        path = HOSTILE / "import" / name
        done = creditledger("import-erp", str(path), "--mapping", str(corpus), "--db", erp_db, cwd=tmp_path)
        assert_one_line_refusal(done.returncode, done.stderr, str(path), line, field, words)
    nested = HOSTILE / "import" / "deep_nesting.toml"
    done = creditledger("import-erp", str(EXAMPLES / "invoices.csv"), "--mapping", str(nested), "--db", erp_db,
                        cwd=tmp_path)
    assert_one_line_refusal(done.returncode, done.stderr, str(nested), None, None, "nested too deeply")
    for case in ("bidi-in-invoice", "cp1252-header", "delimiter-not-in-file"):
        _, data, line, field, words = next(c for c in EXPORT_CASES if c[0] == case)
        path = tmp_path / f"{case}.csv"
        path.write_bytes(data)
        done = creditledger("import-erp", str(path), "--mapping", mapping, "--db", erp_db, cwd=tmp_path)
        assert_one_line_refusal(done.returncode, done.stderr, str(path), line, field, words)
    assert count(erp_db) == before

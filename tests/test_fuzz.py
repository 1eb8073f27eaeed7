"""Fuzzing the importers (TOML, JSON Lines, CSV, ERP exports and their mappings) and the policy parser (issue 8).

Arbitrary text and bytes, valid files with random damage, and documents of
the right shape with wrong values. The only acceptable outcomes are a valid
parse or a `LedgerError` whose one-line form names where (file, line or
field); any other exception is a bug. Bounded for `make test`: each test runs
`CREDITLEDGER_FUZZ_EXAMPLES` examples (default 40); a soak run sets it higher
(`make soak-fuzz`).
"""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path
from typing import Any

from helpers import POLICY_FILE, START
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.adapters.eventfiles import EventFile, read_csv, read_event_file, read_jsonl, read_toml
from ledger.service import Ledger
from ledger.vocabulary.errors import UNSAFE_TEXT, LedgerError
from ledger.vocabulary.events import EVENT_TYPES, Event, parse_event
from ledger.vocabulary.terms import PolicyTerms, parse_policy, terms_to_table

EXAMPLES = int(os.environ.get("CREDITLEDGER_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOURCE = "fuzz.in"


def check_refusal(error: LedgerError, *, located: bool = True) -> None:
    """One line, no unsafe characters, and it says where (file, line or field)."""
    text = str(error)
    assert text and len(text.splitlines()) == 1 and not UNSAFE_TEXT.search(text), repr(text)
    if located:
        assert error.source or error.field or error.line, text


def parse_events(file: EventFile) -> list[Event]:
    """Every event of the file, or the first refusal (checked and re-raised)."""
    events = []
    for _, raw in file.events:
        try:
            events.append(parse_event(raw, "GBP"))
        except LedgerError as problem:
            check_refusal(problem)
            raise
    return events


def read_then_parse(reader: Any, text: str) -> None:
    try:
        file = reader(text, SOURCE)
    except LedgerError as problem:
        check_refusal(problem)
        assert problem.source == SOURCE, str(problem)
        return
    try:
        parse_events(file)
    except LedgerError:
        pass


# ---------------------------------------------------------------- arbitrary text and bytes

@FUZZ
@given(text=st.text())
def test_arbitrary_text_in_any_format(text: str):
    for reader in (read_toml, read_jsonl, read_csv):
        read_then_parse(reader, text)


@FUZZ
@given(data=st.binary(max_size=2000), fmt=st.sampled_from(["toml", "jsonl", "csv"]))
def test_arbitrary_bytes_in_a_file(data: bytes, fmt: str):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz.{fmt}"
        path.write_bytes(data)
        try:
            read_event_file(path)
        except LedgerError as problem:
            check_refusal(problem)
            assert problem.source == str(path)


# ---------------------------------------------------------------- valid files with random damage

VALID = {
    "toml": (
        '[[events]]\ntype = "buyer_registered"\neffective = 2025-01-02\nbuyer = "B1"\nname = "Acme Ltd"\n'
        'country = "GB"\n\n[[events]]\ntype = "invoice_issued"\neffective = 2025-01-10\nbuyer = "B1"\n'
        'invoice = "I1"\namount = "1000.00"\ndue = 2025-03-10\nkey = "ERP-1"\n'
    ),
    "jsonl": (
        '{"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"}\n'
        '{"type": "payment_received", "effective": "2025-02-01", "buyer": "B1", "amount": "250.50", "invoice": "I1"}\n'
    ),
    "csv": (
        "type,effective,buyer,name,country,invoice,amount,due\n"
        "buyer_registered,2025-01-02,B1,Acme Ltd,GB,,,\n"
        "invoice_issued,2025-01-10,B1,,,I1,1000.00,2025-03-10\n"
    ),
}
READERS = {"toml": read_toml, "jsonl": read_jsonl, "csv": read_csv}
NASTY = st.sampled_from([
    "\x00", "\n", "\r", '"', "'", ",", "[", "]", "{", "}", "=", "\\", "\u2028", "\u202e", "\x85", "\ufeff",
    "1e999999", "-", ".", "0" * 50, "2025-02-30", "NaN", "é", "\ud800", "[[events]]", "#",
])


@FUZZ
@given(fmt=st.sampled_from(sorted(VALID)), data=st.data())
def test_valid_files_with_random_damage(fmt: str, data: st.DataObject):
    """Splice, delete or repeat at random places in a valid file."""
    text = VALID[fmt]
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.one_of(NASTY, st.text(max_size=8)))
        text = text[:at] + insert + text[at + cut:]
    read_then_parse(READERS[fmt], text)


# ---------------------------------------------------------------- the right shape, wrong values

FIELDS = sorted({name for cls in EVENT_TYPES.values() for name in cls.__struct_fields__} | {"type"})
SCALARS = st.one_of(
    st.text(max_size=30), st.integers(), st.integers(min_value=10**30, max_value=10**60), st.floats(),
    st.booleans(), st.none(), st.dates(), st.datetimes(), st.datetimes(timezones=st.timezones()),
    st.decimals(allow_nan=True).map(str), st.sampled_from(["", "1.000000000000000000000000000001", "1e31", "-0"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@FUZZ
@given(
    event_type=st.sampled_from(sorted(EVENT_TYPES)) | st.text(max_size=10),
    fields=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), VALUES, max_size=8),
)
def test_events_of_the_right_shape_with_wrong_values(event_type: str, fields: dict[str, Any]):
    raw = {"type": event_type, "effective": "2025-02-01", "buyer": "B1", **fields}
    try:
        parse_event(raw, "GBP")
    except LedgerError as problem:
        check_refusal(problem)


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["payment_received", "invoice_issued", "credit_note_issued", "limit_granted",
                              "buyer_registered", "overdue_reported"])},
    optional={
        "effective": st.dates(datetime.date(2024, 12, 1), datetime.date(2026, 1, 31)).map(str),
        "buyer": st.sampled_from(["B1", "B2", "B1\u2028"]), "amount": st.sampled_from(["0", "1", "999.99", "1e3", "x"]),
        "invoice": st.sampled_from(["I1", "I2"]), "due": st.sampled_from(["2025-03-10", "2025-02-30"]),
        "name": st.just("Acme"), "country": st.sampled_from(["GB", "ZZ", "gb"]), "key": st.sampled_from(["K1", "K2"]),
    },
), min_size=1, max_size=4))
def test_a_refused_batch_leaves_nothing_recorded(rows: list[dict[str, Any]]):
    """Through the whole write pipeline: recorded, or refused with nothing left behind."""
    from ledger.adapters.policyfile import load_policy_file

    with Ledger("memory", clock=lambda: START) as ledger:
        ledger.load_policy(load_policy_file(POLICY_FILE))
        ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "A",
                       "country": "GB"})
        before = ledger.count()
        try:
            outcome = ledger.record(ledger.parse(list(enumerate(rows, 1)), SOURCE))
        except LedgerError as problem:
            check_refusal(problem)
            assert ledger.count() == before
        else:
            assert ledger.count() == before + len(outcome.recorded)


# ---------------------------------------------------------------- the policy parser

def spec_table() -> dict[str, Any]:
    import tomllib

    return dict(tomllib.loads(POLICY_FILE.read_text())["policy"])


SPEC_TABLE = spec_table()
TERMS = sorted(SPEC_TABLE) + ["per_loss_deductible", "annual_aggregate_deductible", "max_liability",
                              "selected_buyers", "selected_countries", "unknown_term"]


def check_policy(table: Any) -> None:
    try:
        terms = parse_policy(table)
    except LedgerError as problem:
        check_refusal(problem)
        assert problem.field is None or problem.field.startswith("policy"), str(problem)
        return
    assert isinstance(terms, PolicyTerms)
    assert parse_policy(terms_to_table(terms)) == terms  # what parses, writes out and reads back the same


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(TERMS), VALUES, max_size=4),
    removed=st.sets(st.sampled_from(sorted(SPEC_TABLE)), max_size=2),
)
def test_the_policy_parser_on_changed_terms(changes: dict[str, Any], removed: set[str]):
    table = {k: v for k, v in SPEC_TABLE.items() if k not in removed}
    table.update(changes)
    check_policy(table)


@FUZZ
@given(section=st.sampled_from(["premium", "fees", "top_up"]), term=st.text(min_size=1, max_size=12), value=VALUES)
def test_the_policy_parser_on_changed_sub_tables(section: str, term: str, value: Any):
    table = dict(SPEC_TABLE)
    sub = dict(table[section])
    names = sorted(sub)
    sub[names[len(term) % len(names)] if term.isascii() else term] = value
    table[section] = sub
    check_policy(table)


@FUZZ
@given(table=st.dictionaries(st.text(max_size=10), VALUES, max_size=8) | VALUES)
def test_the_policy_parser_on_arbitrary_tables(table: Any):
    check_policy(table)


# ---------------------------------------------------------------- ERP mappings and rows (import-erp)

ERP_EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "erp"
ERP_MAPPING_TEXT = (ERP_EXAMPLES / "mapping.toml").read_text(encoding="utf-8")


def erp_document() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(ERP_MAPPING_TEXT)


FORMAT_KEYS = ["delimiter", "encoding", "date", "decimal_separator", "thousands_separator", "quote"]
EXPORT_KEYS = ["event", "event_column", "events", "columns", "constants", "key_columns", "key_prefix",
               "amounts_negative", "unknown"]
ERP_TEXT = st.one_of(
    NASTY, st.text(max_size=6),
    st.sampled_from([";", ",", "\t", "|", ".", " ", "%d/%m/%Y", "%Y", "%d%%", "utf-16", "cp1252", "rot13", "base64",
                     "undefined", "idna", "invoice_issued", "payment_received", "amount", "buyer", "id", "key"]),
)


def check_mapping(document: Any) -> None:
    from ledger.adapters.erp import ERP_EVENTS, ErpMapping, parse_mapping

    try:
        mapping = parse_mapping(document)
    except LedgerError as problem:
        check_refusal(problem)
        return
    assert isinstance(mapping, ErpMapping) and mapping.exports
    assert all(set(e.event_types()) <= set(ERP_EVENTS) for e in mapping.exports.values())


@FUZZ
@given(
    form=st.dictionaries(st.sampled_from(FORMAT_KEYS), ERP_TEXT | VALUES, max_size=3),
    export=st.sampled_from(["invoices", "credit_notes", "payments"]),
    changes=st.dictionaries(st.sampled_from(EXPORT_KEYS), ERP_TEXT | VALUES, max_size=2),
)
def test_the_erp_mapping_parser_on_changed_keys(form: dict[str, Any], export: str, changes: dict[str, Any]):
    document = erp_document()
    document["format"].update(form)
    document["exports"][export].update(changes)
    check_mapping(document)


@FUZZ
@given(document=st.dictionaries(st.sampled_from(["format", "exports", "events"]) | st.text(max_size=6), VALUES,
                                max_size=3) | VALUES)
def test_the_erp_mapping_parser_on_arbitrary_tables(document: Any):
    check_mapping(document)


@FUZZ
@given(data=st.data())
def test_the_erp_mapping_loader_on_damaged_files(data: st.DataObject):
    """The example mapping with random splices, or arbitrary bytes: a mapping, or a refusal naming the file."""
    from ledger.adapters.erp import load_mapping

    if data.draw(st.booleans()):
        raw = data.draw(st.binary(max_size=500))
    else:
        text = ERP_MAPPING_TEXT
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(text)))
            text = text[:at] + data.draw(ERP_TEXT) + text[at + data.draw(st.integers(0, 8)):]
        raw = text.encode("utf-8", errors="surrogatepass")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mapping.toml"
        path.write_bytes(raw)
        try:
            load_mapping(path)
        except LedgerError as problem:
            check_refusal(problem)
            assert problem.source == str(path), str(problem)


@FUZZ
@given(
    export=st.sampled_from(["invoices", "credit_notes", "payments"]),
    cells=st.lists(ERP_TEXT | st.sampled_from(["1.234,56", "-500,00", "31/12/2025", "30/02/2025", "B-1001"]),
                   min_size=0, max_size=9),
)
def test_the_erp_row_converter_on_arbitrary_cells(export: str, cells: list[str]):
    """A row of any cells: a raw event that parses or is refused, or a refusal naming its field."""
    from ledger.adapters.erp import convert_row, load_mapping

    mapping = load_mapping(ERP_EXAMPLES / "mapping.toml")
    chosen = mapping.exports[export]
    header = sorted(chosen.headers()) + ["Note"]
    index = {name: i for i, name in enumerate(header)}
    try:
        raw = convert_row(cells, header, index, chosen, mapping)
    except LedgerError as problem:
        check_refusal(problem, located=len(cells) == len(header))
        return
    assert raw["type"] == chosen.event and raw["key"].startswith(chosen.key_prefix)
    try:
        parse_event(raw, "GBP")
    except LedgerError as problem:
        check_refusal(problem)


@FUZZ
@given(name=st.sampled_from(["invoices", "credit_notes", "payments"]), data=st.data())
def test_the_erp_reader_on_damaged_exports(name: str, data: st.DataObject):
    """An example export with random damage: rows (each converted or refused on its line), or a refusal."""
    from ledger.adapters.erp import load_mapping, read_export

    mapping = load_mapping(ERP_EXAMPLES / "mapping.toml")
    text = (ERP_EXAMPLES / f"{name}.csv").read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(ERP_TEXT) + text[at + data.draw(st.integers(0, 8)):]
    encoding = data.draw(st.sampled_from(["utf-8", "cp1252", "utf-16"]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.csv"
        path.write_bytes(text.encode(encoding, errors="surrogatepass" if encoding != "cp1252" else "replace"))
        try:
            file = read_export(path, mapping)
        except LedgerError as problem:
            check_refusal(problem)
            assert problem.source == str(path), str(problem)
            return
        for row in file.rows:
            if row.error is not None:
                check_refusal(row.error)
                assert row.error.source == str(path) and row.error.line == row.line

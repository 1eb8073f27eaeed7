"""ERP exports (CSV) into events, through a column mapping a user writes once per ERP.

A mapping (TOML, see docs/erp.md) says how the ERP writes its files (delimiter,
encoding, dates, decimals) and, for each kind of export, which event its rows
become, which header feeds which event field, which fields are constant, and
which columns make the idempotency key. `read_export` turns each row into the
same raw event dict the other importers produce, with its line, so that every
check of the ledger (docs/rules.md, "Events") applies unchanged. Readers only read; the ledger
checks and records.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ledger.adapters.eventfiles import CELL_PADDING as PADDING
from ledger.adapters.eventfiles import MAX_LINE_CHARS, parse_toml, read_text, term_line
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import EVENT_TYPES

ERP_EVENTS = ("invoice_issued", "credit_note_issued", "payment_received")
DATE_FIELDS = ("effective", "due", "delivered")
NUMBER_FIELDS = ("amount", "fx_rate")
# Set by the ledger (id, recorded, foreign_amount), fixed by the export (type), or built from key_columns.
NOT_MAPPABLE = ("id", "recorded", "type", "foreign_amount", "key")
DECIMAL_SEPARATORS = (".", ",")
THOUSANDS_SEPARATORS = ("", ".", ",", " ", "'", "\u00a0", "\u202f")
MAX_KEY_CHARS = 100  # the ledger's limit on an identifier

_SAMPLE = "Kundennr;Betrag\r\nB-1;1.234,56\r\n"  # an encoding of text files writes this and reads it back
TOP_KEYS = ("format", "exports")
FORMAT_KEYS = ("delimiter", "encoding", "date", "decimal_separator", "thousands_separator")
EXPORT_KEYS = (
    "event", "event_column", "events", "columns", "constants", "key_columns", "key_prefix", "amounts_negative",
)


@dataclass(frozen=True)
class NumberFormat:
    """How the ERP writes a number, e.g. `1.234,56`: decimal and thousands separators."""

    decimal: str = "."
    thousands: str = ""

    def canonical(self, text: str, *, field: str, header: str, negative: bool = False) -> str:
        """The number as the ledger reads it (`1234.56`); refuses what the format does not allow.

        Grouping is checked (groups of three digits), so a file in another
        format (`1,234.56` read as `1.234,56`) is refused, never misread.
        """
        body = text
        sign = ""
        if body.startswith("-"):
            sign, body = "-", body[1:]
        grouped = re.escape(self.thousands) if self.thousands else None
        decimal = re.escape(self.decimal)
        plain = rf"\d+(?:{decimal}\d+)?"
        pattern = plain if grouped is None else rf"(?:{plain}|\d{{1,3}}(?:{grouped}\d{{3}})+(?:{decimal}\d+)?)"
        if not re.fullmatch(pattern, body):
            raise LedgerError(
                f"{text!r} (column {header!r}) is not a number written {self.example()}", field=field
            )
        if negative and sign != "-":
            raise LedgerError(
                f"{text!r} (column {header!r}) is not negative; this export writes amounts negative "
                "(amounts_negative = true)", field=field,
            )
        if sign and not negative:
            raise LedgerError(f"{text!r} (column {header!r}) is negative; amounts are never below 0", field=field)
        if self.thousands:
            body = body.replace(self.thousands, "")
        return body.replace(self.decimal, ".")

    def example(self) -> str:
        """One thousand two hundred and thirty-four and 56 hundredths in this format."""
        return f"like 1{self.thousands}234{self.decimal}56"


@dataclass(frozen=True)
class ExportMapping:
    """One kind of export: the event its rows become and where each field comes from."""

    name: str
    event: str | None  # the one event type of every row, or None: the event column says
    columns: dict[str, str]  # CSV header -> event field
    constants: dict[str, Any]
    key_columns: tuple[str, ...]
    key_prefix: str
    amounts_negative: bool = False
    event_column: str | None = None
    events: dict[str, str] = field(default_factory=dict)  # document type in the event column -> event type

    def headers(self) -> set[str]:
        """Every header the export needs in the CSV."""
        return set(self.columns) | set(self.key_columns) | ({self.event_column} if self.event_column else set())

    def event_types(self) -> list[str]:
        return [self.event] if self.event else sorted(set(self.events.values()))

    def header_of(self, field_name: str) -> str | None:
        """The header that feeds `field_name`, if a column does."""
        return next((h for h, f in self.columns.items() if f == field_name), None)


@dataclass(frozen=True)
class ErpMapping:
    """A whole mapping file: the ERP's file format and its kinds of export."""

    source: str
    delimiter: str
    encoding: str
    date_format: str
    numbers: NumberFormat
    exports: dict[str, ExportMapping]


@dataclass
class ErpRow:
    """One data row: its first line, its cells as read, and the raw event or why it cannot be one."""

    line: int
    cells: list[str]
    raw: dict[str, Any] | None = None
    error: LedgerError | None = None


@dataclass
class ErpFile:
    """An export read through a mapping, before any check of the ledger."""

    source: str
    mapping: ErpMapping
    export: ExportMapping
    header: list[str]
    rows: list[ErpRow] = field(default_factory=list)
    bom: bytes = b""  # the byte-order mark the file starts with, if any, which its reject file keeps


# ---------------------------------------------------------------- the mapping


def load_mapping(path: Path) -> ErpMapping:
    """Read and check a mapping file; a mistake is refused naming the line, the key and the rule."""
    # The readers of event files and policies: line lengths checked while streaming, and a TOML
    # nested thousands deep or holding a 5,000-digit integer refused rather than crashing.
    source = str(path)
    text = read_text(path)
    document = parse_toml(text, source)
    try:
        return parse_mapping(document, source)
    except LedgerError as problem:
        line = term_line(text, problem.field) if problem.field else None
        raise problem.located(source=source, line=line) from None


def parse_mapping(document: dict[str, Any], source: str = "mapping") -> ErpMapping:
    """The mapping of a parsed TOML document (see `load_mapping`)."""
    _known(_table(document, "mapping"), TOP_KEYS, "")
    form = _table(document.get("format", {}), "format")
    _known(form, FORMAT_KEYS, "format.")
    delimiter = _text(form.get("delimiter", ","), "format.delimiter")
    if len(delimiter) != 1 or delimiter in "\r\n\"" or delimiter.isalnum():
        raise LedgerError(f"{delimiter!r} is not one character that can separate cells", field="format.delimiter")
    encoding = _text(form.get("encoding", "utf-8"), "format.encoding")
    try:
        codec = codecs.lookup(encoding).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise LedgerError(f"{encoding!r} is not an encoding Python knows (e.g. utf-8, cp1252)",
                          field="format.encoding") from None
    try:
        # Python also knows codecs of bytes to bytes (base64, zlib, rot13...) and one that always
        # fails (undefined); as a file's encoding they ended in `error: internal`, exit 3.
        text_codec = _SAMPLE.encode(codec).decode(codec) == _SAMPLE
    except (LookupError, ValueError):
        text_codec = False
    if not text_codec:
        raise LedgerError(f"{encoding!r} is not an encoding of text files (e.g. utf-8, cp1252)",
                          field="format.encoding")
    date_format = _text(form.get("date", "%Y-%m-%d"), "format.date")
    _check_date_format(date_format)
    decimal = _text(form.get("decimal_separator", "."), "format.decimal_separator")
    if decimal not in DECIMAL_SEPARATORS:
        raise LedgerError(f"{decimal!r} is not one of '.' ','", field="format.decimal_separator")
    thousands = _text(form.get("thousands_separator", ""), "format.thousands_separator")
    if thousands not in THOUSANDS_SEPARATORS:
        shown = ", ".join(repr(s) for s in THOUSANDS_SEPARATORS)
        raise LedgerError(f"{thousands!r} is not one of {shown}", field="format.thousands_separator")
    if thousands == decimal:
        raise LedgerError("is the same as the decimal separator", field="format.thousands_separator")
    # A delimiter that also separates numbers (`,` with "2,345.67") is fine where the ERP quotes such
    # cells, as CSV does; a row whose number was left unquoted has a cell too many and is refused, saying so.
    if "exports" not in document:
        raise LedgerError("is required: one [exports.NAME] table per kind of export", field="exports")
    exports = _table(document["exports"], "exports")
    if not exports:
        raise LedgerError("needs at least one [exports.NAME] table", field="exports")
    parsed = {name: _export(name, _table(table, f"exports.{name}")) for name, table in exports.items()}
    return ErpMapping(
        source=source,
        delimiter=delimiter,
        encoding="utf-8-sig" if codec == "utf-8" else codec,  # a byte-order mark is not part of the header
        date_format=date_format,
        numbers=NumberFormat(decimal, thousands),
        exports=parsed,
    )


def _export(name: str, table: dict[str, Any]) -> ExportMapping:
    where = f"exports.{name}"
    _known(table, EXPORT_KEYS, where + ".")
    event, event_column, events = _event_types(table, where)
    kinds = [event] if event else sorted(set(events.values()))
    # A column of a mixed export feeds the rows whose event has that field.
    fields = {f.name: f for kind in kinds for f in msgspec.structs.fields(EVENT_TYPES[kind])}
    described = event or " / ".join(kinds)
    if "columns" not in table:
        raise LedgerError("is required: a table of CSV header = event field", field=where + ".columns")
    columns: dict[str, str] = {}
    for header, target in _table(table["columns"], where + ".columns").items():
        target = _text(target, f"{where}.columns.{header}")
        _mappable(target, described, fields, f"{where}.columns.{header}")
        if target in columns.values():
            raise LedgerError(f"{target} is already fed by another column", field=f"{where}.columns.{header}")
        columns[header] = target
    constants: dict[str, Any] = {}
    for target, value in _table(table.get("constants", {}), where + ".constants").items():
        _mappable(target, described, fields, f"{where}.constants.{target}")
        if target in columns.values():
            raise LedgerError("is also fed by a column; give it one source", field=f"{where}.constants.{target}")
        if not isinstance(value, (str, bool)):
            raise LedgerError("must be a string (money \"1500.00\", dates \"2025-01-31\") or true/false",
                              field=f"{where}.constants.{target}")
        constants[target] = value
    given = set(columns.values()) | set(constants)
    for kind in kinds:
        # delivered defaults to the issue date (docs/rules.md, "Events"), so it is not needed here.
        required = [f.name for f in msgspec.structs.fields(EVENT_TYPES[kind]) if f.required and f.name != "delivered"]
        for needed in required:
            if needed not in given:
                raise LedgerError(f"{kind} needs {needed}: map a column to it or give it in constants",
                                  field=where + ".columns")
    if "key_columns" not in table:
        raise LedgerError(
            "is required: the column(s) that identify a row, so that importing the file again records nothing twice",
            field=where + ".key_columns",
        )
    raw_keys = table["key_columns"]
    keys = [raw_keys] if isinstance(raw_keys, str) else raw_keys
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise LedgerError("must be a header or a list of headers", field=where + ".key_columns")
    if len(set(keys)) != len(keys):
        raise LedgerError("names a header twice", field=where + ".key_columns")
    prefix = _text(table.get("key_prefix", f"{name}:"), where + ".key_prefix")
    negative = table.get("amounts_negative", False)
    if not isinstance(negative, bool):
        raise LedgerError("must be true or false", field=where + ".amounts_negative")
    if event_column is not None and event_column in columns:
        raise LedgerError("the event column cannot also feed a field", field=f"{where}.columns.{event_column}")
    return ExportMapping(name, event, columns, constants, tuple(keys), prefix, negative, event_column, events)


def _event_types(table: dict[str, Any], where: str) -> tuple[str | None, str | None, dict[str, str]]:
    """`event` (every row the same), or `event_column` and `events` (a document type per row)."""
    allowed = ", ".join(ERP_EVENTS)
    if "event" in table:
        for other in ("event_column", "events"):
            if other in table:
                raise LedgerError("goes with events, not with event; give one or the other", field=f"{where}.{other}")
        event = _text(table["event"], where + ".event")
        if event not in ERP_EVENTS:
            raise LedgerError(f"{event!r} is not one of {allowed}", field=where + ".event")
        return event, None, {}
    if "event_column" not in table:
        raise LedgerError(f"is required: one of {allowed} (or event_column and events)", field=where + ".event")
    column = _text(table["event_column"], where + ".event_column")
    if "events" not in table:
        raise LedgerError("is required with event_column: a table of document type = event type",
                          field=where + ".events")
    events = {}
    for code, kind in _table(table["events"], where + ".events").items():
        kind = _text(kind, f"{where}.events.{code}")
        if kind not in ERP_EVENTS:
            raise LedgerError(f"{kind!r} is not one of {allowed}", field=f"{where}.events.{code}")
        events[code] = kind
    if not events:
        raise LedgerError("needs at least one document type", field=where + ".events")
    return None, column, events


def _mappable(target: str, event: str, fields: dict[str, Any], where: str) -> None:
    if target in NOT_MAPPABLE:
        why = "use key_columns" if target == "key" else "the ledger or the export sets it"
        raise LedgerError(f"{target} cannot be mapped: {why}", field=where)
    if target not in fields:
        allowed = ", ".join(f for f in fields if f not in NOT_MAPPABLE)
        raise LedgerError(f"{target!r} is not a field of {event} ({allowed})", field=where)


def _check_date_format(date_format: str) -> None:
    """The format must write and read back a whole date (day, month and year)."""
    for day in (datetime.date(2025, 12, 31), datetime.date(2024, 2, 9)):
        try:
            back = datetime.datetime.strptime(day.strftime(date_format), date_format).date()
        except (ValueError, re.error):  # re.error: a directive given twice, e.g. %d/%m/%Y%d
            back = None
        if back != day:
            raise LedgerError(
                f"{date_format!r} does not name a whole date (day, month and year, e.g. %d/%m/%Y)",
                field="format.date",
            )


def _known(table: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            # An empty key ("" = 1 is TOML) is shown quoted, or the refusal would name nothing.
            raise LedgerError(f"is not a key of the mapping here ({', '.join(allowed)})", field=prefix + (key or '""'))


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LedgerError("must be a table", field=where)
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise LedgerError("must be a string", field=where)
    return value


# ---------------------------------------------------------------- the export


def read_export(path: Path, mapping: ErpMapping, export: str | None = None) -> ErpFile:
    """Read an ERP export through `mapping`: the header checked, each row converted or marked bad.

    The kind of export is `export`, or else the one whose headers the file has.
    A problem with the whole file (encoding, header) is raised; a problem with
    one row is kept on the row, so that a caller can list every bad row.
    """
    source = str(path)
    text, bom = _decode(path, mapping.encoding)
    # strict: a quote left open would otherwise swallow the rest of the file into one cell.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter, strict=True)
    start = 1  # the line the row being read starts on, which a malformed row is named by
    try:
        header = [cell.strip(PADDING) for cell in next(reader, [])]
        if not any(header):
            raise LedgerError("is empty; an export needs a header row", source=source, line=1)
        chosen = _choose_export(header, mapping, export, source)
        index = {name: i for i, name in enumerate(header)}
        twice = sorted(h for h in chosen.headers() if header.count(h) > 1)
        if twice:
            raise LedgerError(f"the header row has the column {twice[0]!r} twice", source=source, line=1)
        file = ErpFile(source, mapping, chosen, header, bom=bom)
        start = reader.line_num + 1
        for cells in reader:
            if any(cell.strip(PADDING) for cell in cells):
                row = ErpRow(start, cells)
                try:
                    row.raw = convert_row(cells, header, index, chosen, mapping)
                except LedgerError as problem:
                    row.error = problem.located(source=source, line=start)
                file.rows.append(row)
            start = reader.line_num + 1
    except csv.Error as e:
        raise LedgerError(f"malformed CSV: {e}", source=source, line=start) from None
    return file


_CHUNK_BYTES = 1 << 20
# A byte-order mark says the encoding; one that contradicts the mapping would otherwise
# become part of the first header (`ï»¿Kundennr`) and be refused as a missing column.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(path: Path, encoding: str) -> tuple[str, bytes]:
    """The text of the export and the byte-order mark it starts with (b"" if none); refused with
    its line if it is not in `encoding` or has an over-long line.

    The file is first streamed through an incremental decoder in 1 MiB chunks,
    counting characters per line in the mapping's encoding, so that a 100 MB
    line (or 100 MB of binary) is refused before the file is held whole.
    """
    source = str(path)
    shown = "utf-8" if encoding == "utf-8-sig" else encoding
    bom = b""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
            for mark, family in _BOMS:
                if head.startswith(mark):
                    if not codecs.lookup(encoding).name.replace("_", "-").startswith(family):
                        raise LedgerError(f"starts with a {family} byte-order mark but format.encoding of the "
                                          f"mapping is {shown}", source=source, line=1)
                    bom = mark
                    break
            handle.seek(0)
            _check_lines(handle, encoding, shown, source)
        data = path.read_bytes()
    except OSError as e:
        raise LedgerError(f"cannot read the file: {e.strerror}", source=source) from None
    # Checked above, so this decodes; a byte-order mark is never part of the first header.
    return data.decode(encoding).removeprefix("\ufeff"), bom


def _check_lines(handle: Any, encoding: str, shown: str, source: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)()
    line, length = 1, 0  # the line being read and its characters so far
    while True:
        chunk = handle.read(_CHUNK_BYTES)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            # e.object is what the codec was decoding (this chunk, with any bytes carried from the last)
            prefix = bytes(e.object[: max(e.start, 0)])
            try:
                breaks = prefix.decode(encoding, errors="replace").count("\n")
            except (LookupError, ValueError):  # a codec without errors="replace" (idna)
                breaks = prefix.count(b"\n")
            raise LedgerError(f"is not {shown} text (format.encoding of the mapping)", source=source,
                              line=line + breaks) from None
        for number, part in enumerate(text.split("\n")):
            if number:
                line, length = line + 1, 0
            length += len(part)
            if length > MAX_LINE_CHARS:
                raise LedgerError(f"the line is too long: a row may have at most {MAX_LINE_CHARS:,} characters",
                                  source=source, line=line)
        if not chunk:
            return


def _choose_export(header: list[str], mapping: ErpMapping, name: str | None, source: str) -> ExportMapping:
    """The export named, or the only one whose headers are all in the file."""
    present = set(header)
    if name is not None:
        chosen = mapping.exports.get(name)
        if chosen is None:
            raise LedgerError(f"{name!r} is not an export of {mapping.source} ({', '.join(mapping.exports)})",
                              field="export")
        missing = sorted(chosen.headers() - present)
        if missing:
            raise LedgerError(f"the header row has no column {missing[0]!r} (exports.{name} of {mapping.source})",
                              source=source, line=1)
        return chosen
    fitting = [e for e in mapping.exports.values() if e.headers() <= present]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        nearest = min(mapping.exports.values(), key=lambda e: len(e.headers() - present))
        missing = sorted(nearest.headers() - present)
        # One cell that is not a header: most likely the file's cells are separated by something else.
        hint = (f" (the header row is one cell: are its cells separated by {mapping.delimiter!r}, "
                "format.delimiter of the mapping?)") if len(header) == 1 else ""
        raise LedgerError(
            f"the header row fits no export of {mapping.source}; the nearest, {nearest.name}, "
            f"needs the column {missing[0]!r}{hint}", source=source, line=1,
        )
    raise LedgerError(
        f"the header row fits several exports of {mapping.source} ({', '.join(e.name for e in fitting)}); "
        "name one with --export", source=source, line=1,
    )


def convert_row(
    cells: list[str], header: list[str], index: dict[str, int], export: ExportMapping, mapping: ErpMapping
) -> dict[str, Any]:
    """One CSV row as a raw event: constants, mapped cells in ISO dates and plain decimals, the key."""
    if len(cells) != len(header):
        numbers = mapping.numbers
        hint = (f" (a number written with {mapping.delimiter!r} must be quoted, e.g. "
                f"\"{numbers.example().removeprefix('like ')}\")"
                if mapping.delimiter in (numbers.decimal, numbers.thousands) else "")
        raise LedgerError(f"has {len(cells)} cells; the header row has {len(header)}{hint}")
    event = export.event
    if export.event_column is not None:
        code = cells[index[export.event_column]].strip(PADDING)
        event = export.events.get(code)
        if event is None:
            raise LedgerError(
                f"{code!r} (column {export.event_column!r}) is not a document type of the mapping "
                f"({', '.join(export.events)})", field="type",
            )
    assert event is not None
    own = EVENT_TYPES[event].__struct_fields__
    raw: dict[str, Any] = {"type": event, **{k: v for k, v in export.constants.items() if k in own}}
    for column, target in export.columns.items():
        text = cells[index[column]].strip(PADDING)
        if not text or target not in own:
            continue  # an empty cell is an absent field, as in every event file; a mixed export's column may not apply
        if target in DATE_FIELDS:
            raw[target] = _date(text, mapping.date_format, target, column)
        elif target in NUMBER_FIELDS:
            negative = export.amounts_negative and target == "amount"
            raw[target] = mapping.numbers.canonical(text, field=target, header=column, negative=negative)
        else:
            raw[target] = text
    parts = []
    for column in export.key_columns:
        part = cells[index[column]].strip(PADDING)
        if not part:
            raise LedgerError(f"the key column {column!r} is empty; every row needs its key", field="key")
        parts.append(part)
    key = export.key_prefix + "/".join(parts)
    if len(key) > MAX_KEY_CHARS:
        raise LedgerError(f"{key[:30]}... is longer than {MAX_KEY_CHARS} characters", field="key")
    raw["key"] = key
    return raw


def _date(text: str, date_format: str, target: str, column: str) -> str:
    try:
        return datetime.datetime.strptime(text, date_format).date().isoformat()
    except ValueError:
        shown = datetime.date(2025, 12, 31).strftime(date_format)
        raise LedgerError(
            f"{text!r} (column {column!r}) is not a date written {date_format} (e.g. {shown})", field=target
        ) from None


def reject_writer(path: Path, source: ErpFile) -> tuple[Any, Any]:
    """An open reject file and its CSV writer, in the export's own format (delimiter, encoding,
    and the byte-order mark it had or had not), so that it imports again and diffs cleanly."""
    handle = io.TextIOWrapper(path.open("wb"), encoding=_without_mark(source.mapping.encoding, source.bom),
                              newline="")
    try:
        handle.buffer.write(source.bom)
        writer = csv.writer(handle, delimiter=source.mapping.delimiter, lineterminator="\r\n")
        writer.writerow([*source.header, REASON_COLUMN])
    except BaseException:
        handle.close()
        raise
    return handle, writer


def _without_mark(encoding: str, bom: bytes) -> str:
    """The codec that writes `encoding` without a byte-order mark of its own (the reject file
    writes the input's, if it had one): utf-8-sig, utf-16 and utf-32 would add one each time."""
    name = codecs.lookup(encoding).name
    if name in ("utf-8", "utf-8-sig"):
        return "utf-8"
    if name in ("utf-16", "utf-32"):
        big = bom in (codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)
        return f"{name}-{'be' if big else 'le'}"  # no mark: little-endian, as the decoder read it
    return encoding


REASON_COLUMN = "reject_reason"

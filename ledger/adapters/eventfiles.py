"""Readers for event files: TOML (`[[events]]` as in a scenario), JSON Lines, CSV.

Each reader returns an `EventFile`: the optional `[policy]` table and the raw
events with the line each starts on, so that every refusal names file and
line. Readers only read; the ledger checks and records.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ledger.vocabulary.bulk import BULK, collector_paused
from ledger.vocabulary.errors import LedgerError

MAX_LINE_CHARS = 1_000_000  # one event never needs more; a longer line is refused, not parsed
FORMATS = ("toml", "jsonl", "csv")
# What a CSV cell is trimmed of. Not str.strip()'s whitespace: that drops U+2028, NEL and the
# separators \x1c-\x1f at a cell's ends, so an id carrying them was recorded, silently cleaned.
CELL_PADDING = " \t"


@dataclass
class EventFile:
    """What an event file holds, before any check."""

    source: str
    policy: dict[str, Any] | None = None
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    expectations: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    title: str = ""


def detect_format(path: Path, given: str | None = None) -> str:
    """The file's format: as given, else by its ending."""
    if given:
        if given not in FORMATS:
            raise LedgerError(f"{given!r} is not one of {', '.join(FORMATS)}", field="format")
        return given
    suffix = path.suffix.lower().lstrip(".")
    aliases = {"toml": "toml", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "csv": "csv"}
    if suffix not in aliases:
        raise LedgerError(
            "cannot tell the format from the file name; name it .toml, .jsonl or .csv, or pass --format",
            source=str(path),
        )
    return aliases[suffix]


def read_event_file(path: Path, fmt: str | None = None) -> EventFile:
    """Read `path` in its format; a malformed file is refused with its line."""
    kind = detect_format(path, fmt)
    # A JSON array (what `log --json` prints) is one line however many events it holds.
    text = read_text(path, line_limit=not (kind == "jsonl" and _starts_with(path, b"[")))
    reader = {"toml": read_toml, "jsonl": read_jsonl, "csv": read_csv}[kind]
    return reader(text, str(path))


def stream_event_file(path: Path, fmt: str | None = None) -> tuple[EventFile, int, Iterator[tuple[int, dict[str, Any]]]]:
    """As `read_event_file`, for an import: (the file without its events, how many events it
    has, the events). JSON Lines events are decoded as they are taken and every event is let
    go once taken, so that a large file's raw fields are never all alive at once (a million
    decoded lines held about a gigabyte)."""
    kind = detect_format(path, fmt)
    if kind != "jsonl" or _starts_with(path, b"["):
        file = read_event_file(path, fmt)
        return file, len(file.events), drained(file.events)
    source = str(path)
    try:
        _check_line_lengths(path)
    except OSError as e:
        raise LedgerError(f"cannot read the file: {e.strerror}", source=source) from None
    # Read twice, a megabyte at a time, never held whole: once to count the events (and
    # refuse a file that is not UTF-8 before any event is read), once to decode them.
    count = sum(1 for line in _lines(_file_lines(path), source) if line.strip())
    return EventFile(source=source), count, _jsonl_events(_file_lines(path), source)


def drained(rows: list[Any]) -> Iterator[Any]:
    """`rows` in order, each let go once taken (the list ends empty)."""
    rows.reverse()
    while rows:
        yield rows.pop()


def read_text(path: Path, *, line_limit: bool = True) -> str:
    """The UTF-8 text of `path`, refused with its line if it is not UTF-8 or
    (with `line_limit`) has a line over MAX_LINE_CHARS characters.

    The line lengths are checked while streaming the file in chunks, so a
    100 MB line is refused before the file is ever held in memory whole.
    """
    try:
        if line_limit:
            _check_line_lengths(path)
        data = path.read_bytes()
    except OSError as e:
        raise LedgerError(f"cannot read the file: {e.strerror}", source=str(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise LedgerError("is not UTF-8 text", source=str(path), line=line) from None


_CHUNK_BYTES = 1 << 20
_NOT_CONTINUATION = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)


def _characters(data: bytes) -> int:
    """Characters in UTF-8 bytes: every byte but the continuation bytes starts one."""
    return len(data) - len(data.translate(None, _NOT_CONTINUATION))


def _check_line_lengths(path: Path) -> None:
    line, carried = 1, 0  # the line being read, and its characters in earlier chunks
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            parts = chunk.split(b"\n")
            for number, part in enumerate(parts):
                if number:
                    line, carried = line + 1, 0
                # Bytes bound characters from above: count characters only for a long line.
                if carried + len(part) > MAX_LINE_CHARS and carried + _characters(part) > MAX_LINE_CHARS:
                    raise _too_long(str(path), line)
            carried += _characters(parts[-1])


def _too_long(source: str, line: int) -> LedgerError:
    return LedgerError(
        f"the line is too long: an event line may have at most {MAX_LINE_CHARS:,} characters",
        source=source, line=line,
    )


def _starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with path.open("rb") as file:
            head = file.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False  # read_text names the problem
    return head.startswith(prefix)


# [ \t]* and not \s*: \s would swallow blank lines and name the line before the header.
_EVENTS_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*events[ \t]*\]\]", re.MULTILINE)
_EXPECT_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*expect[ \t]*\]\]", re.MULTILINE)
_TOML_AT = re.compile(r" \(at line (\d+), column \d+\)$")


def toml_problem(error: tomllib.TOMLDecodeError, source: str) -> LedgerError:
    """A TOML syntax error as a refusal naming the line (older Pythons only say it in the text)."""
    text = str(error)
    line = getattr(error, "lineno", None)
    found = _TOML_AT.search(text)
    if line is None and found:
        line = int(found.group(1))
    return LedgerError(f"malformed TOML: {_TOML_AT.sub('', text)}", source=source, line=line)


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """A TOML document; anything tomllib cannot read is a refusal naming the file (and line)."""
    try:
        # No cycle collection while the parser may be thousands of frames deep: a finalizer run
        # there fails with RecursionError and prints its traceback, although the file is refused.
        with collector_paused(BULK):
            return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise toml_problem(e, source) from None
    except RecursionError:  # a = [[[[... thousands deep: the parser recurses
        raise LedgerError("malformed TOML: nested too deeply", source=source) from None
    except ValueError as e:  # an integer of more than 4300 digits: find its line ourselves
        found = re.search(r"\d{4300}", text)
        line = text.count("\n", 0, found.start()) + 1 if found else None
        raise LedgerError(f"malformed TOML: {e}".split(";")[0], source=source, line=line) from None


_TABLE_HEADER = re.compile(r"\[\s*([^\[\]]+?)\s*\]\s*(#.*)?")
_KEY = re.compile(r"(\"[^\"]*\"|[\w-]+)\s*=")


def term_line(text: str, term: str) -> int | None:
    """The line of a TOML file on which the term `policy.premium.rate` (say) is
    written: its own `key =` line, or the line of the inline table or header
    that holds it. None when the file does not write it (a term left out)."""
    wanted = term.split(".")
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = _TABLE_HEADER.fullmatch(stripped)
        if header:
            table = [part.strip().strip('"') for part in header.group(1).split(".")]
            if table == wanted:
                return number
            continue
        key = _KEY.match(stripped)
        if key and [*table, key.group(1).strip('"')] == wanted[: len(table) + 1]:
            return number
    return None


def read_toml(text: str, source: str) -> EventFile:
    """A scenario-style TOML file: optional `title`, `[policy]`, `[[events]]`, `[[expect]]`."""
    document = parse_toml(text, source)
    unknown = set(document) - {"title", "policy", "events", "expect"}
    if unknown:
        raise LedgerError(
            f"{sorted(unknown)[0]!r} is not a table of an events file (title, policy, events, expect)", source=source
        )
    events = document.get("events", [])
    expectations = document.get("expect", [])
    if not isinstance(events, list) or not isinstance(expectations, list):
        raise LedgerError("events and expect must be arrays of tables ([[events]], [[expect]])", source=source)
    event_lines = _header_lines(_EVENTS_HEADER, text)
    expect_lines = _header_lines(_EXPECT_HEADER, text)
    policy = document.get("policy")
    if policy is not None and not isinstance(policy, dict):
        raise LedgerError("[policy] must be a table", field="policy", source=source, line=term_line(text, "policy"))
    return EventFile(
        source=source,
        policy=policy,
        events=list(zip(_pad(event_lines, len(events)), events, strict=False)),
        expectations=list(zip(_pad(expect_lines, len(expectations)), expectations, strict=False)),
        title=str(document.get("title", "")),
    )


def _header_lines(header: re.Pattern[str], text: str) -> list[int]:
    """The line of each header, counted on from the one before (linear in the file, not quadratic)."""
    lines, line, at = [], 1, 0
    for match in header.finditer(text):
        line += text.count("\n", at, match.start())
        at = match.start()
        lines.append(line)
    return lines


def _pad(lines: list[int], count: int) -> list[int]:
    # Inline arrays (events = [{...}]) have no headers; they share line 1's count.
    return lines + [0] * (count - len(lines)) if len(lines) < count else lines[:count]


_json_decoder = msgspec.json.Decoder(dict[str, Any])


def read_jsonl(text: str, source: str) -> EventFile:
    """JSON Lines: one event object per line; blank lines are skipped.

    A file that is one JSON array of objects (what `log --json` prints) is
    read too; its events are numbered by their place in the array.
    """
    if re.match(r"\s*\[", text):
        return _read_json_array(text, source)
    file = EventFile(source=source)
    file.events.extend(_jsonl_events(_split_lines(text), source))
    return file


def _jsonl_events(lines: Iterator[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, fields) of each event of JSON Lines, decoded as they are taken."""
    for number, line in enumerate(_lines(lines, source), 1):
        if not line.strip():
            continue
        try:
            raw = _json_decoder.decode(line)
        except msgspec.ValidationError as e:
            words = "each line must be one JSON object" if str(e).startswith("Expected `object`") else f"malformed JSON: {e}"
            raise LedgerError(words, source=source, line=number) from None
        except msgspec.DecodeError as e:
            raise LedgerError(f"malformed JSON: {e}", source=source, line=number) from None
        except RecursionError:
            raise LedgerError("malformed JSON: nested too deeply", source=source, line=number) from None
        except UnicodeEncodeError:  # a lone surrogate: only text handed in directly, never a file read as UTF-8
            raise LedgerError("is not UTF-8 text", source=source, line=number) from None
        yield number, raw


def _read_json_array(text: str, source: str) -> EventFile:
    try:
        items = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise LedgerError(f"malformed JSON: {e}", source=source) from None
    except RecursionError:
        raise LedgerError("malformed JSON: nested too deeply", source=source) from None
    except UnicodeEncodeError:
        raise LedgerError("is not UTF-8 text", source=source) from None
    file = EventFile(source=source)
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise LedgerError(f"item {number} of the array is not a JSON object", source=source)
        file.events.append((number, item))
    return file


def read_csv(text: str, source: str) -> EventFile:
    """CSV with a header row naming the fields; empty cells are absent fields."""
    file = EventFile(source=source)
    for _ in _lines(_split_lines(text), source):  # refuse an absurdly long line before the csv module sees it
        pass
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\0extra", strict=True)
    start = 1  # the line the row being read starts on: a quote left open runs to the end of the file
    try:
        header = reader.fieldnames
        if not header:
            raise LedgerError("is empty; a CSV needs a header row naming the fields", source=source, line=1)
        for required in ("type", "effective"):
            if required not in header:
                raise LedgerError(f"the header row has no {required!r} column", source=source, line=1)
        start = reader.line_num + 1
        for row in reader:
            if "\0extra" in row:
                raise LedgerError("has more cells than the header row", source=source, line=start)
            if all(not (value or "").strip(CELL_PADDING) for value in row.values()):
                start = reader.line_num + 1
                continue
            # Only spaces and tabs are padding: str.strip() would also drop a line separator or
            # a control character at a cell's end, and the cleaned id would be recorded.
            raw = {name: value.strip(CELL_PADDING) for name, value in row.items()
                   if value is not None and value.strip(CELL_PADDING)}
            file.events.append((start, raw))
            start = reader.line_num + 1
    except csv.Error as e:
        raise LedgerError(f"malformed CSV: {e}", source=source, line=start) from None
    return file


_LINES_CHUNK = 1 << 20  # characters split into lines at a time


def _split_lines(text: str) -> Iterator[str]:
    """`text.splitlines()`, a chunk at a time: a million-line file never has every line alive.
    Each chunk ends just after a newline, so no line (nor a CR LF pair) is cut in two."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _LINES_CHUNK)
        end = len(text) if end < 0 else end + 1
        yield from text[start:end].splitlines()
        start = end


def _file_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file as `read_text(path).splitlines()` gives them (and its refusals),
    read a megabyte at a time: a chunk ends just after a newline byte, which is never inside a
    UTF-8 sequence, so no character, line or CR LF pair is cut in two."""
    newlines, pending, first = 0, b"", True
    try:
        with path.open("rb") as file:
            while True:
                block = file.read(_CHUNK_BYTES)
                if block:
                    data = pending + block
                    end = data.rfind(b"\n") + 1
                    if not end:  # no newline yet (a line is at most MAX_LINE_CHARS, checked first)
                        pending = data
                        continue
                    chunk, pending = data[:end], data[end:]
                else:
                    chunk, pending = pending, b""
                    if not chunk:
                        return
                if first:  # a byte order mark only at the very start
                    chunk, first = chunk.removeprefix(b"\xef\xbb\xbf"), False
                try:
                    text = chunk.decode("utf-8")
                except UnicodeDecodeError as e:
                    line = newlines + chunk[: e.start].count(b"\n") + 1
                    raise LedgerError("is not UTF-8 text", source=str(path), line=line) from None
                newlines += chunk.count(b"\n")
                yield from text.splitlines()
                if not block:
                    return
    except OSError as e:
        raise LedgerError(f"cannot read the file: {e.strerror}", source=str(path)) from None


def _lines(lines: Iterator[str], source: str) -> Iterator[str]:
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise LedgerError(
                f"the line is {len(line):,} characters long; an event line may have at most {MAX_LINE_CHARS:,}",
                source=source, line=number,
            )
        yield line

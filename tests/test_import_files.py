"""`stream_event_file`, the reader behind `creditledger import`: the same events, lines and
refusals as `read_event_file`, decoded as they are taken and let go once taken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.adapters import eventfiles
from ledger.adapters.eventfiles import read_event_file, stream_event_file
from ledger.vocabulary.errors import LedgerError

EVENTS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme", "country": "GB"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "100", "basis": "underwriter"},
]


@pytest.mark.parametrize("layout", ["lines", "blank lines and CR LF", "array"])
def test_the_same_events_as_read_event_file(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "events.jsonl"
    if layout == "array":
        path.write_text(json.dumps(EVENTS))
    elif layout == "lines":
        path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    else:
        path.write_bytes(("\r\n\r\n".join(json.dumps(e) for e in EVENTS) + "\r\n").encode())
    expected = read_event_file(path).events
    file, count, events = stream_event_file(path)
    assert count == len(EVENTS)
    assert list(events) == expected
    assert file.events == []  # none kept
    assert [raw for _, raw in expected] == EVENTS


def test_a_bad_line_is_refused_with_its_line_when_reached(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(EVENTS[0]) + "\n\n{oops\n")
    _, count, events = stream_event_file(path)
    assert count == 2
    assert next(events)[0] == 1
    with pytest.raises(LedgerError) as caught:
        next(events)
    assert caught.value.line == 3 and "malformed JSON" in str(caught.value)


def test_toml_and_csv_are_handed_over_and_let_go(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("type,effective,buyer,name,country\nbuyer_registered,2025-01-02,B1,Acme,GB\n")
    file, count, events = stream_event_file(path)
    assert count == 1
    assert list(events) == [(2, EVENTS[0])]
    assert file.events == []  # each row let go once taken


@given(st.text(alphabet="ab\r\n\x0b\x1c\u2028 ", max_size=60), st.integers(min_value=1, max_value=8))
def test_lines_split_a_chunk_at_a_time_are_those_of_splitlines(text: str, chunk: int) -> None:
    original = eventfiles._LINES_CHUNK
    eventfiles._LINES_CHUNK = chunk
    try:
        assert list(eventfiles._split_lines(text)) == text.splitlines()
    finally:
        eventfiles._LINES_CHUNK = original

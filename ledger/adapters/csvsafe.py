"""CSV cells a spreadsheet opens as text, never as a formula (issue 8, "CSV injection").

A spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` (and, in some,
a tab or a carriage return) as a formula: a buyer named
`=HYPERLINK("http://x","y")` would become a live link in the insurer's copy
of an export. The CSV writers (`export --csv`, `declare`) pass every cell
through `safe_cell`, which writes such text with a leading `'`, the quote
spreadsheets read as "this is text" and do not show. A plain number keeps its
sign: negative amounts (`-500.00`) stay numbers. The SQLite export holds
typed values, not text to be evaluated, and is left as it is.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")  # how the ledger writes amounts, counts and rates


def safe_cell(value: Any) -> Any:
    """`value`, or `'value` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def safe_row(row: dict[str, Any]) -> dict[str, Any]:
    return {name: safe_cell(value) for name, value in row.items()}

"""One error type for every refusal: it names where, which field, and the rule."""

from __future__ import annotations

import re

# What would break the one-line form or hide text on a terminal: C0 and C1 controls
# (newline, escape sequences, NEL), line and paragraph separators, bidi overrides,
# and lone surrogates (which cannot even be written as UTF-8).
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def one_line(text: str) -> str:
    """`text` with every unsafe character written as an escape, e.g. "\\n" or "\\u202e"."""
    return UNSAFE_TEXT.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class LedgerError(Exception):
    """Bad input or a refused command.

    `source` is a file name, `line` a 1-based line number, `field` the term or
    event field at fault; the message states the rule that was broken. Any of
    the three locators may be absent. `str()` gives the one-line form the CLI
    prints.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.source = source
        self.line = line

    def located(self, *, source: str | None = None, line: int | None = None) -> LedgerError:
        """Return the same error placed in a file and line (keeps what it has)."""
        return LedgerError(
            self.message,
            field=self.field,
            source=self.source or source,
            line=self.line or line,
        )

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        # File names, field names and quoted values come from the input: keep them on one line.
        return one_line(f"{where}{field}{self.message}")


class ConcurrencyConflict(Exception):
    """Another writer changed a stream or the recorded axis first; retry."""

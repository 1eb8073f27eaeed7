"""Policy documents: a TOML file with a `[policy]` table, read into `PolicyTerms`."""

from __future__ import annotations

from pathlib import Path

from ledger.adapters.eventfiles import parse_toml, read_text, term_line
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.terms import PolicyTerms, parse_policy


def load_policy_file(path: Path) -> PolicyTerms:
    """Read a policy document; errors name the file."""
    text = read_text(path)
    document = parse_toml(text, str(path))
    if "policy" not in document:
        raise LedgerError("has no [policy] table", source=str(path))
    try:
        return parse_policy(document["policy"])
    except LedgerError as e:
        raise e.located(source=str(path), line=term_line(text, e.field) if e.field else None) from None

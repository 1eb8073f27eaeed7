"""`creditledger sample generate`: a seeded sample book (ledger/tools/samplebook.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.common import app, out
from ledger.vocabulary.errors import LedgerError

sample_app = typer.Typer(rich_markup_mode=None, help="Generate a seeded sample book.", no_args_is_help=True)
app.add_typer(sample_app, name="sample")


@sample_app.command("generate")
def sample_generate(
    file: Annotated[Path, typer.Argument(help="Where to write the book: .toml (with the policy) or .jsonl.")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same book.")] = 7,
    buyers: Annotated[int, typer.Option(help="How many buyers.", min=1)] = 200,
    events: Annotated[int | None, typer.Option(help="About how many events (scales invoices).", min=100)] = None,
) -> None:
    """Write a realistic sample book: one policy, buyers in several countries, a year of trade."""
    from ledger.tools import samplebook

    policy, book = samplebook.generate(seed=seed, buyers=buyers, events=events)
    if not file.parent.is_dir():
        raise LedgerError(f"{file.parent} is not a folder", source=str(file))
    if file.suffix == ".jsonl":
        samplebook.write_jsonl(file, book)
        policy_file = file.with_suffix(".policy.toml")
        samplebook.write_toml(policy_file, policy, [])
        out.print(f"wrote {len(book)} events to {file} and the policy to {policy_file}")
    else:
        samplebook.write_toml(file, policy, book)
        out.print(f"wrote the policy and {len(book)} events to {file}")

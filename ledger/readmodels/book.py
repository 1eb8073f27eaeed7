"""The book read model: each buyer's facts (projections/bookfacts.py) and the book's sales by
country, issue day and bucket, kept from the notification log like the exposure read model
(ledger/readmodels/exposure.py: the same binding, catch-up, read-your-writes and fallback),
so that the premium account, turnover and the claims register never read the whole log
(docs/design.md "Read models").

Tables:
- `book_buyers`: each registered buyer's facts (country, registration day, fee basis, top-up,
  the events through which it can lose, its loss date as known now), msgspec JSON;
- `book_buyer_sales`: each buyer's sales summed by issue day and bucket, msgspec JSON (what it
  added to `book_sales`: a catch-up takes that away before it adds the buyer's new sales);
- `book_sales`: the book's sales by (country, day, bucket): their sum and how many lines, a row
  only where there is a line (the declaration lists the countries that sold in a period).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ledger.readmodels.exposure import ExposureModel, Progress, Writer
from ledger.vocabulary.bulk import collector_paused
from projections.bookfacts import BuyerFacts, DaySales, buyer_facts
from projections.turnover import BuyerSales, Sale

NAME = "book_facts"
TABLES = ("book_buyers", "book_buyer_sales", "book_sales")
FACTS_VERSION = "2"  # of the JSON in the rows: a change rebuilds the model, like a new table layout
_SCHEMA = (
    "CREATE TABLE book_buyers (buyer TEXT PRIMARY KEY, facts TEXT NOT NULL)",
    "CREATE TABLE book_buyer_sales (buyer TEXT PRIMARY KEY, country TEXT NOT NULL, sales TEXT NOT NULL)",
    "CREATE TABLE book_sales (country TEXT NOT NULL, day TEXT NOT NULL, bucket TEXT NOT NULL, "
    "amount BIGINT NOT NULL, lines BIGINT NOT NULL, PRIMARY KEY (country, day, bucket))",
)
LAYOUT = hashlib.sha256("\n".join((*_SCHEMA, FACTS_VERSION)).encode()).hexdigest()[:16]
# What a catch-up adds to (or, negative, takes from) a (country, day, bucket) of the book.
_ADD_SALES = (
    "INSERT INTO book_sales AS s VALUES (?, ?, ?, ?, ?) ON CONFLICT (country, day, bucket) "
    "DO UPDATE SET amount = s.amount + excluded.amount, lines = s.lines + excluded.lines"
)

_encode = msgspec.json.Encoder().encode
_facts = msgspec.json.Decoder(BuyerFacts).decode
_sales = msgspec.json.Decoder(tuple[DaySales, ...]).decode

Folded = tuple[str, BuyerFacts | None, tuple[DaySales, ...]]  # a buyer refolded: None, not registered
Key = tuple[str, str, str]  # country, day, bucket


class BookModel(ExposureModel):
    """Every registered buyer's facts and the book's sales as known now, kept from the log."""

    NAME = NAME
    TABLES = TABLES
    SCHEMA = _SCHEMA
    LAYOUT = LAYOUT

    def _fold(self, buyers: list[str], progress: Progress | None) -> list[Any]:
        policy = self.ledger.policy_events()
        folded: list[Folded] = []
        with collector_paused(len(buyers) * 100):
            for done, buyer in enumerate(buyers, 1):
                found = buyer_facts(buyer, self.ledger.buyer_events(buyer), policy)
                folded.append((buyer, None, ()) if found is None else (buyer, *found))
                if progress is not None:
                    progress(done, len(buyers))
        return folded

    def _write(
        self, writer: Writer, rows: list[Any], buyers: list[str], everyone: bool, target: int,
        chain_hash: str | None,
    ) -> None:
        folded: list[Folded] = rows
        change: dict[Key, list[int]] = {}
        if everyone:
            for table in TABLES:
                writer.execute(f"DELETE FROM {table}")  # noqa: S608 (constant names)
        else:
            for start in range(0, len(buyers), 500):
                chunk = buyers[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                for country, sales in writer.select(
                        f"SELECT country, sales FROM book_buyer_sales WHERE buyer IN ({marks})", chunk):  # noqa: S608
                    _add(change, country, _sales(sales), -1)  # what the buyer's old sales added
                for table in ("book_buyers", "book_buyer_sales"):
                    writer.execute(f"DELETE FROM {table} WHERE buyer IN ({marks})", chunk)  # noqa: S608 (placeholders only)
        registered = [(buyer, facts, sales) for buyer, facts, sales in folded if facts is not None]
        for _buyer, facts, sales in registered:
            _add(change, facts.country, sales, 1)
        writer.insert("book_buyers", [(buyer, _encode(facts).decode()) for buyer, facts, _ in registered])
        writer.insert("book_buyer_sales", [(buyer, facts.country, _encode(sales).decode())
                                           for buyer, facts, sales in registered])
        changed = [(*key, amount, lines) for key, (amount, lines) in sorted(change.items()) if amount or lines]
        if everyone:
            writer.insert("book_sales", changed)
        else:
            writer.executemany(_ADD_SALES, changed)
            writer.execute("DELETE FROM book_sales WHERE lines = 0")  # no line left there
        writer.bind(target, chain_hash, self.LAYOUT)

    # ------------------------------------------------------------ reading (as known now)

    def facts(self) -> dict[str, BuyerFacts]:
        """Every registered buyer's facts, in buyer order."""
        return {buyer: _facts(facts) for buyer, facts in sorted(self._read("SELECT buyer, facts FROM book_buyers"))}

    def sales(self) -> list[BuyerSales]:
        """The book's sales, one `BuyerSales` per country (lines summed by day and bucket): the
        same turnover and premium as every buyer's own sales, which are only summed by period
        and country."""
        by_country: dict[str, list[Sale]] = {}
        for country, day, bucket, amount in self._read("SELECT country, day, bucket, amount FROM book_sales"):
            by_country.setdefault(country, []).append(Sale(datetime.date.fromisoformat(day), bucket, int(amount)))
        return [BuyerSales(country, sorted(lines)) for country, lines in sorted(by_country.items())]

    def stored_facts(self) -> tuple[dict[str, BuyerFacts], dict[str, tuple[DaySales, ...]], dict[Key, tuple[int, int]]]:
        """Every stored row (for checks: a fresh fold must give the same): the facts and the day
        sales by buyer, and the book's sales by (country, day, bucket) as (sum, lines)."""
        sales = {buyer: _sales(text) for buyer, _, text in self._read("SELECT buyer, country, sales FROM book_buyer_sales")}
        book = {(country, day, bucket): (int(amount), int(lines)) for country, day, bucket, amount, lines
                in self._read("SELECT country, day, bucket, amount, lines FROM book_sales")}
        return self.facts(), sales, book


def book_of(folded: Iterable[Folded]) -> dict[Key, tuple[int, int]]:
    """The book's sales by (country, day, bucket) of these buyers' day sales, as `book_sales` keeps them."""
    change: dict[Key, list[int]] = {}
    for _buyer, facts, sales in folded:
        if facts is not None:
            _add(change, facts.country, sales, 1)
    return {key: (amount, lines) for key, (amount, lines) in change.items() if lines}


def _add(change: dict[Key, list[int]], country: str, sales: Sequence[DaySales], sign: int) -> None:
    for day, bucket, amount, lines in sales:
        found = change.setdefault((country, day.isoformat(), bucket), [0, 0])
        found[0] += sign * amount
        found[1] += sign * lines

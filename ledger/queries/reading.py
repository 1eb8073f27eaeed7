"""What a query reads of a ledger. The service's `Ledger` is one; queries never open the store."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from ledger.readmodels.book import BookModel
from ledger.readmodels.exposure import ExposureModel, LogReader
from ledger.vocabulary.events import Event
from ledger.vocabulary.terms import PolicyTerms


class LedgerReader(LogReader, Protocol):
    """The streams, the policy terms, the read models and the ledger's clock."""

    clock: Callable[[], datetime.datetime]

    @property
    def exposure_model(self) -> ExposureModel: ...
    @property
    def book_model(self) -> BookModel: ...
    def last_recorded(self) -> str | None: ...
    def terms(self) -> PolicyTerms: ...
    def events(self, known_at: datetime.datetime | None = None) -> Iterator[Event]: ...
    def positions(self, event_ids: Iterable[str]) -> dict[str, int]: ...
    def head(self, known_at: datetime.datetime | None = None) -> tuple[int, str]: ...
    def log(
        self,
        *,
        buyer: str | None = None,
        types: Sequence[str] = (),
        effective_from: datetime.date | None = None,
        effective_to: datetime.date | None = None,
        known_at: datetime.datetime | None = None,
        limit: int | None = None,
    ) -> list[Event]: ...

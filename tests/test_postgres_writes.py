"""Large writes on PostgreSQL: one import of thousands of events is one transaction that
commits whole. (Through psycopg's pipeline mode such writes now and then hung or failed
reading an index INSERT's status; the recorder now writes in a plain transaction.)"""

from __future__ import annotations

import pytest

from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy


@pytest.mark.slow
def test_an_import_of_thousands_of_events_commits_whole(postgres_location: str) -> None:
    policy, rows = samplebook.generate(seed=5, buyers=20, events=15000)
    with Ledger(postgres_location) as ledger:
        ledger.load_policy(parse_policy(policy))
        # Three large writes: the failure came at random, more often the larger the write.
        for first in range(0, len(rows), 5000):
            chunk = list(enumerate(rows[first:first + 5000], first + 1))
            outcome = ledger.record(ledger.parse(chunk, "book"))
            assert len(outcome.recorded) == len(chunk)
        assert ledger.count() == len(rows) + 1
        keys = [row["key"] for row in rows]
        assert len(ledger.store.index.find_keys(keys)) == len(set(keys))

"""The event store, the only way to a ledger's database: eventsourcing's Application
(`LedgerStore`), its recorders (one module per backend) and the one msgspec Mapper.

- `mapper`: streams, stored topics, `Envelope`, `LedgerMapper`
- `index`: `ledger_index` rows (`IndexRow`) and the queries over them (`IndexQueries`)
- `chain`: the hash chain (`chain_hash`, `chain_links`) and its reads for verify (`ChainQueries`)
- `sqlite`, `postgres`: the recorders, each writing events, index and chain in one transaction
- `application`: `LedgerStore` (append, bulk insert, replay, streams, the index)
- `models`: read models' tables in the ledger's database, their tracking and binding (`model_tables`)
- `opening`: a location's settings, `open_store`, `ledger_exists`
- `tokens`: the web service's write tokens and which token wrote which events (`TokenTable`)

Import from `ledger.store`, not from its modules (the recorders are found by
eventsourcing through their topics in the settings).
"""

from ledger.store.application import REPLAY_PAGE, LedgerStore
from ledger.store.chain import (
    CHAIN_KEY_VARIABLE,
    GENESIS,
    ChainQueries,
    ChainSlot,
    chain_hash,
    chain_key,
    checkpoint_mac,
)
from ledger.store.index import BulkInsert, IndexQueries, IndexRow
from ledger.store.mapper import POLICY_STREAM, Envelope, LedgerMapper, buyer_stream, stream_of, topic_of
from ledger.store.models import Binding, ModelTables, ModelWriter, memory_tables
from ledger.store.opening import ledger_exists, model_tables, open_store, store_environment
from ledger.store.tokens import TokenInfo, TokenTable

__all__ = [
    "CHAIN_KEY_VARIABLE",
    "GENESIS",
    "POLICY_STREAM",
    "REPLAY_PAGE",
    "Binding",
    "BulkInsert",
    "ChainQueries",
    "ChainSlot",
    "Envelope",
    "IndexQueries",
    "IndexRow",
    "LedgerMapper",
    "LedgerStore",
    "ModelTables",
    "ModelWriter",
    "TokenInfo",
    "TokenTable",
    "buyer_stream",
    "chain_hash",
    "chain_key",
    "checkpoint_mac",
    "ledger_exists",
    "memory_tables",
    "model_tables",
    "open_store",
    "store_environment",
    "stream_of",
    "topic_of",
]

"""Events in streams, as eventsourcing stores them: stream ids, stored topics, the Envelope and the one Mapper.

Streams (docs/design.md): one per buyer and one for the policy. A stored topic
names the public event type and its schema version, never a class path, so
that a stored event outlives any refactoring of the code.
"""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import register_topic

from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import EVENT_TYPES, Event, buyer_of

LEDGER_NAMESPACE = uuid.UUID("5c1d3c4e-8f0b-4a43-9a55-2f6c2b1e7d10")
POLICY_STREAM = uuid.uuid5(LEDGER_NAMESPACE, "policy")

# Schema version of each event type's stored form. Bump one and add an
# upcaster to `UPCASTERS` when a stored form changes; old rows keep decoding.
SCHEMA_VERSIONS: dict[str, int] = {name: 1 for name in EVENT_TYPES}
UPCASTERS: dict[tuple[str, int], Any] = {}


def stream_of(event: Event) -> uuid.UUID:
    """The stream an event belongs to: its buyer's, or the policy's."""
    buyer = buyer_of(event)
    return POLICY_STREAM if buyer is None else buyer_stream(buyer)


@functools.lru_cache(maxsize=65536)
def buyer_stream(buyer: str) -> uuid.UUID:
    """Stable stream id of a buyer (the same in every ledger and backend)."""
    return uuid.uuid5(LEDGER_NAMESPACE, "buyer:" + buyer)


def topic_of(type_name: str) -> str:
    """Stored topic: the public type name and schema version, never a class path."""
    return f"creditledger:{type_name}:v{SCHEMA_VERSIONS[type_name]}"


class Envelope(msgspec.Struct, frozen=True):
    """An event placed in a stream: what eventsourcing stores and returns."""

    originator_id: uuid.UUID
    originator_version: int
    event: Event


for _name, _cls in EVENT_TYPES.items():
    register_topic(topic_of(_name), _cls)


class LedgerMapper(Mapper[uuid.UUID]):
    """The one place where events are encoded, decoded and upcast.

    State is the event's msgspec JSON (readable in any SQLite tool); decoding
    goes straight from the stored bytes to the typed Struct.
    """

    def __init__(self, transcoder: Any = None, compressor: Any = None, cipher: Any = None) -> None:
        super().__init__(transcoder or JSONTranscoder(), compressor, cipher)
        self._encoder = msgspec.json.Encoder()
        self.decoders = {
            topic_of(name): msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()
        }

    def encode(self, event: Event) -> bytes:
        return self._encoder.encode(event)

    def decode(self, topic: str, state: bytes) -> Event:
        """Decode stored state, upcasting an older schema version first."""
        decoder = self.decoders.get(topic)
        if decoder is not None:
            return decoder.decode(state)
        match = re.fullmatch(r"creditledger:(\w+):v(\d+)", topic)
        if match is None or match.group(1) not in EVENT_TYPES:
            raise LedgerError(f"stored event has an unknown topic {topic!r}")
        name, version = match.group(1), int(match.group(2))
        data = msgspec.json.decode(state)
        while version < SCHEMA_VERSIONS[name]:
            data = UPCASTERS[(name, version)](data)
            version += 1
        return msgspec.convert(data, EVENT_TYPES[name])

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        envelope: Envelope = domain_event
        return StoredEvent(
            originator_id=envelope.originator_id,
            originator_version=envelope.originator_version,
            topic=topic_of(envelope.event.type),
            state=self.encode(envelope.event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        originator_id = stored_event.originator_id
        return Envelope(
            originator_id=originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(originator_id),
            originator_version=stored_event.originator_version,
            event=self.decode(stored_event.topic, stored_event.state),
        )

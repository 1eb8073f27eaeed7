"""The ASGI application of `creditledger serve`: Litestar, the JSON API (`api.py`) and the web view.

Handlers are synchronous and Litestar runs them in a thread pool. Each request leases a `Ledger`
of its own from `LedgerPool` for its whole duration (the Litestar dependency `ledger`), so no two
threads ever use one `Ledger` at once; a `Ledger`'s store connections come from eventsourcing's
pool, which allows any thread. On SQLite a background thread keeps the exposure read model
caught up every second, so that a request finds it current and never pays for the fold.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme
from litestar.template import TemplateConfig

from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.web import pages
from ledger.web.api import API, http_problem, internal_problem, ledger_problem, validation_problem

log = logging.getLogger("creditledger.serve")
# What the application serves: the JSON API and the web view's pages (which serve their static files).
ROUTES: list[Any] = [*API, *pages.ROUTES]
TEMPLATES: TemplateConfig[Any] = pages.TEMPLATES
CATCH_UP_EVERY = 1.0  # seconds between two catch-ups of the exposure read model


class LedgerPool:
    """Open ledgers, each lent to one request at a time: a request takes an idle one (opening
    another when none is idle, so the pool grows to the number of requests served at once)
    and gives it back when its answer is sent. At most `keep` idle ones stay open: each holds
    its own database connections (on PostgreSQL, a pool of them), which a burst of requests
    must not keep after it has passed."""

    KEEP = 4

    def __init__(self, location: str) -> None:
        self.location = location
        self._idle: list[Ledger] = []
        self._all: list[Ledger] = []
        self._lock = threading.Lock()

    def lease(self) -> Iterator[Ledger]:
        with self._lock:
            ledger = self._idle.pop() if self._idle else None
        if ledger is None:
            ledger = Ledger(self.location)
            with self._lock:
                self._all.append(ledger)
        try:
            yield ledger
        finally:
            with self._lock:
                surplus = len(self._idle) >= self.KEEP
                if surplus:
                    self._all.remove(ledger)
                else:
                    self._idle.append(ledger)
            if surplus:
                ledger.close()

    def close(self) -> None:
        with self._lock:
            for ledger in self._all:
                ledger.close()
            self._all.clear()
            self._idle.clear()


class CatchUp:
    """Keeps the read models caught up in the background (the model's `follow`: LISTEN/NOTIFY on
    PostgreSQL, polling on SQLite). The models live in the ledger's database, which every
    request's `Ledger` shares, so a request's own catch-up seldom finds anything to do."""

    def __init__(self, location: str, every: float) -> None:
        self.location, self.every = location, every
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="catch-up", daemon=True)

    def _run(self) -> None:
        with Ledger(self.location) as ledger:
            ledger.exposure_model.follow(self.stopping, poll=self.every, catch_up=ledger.catch_up_models)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


def create_app(
    location: str, *, read_only: bool = False, catch_up_every: float | None = CATCH_UP_EVERY, debug: bool = False
) -> Litestar:
    """The application serving the ledger at `location` (which must exist).

    `read_only`: every write answers 405. `catch_up_every`: at most this many seconds between
    background catch-ups of the read models (None: none, each request catches up)."""
    pool = LedgerPool(location)
    background = (
        CatchUp(location, catch_up_every) if catch_up_every is not None else None
    )
    stopping = threading.Event()  # set on shutdown: event streams end

    def starting() -> None:
        _streams_end_on_signals(stopping)
        if background is not None:
            background.start()

    def stopped() -> None:
        stopping.set()
        if background is not None:
            background.stop()
        pool.close()

    app = Litestar(
        route_handlers=ROUTES,
        template_config=TEMPLATES,
        dependencies={"ledger": Provide(pool.lease)},
        exception_handlers={
            LedgerError: ledger_problem,
            ValidationException: validation_problem,
            HTTPException: http_problem,
            Exception: internal_problem,
        },
        openapi_config=OpenAPIConfig(
            title="creditledger",
            version="1",
            description="The ledger's queries, its event log and its write endpoint, as JSON. "
            "Every answer is the JSON the command line prints with --json (docs/json.md).",
            path="/api",
            render_plugins=[SwaggerRenderPlugin(path="/docs")],
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer",
                                         description="A token made by `creditledger token create`."),
            }),
        ),
        state=State({"read_only": read_only, "location": location, "stopping": stopping, "ledgers": pool}),
        on_startup=[starting],
        on_shutdown=[stopped],
        debug=debug,
    )
    _fixed_tuples(app.openapi_schema)
    return app


def _streams_end_on_signals(stopping: threading.Event) -> None:
    """On SIGTERM or SIGINT, end the event streams at once: the server waits for open
    connections before it shuts the application down, and a stream never closes by itself.
    Chained before the server's own handlers (installed by then, on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return  # not under a server that handles signals (a test client)
    for number in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(number)
        if callable(previous):
            def handler(sig: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
                stopping.set()
                previous(sig, frame)

            signal.signal(number, handler)


def _fixed_tuples(node: Any) -> None:
    """Litestar documents a fixed-length tuple (a period's two dates) with `prefixItems`, which
    schemathesis and OpenAPI 3.0 tools misread: say "an array of exactly n such items" instead."""
    if isinstance(node, Schema):
        if node.prefix_items:
            kinds = list(node.prefix_items)
            node.min_items = node.max_items = len(kinds)
            node.prefix_items = None
            node.items = kinds[0] if all(kind == kinds[0] for kind in kinds) else Schema(any_of=kinds)
        children: Any = [getattr(node, name, None) for name in (
            "properties", "items", "one_of", "any_of", "all_of", "additional_properties")]
    elif isinstance(node, dict):
        children = list(node.values())
    elif isinstance(node, (list, tuple)):
        children = node
    elif hasattr(node, "__dataclass_fields__"):
        children = [getattr(node, name) for name in node.__dataclass_fields__]
    else:
        return
    for child in children:
        _fixed_tuples(child)

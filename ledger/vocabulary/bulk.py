"""Bulk work: its progress hook, and Python's cycle collector paused while it runs.

Each full collection walks every live object. An import of a million events
keeps a million drafts alive until they are saved, and a query of the book
keeps every event, sale and cover alive until it answers, so the collections
they trigger cost more than the work itself (about a third of the premium
account at 100,000 events); neither makes cycles that must be freed before it
ends, so the collector waits until the work is done.

The switch is the whole process's: only the main thread pulls it. In
`creditledger serve` requests run on other threads, and one request must not
turn the collector off under all the others.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator

BULK = 10_000  # below this many items the collector's passes cost little
ProgressHook = Callable[[int], None]  # told how many more items of a bulk job are done


@contextlib.contextmanager
def collector_paused(items: int | None = None) -> Iterator[None]:
    """Pause the cycle collector while working on `items` things, if that many (None: however
    many), on the main thread only; turned back on only by the caller that turned it off."""
    if (items is not None and items < BULK) or not gc.isenabled() \
            or threading.current_thread() is not threading.main_thread():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

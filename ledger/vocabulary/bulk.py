"""Bulk work: its progress hook, and Python's cycle collector paused while it runs.

Each full collection walks every live object. An import of a million events
keeps a million drafts alive until they are saved, so the collections it
triggers cost more than the import itself; the pipeline makes no cycles that
must be freed before it ends, so the collector waits until the work is done.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

BULK = 10_000  # below this many items the collector's passes cost little
ProgressHook = Callable[[int], None]  # told how many more items of a bulk job are done


@contextlib.contextmanager
def collector_paused(items: int) -> Iterator[None]:
    """Pause the cycle collector while working on `items` things, if that many."""
    if items < BULK or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

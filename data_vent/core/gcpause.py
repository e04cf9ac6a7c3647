"""Pausing Python's cyclic garbage collector around bulk, allocation-heavy work.

Reading the planner's snapshot and planning build tens of thousands of small objects and
no reference cycles; the collector, triggered by allocation counts, would walk the ever
larger heap again and again (1.5-2x the time of reading and planning 24,000 assets).
Reference counting still frees everything; the collector runs again after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

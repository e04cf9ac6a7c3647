"""A cap on concurrent calls to OOI across every worker and process sharing the state DB.

N workers each with a thread pool would otherwise send N x threads calls at once. Each call
first takes one of ``cap`` slots in the state DB's ``call_slot`` table (see
:mod:`data_vent.state.slots`) and frees it when the answer has been read. A process keeps
the slots it holds alive with one heartbeat thread, so a slot can expire quickly (a crashed
worker's slots are free again within ``ttl`` seconds) while a long download keeps its own.
Inside one process a semaphore of ``cap`` keeps surplus threads off the database.

The state DB works everywhere data-vent does (SQLite file, PostgreSQL); a Prefect global
concurrency limit would need a Prefect API reachable from every call site.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from data_vent.state import slots

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from data_vent.settings import Settings

log = logging.getLogger(__name__)

LIMIT_NAME = "ooi"


class CallLimiter:
    """``with limiter.slot():`` around each call; blocks while ``cap`` calls are out."""

    def __init__(
        self, engine: Engine, cap: int, ttl: float = 60.0, name: str = LIMIT_NAME
    ) -> None:
        if cap < 1:
            raise ValueError("a call limiter needs a cap of at least 1")
        self.engine, self.cap, self.ttl, self.name = engine, cap, ttl, name
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._local = threading.BoundedSemaphore(cap)
        self._count = itertools.count()
        self._held = 0
        self._cond = threading.Condition()
        self._beat: threading.Thread | None = None

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        with self._local:
            holder = f"{self.owner}#{next(self._count)}"
            slot = self._acquire(holder)
            self._hold(+1)
            try:
                yield slot
            finally:
                self._hold(-1)
                try:
                    slots.release_slot(self.engine, self.name, slot, holder)
                except Exception:  # it expires by itself; never fail the call for it
                    log.warning("could not free OOI call slot %s", slot, exc_info=True)

    def _acquire(self, holder: str) -> int:
        delay = 0.01
        while True:
            got = slots.acquire_slot(
                self.engine, self.name, self.cap, holder, self.owner, self.ttl
            )
            if got is not None:
                return got
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)

    def _hold(self, n: int) -> None:
        with self._cond:
            self._held += n
            if self._held > 0 and (self._beat is None or not self._beat.is_alive()):
                self._beat = threading.Thread(
                    target=self._heartbeat, name="ooi-call-slots", daemon=True
                )
                self._beat.start()
            self._cond.notify_all()

    def _heartbeat(self) -> None:
        """Renew this process's slots every ttl/3 while it holds any; then stop."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._held == 0, timeout=self.ttl / 3)
                if self._held == 0:
                    self._beat = None
                    return
            try:
                slots.renew_slots(self.engine, self.name, self.owner, self.ttl)
            except Exception:
                log.warning("could not renew the OOI call slots", exc_info=True)


_LIMITERS: dict[tuple[str, int, float], CallLimiter] = {}
_LOCK = threading.Lock()


def limiter_for(settings: Settings, engine: Engine) -> CallLimiter | None:
    """This process's limiter for ``engine``'s DB (shared by its threads); None: no cap."""
    cap = settings.ooi_max_calls
    if cap <= 0:
        return None
    key = (str(engine.url), cap, settings.ooi_call_slot_seconds)
    with _LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None or limiter.engine is not engine:
            limiter = _LIMITERS[key] = CallLimiter(engine, cap, settings.ooi_call_slot_seconds)
        return limiter

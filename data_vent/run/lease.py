"""An asset's lease as one writer holds it: taken with a bounded wait, kept by a heartbeat.

One writer per store: every write (harvest, materialize, ingest, rebuild, repair) holds the
asset's lease from before it reads the store's state until after it has recorded the
attempt. A second writer waits up to ``DATA_VENT_LEASE_WAIT`` seconds for it, then gives up
with ``LeaseHeld`` naming the holder. The holder renews its lease every
``DATA_VENT_LEASE_RENEW_SECONDS``; a holder that died stops renewing, and its lease expires
``DATA_VENT_LEASE_SECONDS`` after the last renewal, so the asset is free within about a
minute. A holder that finds its lease taken (it stalled past the expiry) stops: it raises
``LeaseLost`` at its next renewal instead of writing beside the new holder.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from data_vent.core.errors import LeaseHeld, LeaseLost
from data_vent.core.snapshot import LeaseRecord
from data_vent.core.timeutil import utcnow
from data_vent.settings import Settings
from data_vent.state import leases

log = logging.getLogger("data_vent")

POLL_SECONDS = 0.5
"""How often a waiting writer tries the lease again."""


def holder_id(run_id: str) -> str:
    """This writer: host, process, thread and run (two threads of one run are two holders)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{run_id}"


def renew_interval(settings: Settings) -> float:
    """The heartbeat period: the setting, but never less than three beats per expiry."""
    return max(0.05, min(settings.lease_renew_seconds, settings.lease_seconds / 3))


class HeldLease:
    """A lease this writer holds; a background thread renews it until released."""

    def __init__(self, engine: Engine, key: str, holder: str, settings: Settings):
        self.engine, self.key, self.holder = engine, key, holder
        self.ttl = settings.lease_seconds
        self.every = renew_interval(settings)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{key}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not leases.renew_lease(self.engine, self.key, self.holder, self.ttl):
                    self.lost = True
                    log.error("lost the lease of %s: another writer took it", self.key)
                    return
            except Exception:  # the DB may come back before the lease expires
                log.warning("could not renew the lease of %s", self.key, exc_info=True)

    def renew(self) -> None:
        """Renew now (between long steps); raise ``LeaseLost`` if another writer has it."""
        if self.lost or not leases.renew_lease(self.engine, self.key, self.holder, self.ttl):
            self.lost = True
            raise LeaseLost(
                f"{self.key}: this run's lease expired and another writer took it; "
                "stopped before writing (raise DATA_VENT_LEASE_SECONDS if the DB is slow)"
            )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def held_message(key: str, rec: LeaseRecord | None, waited: float) -> str:
    who = rec.describe() if rec else "another writer"
    return (
        f"{key} is being written by {who}, which holds its lease; waited {waited:.0f} s "
        "(DATA_VENT_LEASE_WAIT): try again when it is done"
    )


@contextmanager
def hold_lease(
    engine: Engine,
    key: str,
    run_id: str,
    settings: Settings,
    wait: float = 0.0,
    on_wait: Callable[[LeaseRecord | None], None] | None = None,
    impatient: Container[str] = (),
) -> Iterator[HeldLease]:
    """Hold ``key``'s lease for the block, waiting up to ``wait`` s for a live holder (not
    at all for a holder whose run id is in ``impatient``).

    Raises ``LeaseHeld`` (naming the holder) if it is still held after the wait.
    """
    holder = holder_id(run_id)
    start = time.monotonic()
    told = False
    while not leases.acquire_lease(engine, key, holder, settings.lease_seconds, run_id):
        rec = leases.lease_record(engine, key)
        if rec is not None and not rec.live(utcnow()):
            continue  # it expired between the two reads: take it now
        waited = time.monotonic() - start
        if waited >= wait or (rec is not None and rec.run_id in impatient):
            raise LeaseHeld(held_message(key, rec, waited), rec)
        if on_wait is not None and not told:
            on_wait(rec)
            told = True
        time.sleep(min(POLL_SECONDS, max(0.01, wait - waited)))
    lease = HeldLease(engine, key, holder, settings)
    lease.start()
    try:
        yield lease
    finally:
        lease.stop()
        try:
            leases.release_lease(engine, key, lease.holder)
        except Exception:  # it expires on its own; never hide the block's own error
            log.warning("could not release the lease of %s", key, exc_info=True)

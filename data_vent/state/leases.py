"""Per-asset leases: at most one live holder writes an asset; a dead holder's lease expires.

Taking a lease is one atomic upsert on both SQLite and PostgreSQL. A holder renews its lease
(a heartbeat, ``DATA_VENT_LEASE_RENEW_SECONDS``) well inside its expiry
(``DATA_VENT_LEASE_SECONDS``), so a holder that died is noticed within one expiry. A lease
row whose expiry has passed is a writer that died holding it: its store may need repair.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from data_vent.core.snapshot import LeaseRecord
from data_vent.core.timeutil import utcnow
from data_vent.state.models import Lease

L = Lease.__table__
HOLDER_MAX = 128


def _upsert(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def acquire_lease(
    engine: Engine, asset_key: str, holder: str, ttl: float, run_id: str | None = None
) -> bool:
    """Take the asset's lease if free, expired, or already ours. Atomic on both databases."""
    now = utcnow()
    holder = holder[-HOLDER_MAX:]
    ins = _upsert(engine)(L).values(
        asset_key=asset_key,
        holder=holder,
        run_id=run_id,
        acquired_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    stmt = ins.on_conflict_do_update(
        index_elements=[L.c.asset_key],
        set_={
            "holder": ins.excluded.holder,
            "run_id": ins.excluded.run_id,
            "acquired_at": ins.excluded.acquired_at,
            "expires_at": ins.excluded.expires_at,
        },
        where=(L.c.expires_at < now) | (L.c.holder == holder),
    )
    with engine.begin() as conn:
        conn.execute(stmt)
        current = conn.execute(select(L.c.holder).where(L.c.asset_key == asset_key)).scalar()
    return current == holder


def renew_lease(engine: Engine, asset_key: str, holder: str, ttl: float) -> bool:
    """Push the expiry ``ttl`` s ahead; False if the lease is no longer ours (lost)."""
    with engine.begin() as conn:
        res = conn.execute(
            update(L)
            .where((L.c.asset_key == asset_key) & (L.c.holder == holder[-HOLDER_MAX:]))
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
    return res.rowcount == 1


def release_lease(engine: Engine, asset_key: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(L).where(
                (L.c.asset_key == asset_key) & (L.c.holder == holder[-HOLDER_MAX:])
            )
        )


def lease_holder(engine: Engine, asset_key: str) -> tuple[str, datetime] | None:
    rec = lease_record(engine, asset_key)
    return (rec.holder, rec.expires_at) if rec else None


def _record(r) -> LeaseRecord:
    return LeaseRecord(r.asset_key, r.holder, r.run_id, r.acquired_at, r.expires_at)


def lease_record(engine: Engine, asset_key: str) -> LeaseRecord | None:
    """The asset's lease row (live or expired), or None when no one holds it."""
    with engine.connect() as conn:
        r = conn.execute(select(L).where(L.c.asset_key == asset_key)).first()
    return _record(r) if r else None


def lease_records(engine: Engine, keys: Iterable[str] | None = None) -> dict[str, LeaseRecord]:
    """Every lease row (of ``keys``, or all): live writers, and writers that died holding."""
    stmt = select(L)
    if keys is not None:
        keys = list(keys)
        if not keys:
            return {}
        stmt = stmt.where(L.c.asset_key.in_(keys))
    with engine.connect() as conn:
        return {r.asset_key: _record(r) for r in conn.execute(stmt)}

"""Per-asset leases: at most one live holder writes an asset; a dead holder's lease expires.

Taking a lease is one atomic upsert on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from data_vent.core.timeutil import utcnow
from data_vent.state.models import Lease

L = Lease.__table__


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
    with engine.begin() as conn:
        res = conn.execute(
            update(L)
            .where((L.c.asset_key == asset_key) & (L.c.holder == holder))
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
    return res.rowcount == 1


def release_lease(engine: Engine, asset_key: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(L).where((L.c.asset_key == asset_key) & (L.c.holder == holder)))


def lease_holder(engine: Engine, asset_key: str) -> tuple[str, datetime] | None:
    with engine.connect() as conn:
        r = conn.execute(
            select(L.c.holder, L.c.expires_at).where(L.c.asset_key == asset_key)
        ).first()
    return (r.holder, r.expires_at) if r else None

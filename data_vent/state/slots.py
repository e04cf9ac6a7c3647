"""Shared limits: ``cap`` numbered slots per limit name, held with an expiry.

Every process that shares the state DB takes a slot before the guarded work and frees it
after, so together they never hold more than ``cap`` at once. Taking a slot is one atomic
upsert that succeeds only on a free or expired row. Takers of one limit are serialized (SQLite
takes the write lock up front; PostgreSQL an advisory lock per limit name). A crashed
holder's slots expire.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from data_vent.core.timeutil import utcnow
from data_vent.state.locks import serialize
from data_vent.state.models import CallSlot

S = CallSlot.__table__


def _insert(engine: Engine):
    """The dialect's INSERT, which has ``on_conflict_do_update`` on both databases."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def acquire_slot(
    engine: Engine, name: str, cap: int, holder: str, owner: str, ttl: float
) -> int | None:
    """Take a free (or expired) slot of ``name`` for ``holder``; None if all ``cap`` are
    held. ``holder`` is unique per acquisition, ``owner`` names the process (for renewal)."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    with engine.begin() as conn:
        # One taker per limit at a time: on PostgreSQL an upsert that finds a live slot still
        # locks its row, so two takers trying the same slots in other orders deadlocked.
        serialize(conn, f"slots:{name}")
        taken = set(
            conn.execute(
                select(S.c.slot).where((S.c.name == name) & (S.c.expires_at >= now))
            ).scalars()
        )
        free = [s for s in range(cap) if s not in taken]
        random.shuffle(free)  # many takers on PostgreSQL: do not all race for slot 0
        for slot in free:
            ins = _insert(engine)(S).values(
                name=name,
                slot=slot,
                holder=holder,
                owner=owner,
                acquired_at=now,
                expires_at=expires,
            )
            stmt = ins.on_conflict_do_update(
                index_elements=[S.c.name, S.c.slot],
                set_={
                    "holder": ins.excluded.holder,
                    "owner": ins.excluded.owner,
                    "acquired_at": ins.excluded.acquired_at,
                    "expires_at": ins.excluded.expires_at,
                },
                where=S.c.expires_at < now,
            ).returning(S.c.slot)
            if conn.execute(stmt).first() is not None:  # inserted, or took an expired one
                return slot
    return None


def renew_slots(engine: Engine, name: str, owner: str, ttl: float) -> int:
    """Push back the expiry of every slot ``owner`` holds; returns how many."""
    with engine.begin() as conn:
        res = conn.execute(
            update(S)
            .where((S.c.name == name) & (S.c.owner == owner))
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
    return res.rowcount


def release_slot(engine: Engine, name: str, slot: int, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(S).where((S.c.name == name) & (S.c.slot == slot) & (S.c.holder == holder))
        )


def slots_in_use(engine: Engine, name: str) -> int:
    """Live (unexpired) slots of ``name``: what every process holds right now."""
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(S)
            .where((S.c.name == name) & (S.c.expires_at >= utcnow()))
        ).scalar_one()

"""Source observations: the latest per source, and a new row only when it changed; and the
sources whose latest observation failed (``observe_error``), cleared by the next success."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from data_vent.core.records import Observation, ObserveFailure
from data_vent.core.timeutil import utcnow
from data_vent.state.locks import serialize
from data_vent.state.models import Asset, ObserveError, SourceObservation

A = Asset.__table__
O = SourceObservation.__table__  # noqa: E741
E = ObserveError.__table__


def latest_observations(
    engine: Engine, source_keys: Iterable[str] | None = None
) -> dict[str, Observation]:
    """Latest observation per source (one query)."""
    latest = select(func.max(O.c.id).label("id")).group_by(O.c.source_key)
    if source_keys is not None:
        keys = list(source_keys)
        if not keys:
            return {}
        latest = latest.where(O.c.source_key.in_(keys))
    stmt = select(O).where(O.c.id.in_(latest.scalar_subquery()))
    out: dict[str, Observation] = {}
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            out[r.source_key] = Observation(
                r.source_key, r.begin_time, r.end_time, r.count, bool(r.discontinued)
            )
    return out


def record_observations(
    engine: Engine, observations: Sequence[Observation], now: datetime | None = None
) -> list[Observation]:
    """Store observations whose (begin, end, count, discontinued) changed; return those
    that changed. A discontinued source keeps the begin, end and count it last reported.

    Every observed source, changed or not, was seen: its observe error is cleared."""
    if not observations:
        return []
    now = now or utcnow()
    keys = [o.source_key for o in observations]
    changed: list[Observation] = []
    with engine.begin() as conn:
        serialize(conn, "observations")  # a change is recorded once, not once per run
        conn.execute(delete(E).where(E.c.source_key.in_(keys)))
        latest = (
            select(func.max(O.c.id)).where(O.c.source_key.in_(keys)).group_by(O.c.source_key)
        )
        rows = conn.execute(
            select(
                O.c.source_key, O.c.data_version, O.c.begin_time, O.c.end_time, O.c.count
            ).where(O.c.id.in_(latest.scalar_subquery()))
        ).all()
        prev = {r.source_key: r.data_version for r in rows}
        last = {r.source_key: r for r in rows}
        for obs in observations:
            before = last.get(obs.source_key)
            if obs.discontinued and obs.end_time is None and before is not None:
                obs = replace(
                    obs,
                    begin_time=before.begin_time,
                    end_time=before.end_time,
                    count=before.count,
                )
            if prev.get(obs.source_key) == obs.data_version:
                continue
            new_id = conn.execute(
                insert(O).values(
                    source_key=obs.source_key,
                    begin_time=obs.begin_time,
                    end_time=obs.end_time,
                    count=obs.count,
                    data_version=obs.data_version,
                    observed_at=now,
                    discontinued=obs.discontinued,
                )
            ).inserted_primary_key[0]
            conn.execute(
                update(A).where(A.c.key == obs.source_key).values(latest_observation_id=new_id)
            )
            prev[obs.source_key] = obs.data_version
            changed.append(obs)
    return changed


def record_observe_failures(
    engine: Engine, failures: Sequence[ObserveFailure], now: datetime | None = None
) -> None:
    """Remember the sources that could not be observed (one row each, the latest error)."""
    if not failures:
        return
    now = now or utcnow()
    latest = {f.source_key: f for f in failures}
    with engine.begin() as conn:
        conn.execute(delete(E).where(E.c.source_key.in_(list(latest))))
        conn.execute(
            insert(E),
            [
                {
                    "source_key": f.source_key,
                    "error": f.error,
                    "error_type": f.error_type,
                    "failed_at": f.failed_at or now,
                }
                for f in latest.values()
            ],
        )


def observe_failures(engine: Engine) -> dict[str, ObserveFailure]:
    """Sources whose latest observation failed."""
    with engine.connect() as conn:
        return {
            r.source_key: ObserveFailure(r.source_key, r.error, r.error_type, r.failed_at)
            for r in conn.execute(select(E))
        }

"""Writes to the state DB: spec sync, observations, materializations, leases.

Bulk operations are set-based (one read, batched writes) so that syncing or observing
thousands of assets costs a handful of statements, not one per asset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from data_vent.assets.kinds import Observation, Reason
from data_vent.assets.spec import AssetSpec
from data_vent.state.models import Asset, AssetDep, Lease, Materialization, SourceObservation
from data_vent.timeutil import utcnow

A = Asset.__table__
D = AssetDep.__table__
O = SourceObservation.__table__  # noqa: E741
M = Materialization.__table__
L = Lease.__table__

_BATCH = 500


def _chunks(seq: Sequence, n: int = _BATCH) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.reactivated)} reactivated, {len(self.deactivated)} deactivated"
        )


def _asset_row(spec: AssetSpec, now: datetime) -> dict[str, Any]:
    return {
        "key": spec.key,
        "kind": spec.kind,
        "group_name": spec.group,
        "tags": dict(spec.tags),
        "code_version": spec.code_version,
        "config_hash": spec.config_hash,
        "config": json.loads(json.dumps(spec.config, default=str)),
        "observable": spec.observable,
        "active": True,
        "source_file": spec.source_file,
        "updated_at": now,
    }


def sync_specs(engine: Engine, specs: Mapping[str, AssetSpec]) -> SyncReport:
    """Make the ``asset`` and ``asset_dep`` tables match ``specs``.

    New assets are added, changed definitions get their new config hash, assets no longer
    defined become inactive: their history stays.
    """
    now = utcnow()
    report = SyncReport()
    with engine.begin() as conn:
        existing = {
            r.key: r
            for r in conn.execute(
                select(
                    A.c.key,
                    A.c.config_hash,
                    A.c.code_version,
                    A.c.active,
                    A.c.kind,
                    A.c.group_name,
                    A.c.tags,
                    A.c.source_file,
                )
            )
        }
        edges: dict[str, set[str]] = {}
        for r in conn.execute(select(D.c.asset_key, D.c.dep_key)):
            edges.setdefault(r.asset_key, set()).add(r.dep_key)
        inserts, updates = [], []
        for key, spec in specs.items():
            row = _asset_row(spec, now)
            old = existing.get(key)
            if old is None:
                inserts.append({**row, "created_at": now})
                report.added.append(key)
                continue
            differs = (
                old.config_hash != spec.config_hash
                or old.code_version != spec.code_version
                or old.kind != spec.kind
                or old.group_name != spec.group
                or (old.tags or {}) != dict(spec.tags)
                or old.source_file != spec.source_file
            )
            if not old.active:
                report.reactivated.append(key)
            elif old.config_hash != spec.config_hash or old.code_version != spec.code_version:
                report.changed.append(key)
            if differs or not old.active:
                updates.append(row)
        for batch in _chunks(inserts):
            conn.execute(insert(A), list(batch))
        for row in updates:
            conn.execute(update(A).where(A.c.key == row["key"]).values(**row))
        gone = [k for k, r in existing.items() if r.active and k not in specs]
        for batch in _chunks(gone):
            conn.execute(
                update(A).where(A.c.key.in_(batch)).values(active=False, updated_at=now)
            )
        report.deactivated = gone
        # edges: rewrite only where they differ
        stale_edges = [k for k, spec in specs.items() if edges.get(k, set()) != set(spec.deps)]
        for batch in _chunks(stale_edges):
            conn.execute(delete(D).where(D.c.asset_key.in_(batch)))
        new_edges = [
            {"asset_key": k, "dep_key": d} for k in stale_edges for d in specs[k].deps
        ]
        for batch in _chunks(new_edges):
            conn.execute(insert(D), list(batch))
    return report


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
            out[r.source_key] = Observation(r.source_key, r.begin_time, r.end_time, r.count)
    return out


def record_observations(
    engine: Engine, observations: Sequence[Observation], now: datetime | None = None
) -> list[Observation]:
    """Store observations whose (begin, end, count) changed; return those that changed."""
    if not observations:
        return []
    now = now or utcnow()
    keys = [o.source_key for o in observations]
    changed: list[Observation] = []
    with engine.begin() as conn:
        latest = (
            select(func.max(O.c.id)).where(O.c.source_key.in_(keys)).group_by(O.c.source_key)
        )
        prev = {
            r.source_key: r.data_version
            for r in conn.execute(
                select(O.c.source_key, O.c.data_version).where(
                    O.c.id.in_(latest.scalar_subquery())
                )
            )
        }
        for obs in observations:
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
                )
            ).inserted_primary_key[0]
            conn.execute(
                update(A).where(A.c.key == obs.source_key).values(latest_observation_id=new_id)
            )
            prev[obs.source_key] = obs.data_version
            changed.append(obs)
    return changed


def record_materialization(
    engine: Engine,
    *,
    asset_key: str,
    run_id: str,
    status: str,
    action: str,
    reasons: Sequence[Reason],
    started_at: datetime,
    code_version: str | None = None,
    config_hash: str | None = None,
    input_versions: Mapping[str, Any] | None = None,
    data_version: str | None = None,
    time_min: datetime | None = None,
    time_max: datetime | None = None,
    rows: int | None = None,
    error: str | None = None,
    details: Mapping[str, Any] | None = None,
    set_last_attempt: bool = True,
) -> int:
    """Insert one attempt and move the asset's last-attempt/last-success pointers.

    A skipped asset (its upstream failed) leaves its pointers alone: it was never tried.
    """
    with engine.begin() as conn:
        mid = conn.execute(
            insert(M).values(
                asset_key=asset_key,
                run_id=run_id,
                status=status,
                action=action,
                reasons=[r.to_json() for r in reasons],
                started_at=started_at,
                finished_at=utcnow(),
                code_version=code_version,
                config_hash=config_hash,
                input_versions=json.loads(json.dumps(dict(input_versions or {}), default=str)),
                data_version=data_version,
                time_min=time_min,
                time_max=time_max,
                rows=rows,
                error=error,
                details=json.loads(json.dumps(dict(details or {}), default=str)),
            )
        ).inserted_primary_key[0]
        values: dict[str, Any] = {"last_attempt_id": mid} if set_last_attempt else {}
        if status == "success":
            values["last_success_id"] = mid
        if values:
            conn.execute(update(A).where(A.c.key == asset_key).values(**values))
    return int(mid)


# ---- leases ---------------------------------------------------------------------------


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

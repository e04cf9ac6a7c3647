"""Asset definitions in the state DB: the ``asset`` and ``asset_dep`` tables follow the specs.

Set-based (one read, batched writes) so that syncing thousands of assets costs a handful of
statements, not one per asset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from data_vent.core.spec import AssetSpec
from data_vent.core.timeutil import utcnow
from data_vent.state.locks import ASSET_ROWS, serialize
from data_vent.state.models import Asset, AssetDep

A = Asset.__table__
D = AssetDep.__table__

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
        serialize(conn, ASSET_ROWS)  # runs started together must not both insert
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

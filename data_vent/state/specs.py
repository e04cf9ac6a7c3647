"""Asset definitions in the state DB: the ``asset`` and ``asset_dep`` tables follow the specs.

Set-based (one read, batched writes) so that syncing thousands of assets costs a handful of
statements, not one per asset. What a sync records is enough to rebuild every spec
(``recorded_specs``): read-only commands work from the state DB alone, without the configs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from data_vent.core.errors import BadInput
from data_vent.core.spec import AssetSpec, FreshnessPolicy
from data_vent.core.timeutil import utcnow
from data_vent.state.locks import ASSET_ROWS, serialize
from data_vent.state.models import Asset, AssetDep

A = Asset.__table__
D = AssetDep.__table__

_BATCH = 500
DEFAULT_FRESHNESS = FreshnessPolicy()


def _chunks(seq: Sequence, n: int = _BATCH) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


@dataclass
class SyncReport:
    """How the specs differ from what the state DB recorded (what a sync changes)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    """Any recorded field differs: kind, deps, group, tags, code version, config,
    freshness policy (not the file it is read from)."""
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    active_before: int = 0

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.deactivated or self.reactivated)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.reactivated)} reactivated, {len(self.deactivated)} deactivated"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "added": sorted(self.added),
            "changed": sorted(self.changed),
            "removed": sorted(self.deactivated),
            "reactivated": sorted(self.reactivated),
        }


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _asset_row(spec: AssetSpec, now: datetime) -> dict[str, Any]:
    policy = spec.freshness or DEFAULT_FRESHNESS
    return {
        "key": spec.key,
        "kind": spec.kind,
        "group_name": spec.group,
        "tags": dict(spec.tags),
        "code_version": spec.code_version,
        "config_hash": spec.config_hash,
        "config": json.loads(json.dumps(spec.config, default=str)),
        "observable": spec.observable,
        "freshness_warn_seconds": _seconds(policy.warn),
        "freshness_fail_seconds": _seconds(policy.fail),
        "active": True,
        "source_file": spec.source_file,
        "updated_at": now,
    }


_COMPARED = (
    "kind",
    "group_name",
    "tags",
    "code_version",
    "config_hash",
    "observable",
    "freshness_warn_seconds",
    "freshness_fail_seconds",
    "source_file",
)


def _read(conn: Connection) -> tuple[dict[str, Any], dict[str, set[str]]]:
    cols = [A.c.key, A.c.active, *(A.c[c] for c in _COMPARED)]
    existing = {r.key: r for r in conn.execute(select(*cols))}
    edges: dict[str, set[str]] = {}
    for r in conn.execute(select(D.c.asset_key, D.c.dep_key)):
        edges.setdefault(r.asset_key, set()).add(r.dep_key)
    return existing, edges


def _compare(
    existing: Mapping[str, Any],
    edges: Mapping[str, set[str]],
    specs: Mapping[str, AssetSpec],
    now: datetime,
) -> tuple[SyncReport, list[dict[str, Any]], list[dict[str, Any]]]:
    """The report, and the rows to insert and to update."""
    report = SyncReport(active_before=sum(1 for r in existing.values() if r.active))
    inserts, updates = [], []
    for key, spec in specs.items():
        row = _asset_row(spec, now)
        old = existing.get(key)
        if old is None:
            inserts.append({**row, "created_at": now})
            report.added.append(key)
            continue
        differs = any(
            (getattr(old, c) or {}) != row[c] if c == "tags" else getattr(old, c) != row[c]
            for c in _COMPARED
        )
        # the same definition read from another checkout of the configs is not a change
        moved_only = differs and all(
            (getattr(old, c) or {}) == row[c] if c == "tags" else getattr(old, c) == row[c]
            for c in _COMPARED
            if c != "source_file"
        )
        if not old.active:
            report.reactivated.append(key)
        elif (differs and not moved_only) or edges.get(key, set()) != set(spec.deps):
            report.changed.append(key)
        if differs or not old.active:
            updates.append(row)
    report.deactivated = [k for k, r in existing.items() if r.active and k not in specs]
    return report, inserts, updates


def spec_changes(engine: Engine, specs: Mapping[str, AssetSpec]) -> SyncReport:
    """What a sync of ``specs`` would change, without writing (read-only engines too)."""
    with engine.connect() as conn:
        existing, edges = _read(conn)
    return _compare(existing, edges, specs, utcnow())[0]


def check_prune(report: SyncReport, prune: bool) -> None:
    """Refuse a sync that would deactivate more than half of the active assets: a wrong or
    half-empty config folder must not retire the fleet unless the operator says so."""
    gone, active = len(report.deactivated), report.active_before
    if prune or not gone or gone * 2 <= active:
        return
    raise BadInput(
        f"the config folder would deactivate {gone} of the {active} active assets in the "
        "state DB (their configs are missing): check --config-dir / DATA_VENT_CONFIG_DIR, "
        "or pass --prune if they are really gone"
    )


def sync_specs(
    engine: Engine, specs: Mapping[str, AssetSpec], prune: bool = False
) -> SyncReport:
    """Make the ``asset`` and ``asset_dep`` tables match ``specs``.

    New assets are added, changed definitions are recorded, assets no longer defined become
    inactive (their history stays) -- but more than half of the active ones only with
    ``prune`` (``check_prune``).
    """
    now = utcnow()
    with engine.begin() as conn:
        serialize(conn, ASSET_ROWS)  # runs started together must not both insert
        existing, edges = _read(conn)
        report, inserts, updates = _compare(existing, edges, specs, now)
        check_prune(report, prune)
        for batch in _chunks(inserts):
            conn.execute(insert(A), list(batch))
        for row in updates:
            conn.execute(update(A).where(A.c.key == row["key"]).values(**row))
        for batch in _chunks(report.deactivated):
            conn.execute(
                update(A).where(A.c.key.in_(batch)).values(active=False, updated_at=now)
            )
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


def _policy(warn: float | None, fail: float | None) -> FreshnessPolicy:
    return FreshnessPolicy(
        warn=timedelta(seconds=warn) if warn is not None else None,
        fail=timedelta(seconds=fail) if fail is not None else None,
    )


def recorded_specs(engine: Engine) -> dict[str, AssetSpec]:
    """The active asset specs as the last sync recorded them (two queries)."""
    with engine.connect() as conn:
        rows = list(conn.execute(select(A).where(A.c.active).order_by(A.c.key)))
        deps: dict[str, list[str]] = {}
        for r in conn.execute(select(D.c.asset_key, D.c.dep_key).order_by(D.c.dep_key)):
            deps.setdefault(r.asset_key, []).append(r.dep_key)
    return {
        r.key: AssetSpec(
            key=r.key,
            kind=r.kind,
            deps=tuple(deps.get(r.key, ())),
            group=r.group_name,
            tags=dict(r.tags or {}),
            freshness=_policy(r.freshness_warn_seconds, r.freshness_fail_seconds),
            code_version=r.code_version,
            config=dict(r.config or {}),
            observable=bool(r.observable),
            source_file=r.source_file,
        )
        for r in rows
    }

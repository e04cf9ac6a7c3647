"""Harvest status rows, the ``status --json`` document, and `why`: the third way in.

A status row is the ``stream_status`` view's row as it is (the one definition of coverage,
lags, freshness and last error, shared with SQL clients), plus what only the planner knows:
the asset's status, whether it is stale, its reasons with their values, and a note on why a
fresh-looking asset is not planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from data_vent.core.snapshot import StateSnapshot
from data_vent.core.spec import FreshnessPolicy
from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import FreshnessState, NotPlannedCode, ReasonCode
from data_vent.graph.planner import Plan
from data_vent.graph.status import HEADLINE_ORDER, asset_status, headline
from data_vent.run.workspace import Workspace
from data_vent.state.specs import SyncReport
from data_vent.state.status import STREAM_STATUS_COLUMNS, read_stream_status

STATUS_SCHEMA_VERSION = 1
"""Bump (with a new ``data_vent/schemas/status-vN.json``) when a field changes meaning or
goes away; adding a field keeps the version."""


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def status_rows(
    ws: Workspace,
    plan: Plan,
    snapshot: StateSnapshot,
    keys: set[str] | None = None,
    repairs: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per materialized asset (those of ``keys``), ordered by key; JSON-ready.
    ``repairs`` (``Workspace.pending_repairs``) flags the stores a killed writer left
    mid-write (``needs_repair``: why, and what to run)."""
    repairs = repairs or {}
    if ws.engine is None:
        view_rows = unharvested_rows(ws, keys)
    else:
        view_rows = read_stream_status(ws.engine, keys)
    rows = []
    for view_row in view_rows:
        key = view_row["key"]
        if key not in plan.stale:  # the view and the specs read in different transactions
            continue
        item = plan.item(key)
        reasons = item.reasons if item else plan.stale[key]
        np_ = plan.not_planned.get(key)
        statuses = asset_status(key, plan, snapshot)
        rows.append(
            {
                **{k: _plain(v) for k, v in view_row.items()},
                "status": str(headline(statuses)),
                "statuses": [str(s) for s in HEADLINE_ORDER if s in statuses],
                "stale": bool(reasons),
                "reasons": [r.to_json() for r in reasons],
                "note": np_.message
                if np_ and (not reasons or np_.code == NotPlannedCode.DISCONTINUED)
                else None,
                "needs_repair": repairs.get(key),
            }
        )
    return rows


def unharvested_rows(ws: Workspace, keys: set[str] | None) -> list[dict[str, Any]]:
    """The `stream_status` rows of a state DB that does not exist yet: nothing harvested,
    nothing observed (freshness UNKNOWN where there is a source to measure against)."""
    out = []
    for key in sorted(ws.specs if keys is None else keys & set(ws.specs)):
        spec = ws.specs[key]
        if spec.observable:
            continue
        sources = [d for d in spec.deps if d in ws.specs and ws.specs[d].observable]
        policy = spec.freshness or FreshnessPolicy()
        row: dict[str, Any] = dict.fromkeys(n for n, _ in STREAM_STATUS_COLUMNS)
        row.update(
            key=key,
            kind=spec.kind,
            group_name=spec.group,
            source_key=min(sources) if sources else None,
            freshness=str(FreshnessState.UNKNOWN) if sources else None,
            freshness_warn_seconds=policy.warn.total_seconds() if policy.warn else None,
            freshness_fail_seconds=policy.fail.total_seconds() if policy.fail else None,
        )
        out.append(row)
    return out


def status_document(
    rows: list[dict[str, Any]], changes: SyncReport | None, now: datetime | None = None
) -> dict[str, Any]:
    """``status --json``: the rows in the versioned envelope of
    ``data_vent/schemas/status-v1.json``."""
    return {
        "schema_version": STATUS_SCHEMA_VERSION,
        "generated_at": (now or utcnow()).isoformat(),
        "config_changes": changes.to_json() if changes else None,
        "assets": rows,
    }


def changes_note(changes: SyncReport | None) -> str | None:
    """One line when the config folder differs from what the last sync recorded."""
    if not changes:
        return None
    n = len(changes.added) + len(changes.changed) + len(changes.deactivated)
    n += len(changes.reactivated)
    return (
        f"note: {n} asset definition{'s' if n != 1 else ''} in the config folder changed "
        "since the last harvest "
        f"({len(changes.added) + len(changes.reactivated)} added, {len(changes.changed)} "
        f"changed, {len(changes.deactivated)} removed); shown: the state DB's; "
        "`data-vent plan` shows what the next harvest would do"
    )


def explain(
    ws: Workspace, plan: Plan, key: str, depth: int = 0, seen: set | None = None
) -> list[str]:
    """Why ``key`` is or is not planned, following `upstream_planned` to the root causes."""
    seen = seen if seen is not None else set()
    pad = "  " * depth
    if key in seen:
        return []
    seen.add(key)
    spec = ws.specs[key]
    if spec.observable:
        return [f"{pad}{key}: an observable OOI source (observed, never materialized)"]
    item = plan.item(key)
    if item is None:
        np_ = plan.not_planned.get(key)
        msg = np_.message if np_ else "not planned"
        return [f"{pad}{key}: not planned — {msg}"]
    lines = [f"{pad}{key}: planned, action {item.action}"]
    for r in item.reasons:
        lines.append(f"{pad}  because {r.describe()}")
        if r.code == ReasonCode.UPSTREAM_PLANNED:
            for dep in r.values.get("inputs", []):
                lines += explain(ws, plan, dep, depth + 2, seen)
    return lines


def status_map(
    ws: Workspace, plan: Plan, snapshot: StateSnapshot, keys: set[str]
) -> dict[str, str]:
    """Each asset's headline status (the lineage graph's colours)."""
    return {k: str(headline(asset_status(k, plan, snapshot))) for k in keys}

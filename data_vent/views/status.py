"""Harvest status rows and `why` from a plan and a snapshot: the third way in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_vent.core.snapshot import StateSnapshot
from data_vent.core.timeutil import fmt_lag
from data_vent.core.vocab import NotPlannedCode, ReasonCode
from data_vent.graph.planner import Plan
from data_vent.graph.status import asset_status, headline
from data_vent.run.workspace import Workspace


def status_rows(
    ws: Workspace,
    plan: Plan,
    snapshot: StateSnapshot,
    keys: set[str] | None = None,
    repairs: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per asset; ``repairs`` (``Workspace.pending_repairs``) flags the stores a
    killed writer left mid-write (``needs_repair``: why, and what to run)."""
    repairs = repairs or {}
    rows = []
    for key in sorted(plan.stale):
        if keys is not None and key not in keys:
            continue
        st = snapshot.state(key)
        last = st.last_success
        fr = plan.freshness.get(key)
        item = plan.item(key)
        reasons = item.reasons if item else plan.stale[key]
        np_ = plan.not_planned.get(key)
        rows.append(
            {
                "key": key,
                "kind": ws.specs[key].kind,
                "last_success": last.finished_at.isoformat()
                if last and last.finished_at
                else None,
                "time_min": last.time_min.isoformat() if last and last.time_min else None,
                "time_max": last.time_max.isoformat() if last and last.time_max else None,
                "rows": last.rows if last else None,
                "harvest_lag": fmt_lag(fr.harvest_lag) if fr else "-",
                "source_lag": fmt_lag(fr.source_lag) if fr else "-",
                "freshness": fr.state if fr else "-",
                "observe_error": fr.error if fr else None,
                "last_attempt": st.last_attempt.status if st.last_attempt else None,
                "stale": bool(reasons),
                "reasons": [r.to_json() for r in reasons],
                "note": np_.message
                if np_ and (not reasons or np_.code == NotPlannedCode.DISCONTINUED)
                else None,
                "needs_repair": repairs.get(key),
            }
        )
    return rows


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

"""An asset's status, worked out once: for ``status``, the lineage graph and selections.

Pure: from the full plan (every asset's own reasons, and what is planned) and the snapshot.
"""

from __future__ import annotations

from data_vent.core.snapshot import StateSnapshot
from data_vent.core.vocab import AssetStatus, FreshnessState, Outcome, ReasonCode
from data_vent.graph.planner import Plan

HEADLINE_ORDER = (
    AssetStatus.SOURCE,
    AssetStatus.DISCONTINUED,
    AssetStatus.FAILED,
    AssetStatus.MISSING,
    AssetStatus.WAITING,
    AssetStatus.STALE,
    AssetStatus.UNKNOWN,
    AssetStatus.FRESH,
)
"""When several statuses hold, the graph colours a node by the first."""


def asset_status(key: str, plan: Plan, snapshot: StateSnapshot) -> frozenset[AssetStatus]:
    """Every status that holds for ``key``: ``stale``, ``unknown`` (its source could not be
    observed) or ``fresh``, plus ``failed`` (its last attempt failed), ``missing``,
    ``waiting`` and ``discontinued`` (OOI no longer lists its source); an observable source
    is just ``source``."""
    own = plan.stale.get(key)
    if own is None:  # observable sources have no status of their own
        return frozenset({AssetStatus.SOURCE})
    codes = {r.code for r in own}
    fr = plan.freshness.get(key)
    unseen = fr is not None and fr.error is not None
    out = {
        AssetStatus.STALE
        if (codes or plan.item(key))
        else AssetStatus.UNKNOWN
        if unseen
        else AssetStatus.FRESH
    }
    if unseen:
        out.add(AssetStatus.UNKNOWN)
    att = snapshot.state(key).last_attempt
    if att is not None and att.status == Outcome.FAILED:
        out.add(AssetStatus.FAILED)
    if ReasonCode.MISSING in codes:
        out.add(AssetStatus.MISSING)
    if ReasonCode.WAITING in codes:
        out.add(AssetStatus.WAITING)
    if fr is not None and fr.state == FreshnessState.DISCONTINUED:
        out.add(AssetStatus.DISCONTINUED)
    return frozenset(out)


def headline(statuses: frozenset[AssetStatus]) -> AssetStatus:
    """The one status that names an asset (its colour in the lineage graph)."""
    return next(s for s in HEADLINE_ORDER if s in statuses)


def asset_reasons(key: str, plan: Plan) -> set[str]:
    """Reason codes of ``key``: its own, and those it is planned for (``upstream_planned``)."""
    codes = {str(r.code) for r in plan.stale.get(key, [])}
    item = plan.item(key)
    if item is not None:
        codes |= {str(r.code) for r in item.reasons}
    return codes


class PlanStateView:
    """The selection language's ``status:``/``reason:`` filters, answered from a full plan."""

    def __init__(self, full: Plan, snapshot: StateSnapshot):
        self.plan = full
        self.snapshot = snapshot

    def status_of(self, key: str) -> frozenset[AssetStatus]:
        return asset_status(key, self.plan, self.snapshot)

    def reasons_of(self, key: str) -> set[str]:
        return asset_reasons(key, self.plan)

"""The planner: a pure function from (specs, graph, state snapshot, now) to a Plan.

``plan``, ``materialize`` and the daily flow all call it; the dry run prints its output.
Staleness reasons (DESIGN.md) are data, each with the values that explain it:

=====================  =================================================  =============
reason                 when                                               action
=====================  =================================================  =============
missing                never materialized, or its output is absent        full
source_reprocessed     source beginTime moved or count changed in range   rebuild
code_changed           code version differs from the provenance           rebuild
config_changed         config hash differs from the provenance            rebuild
waiting                an OOI request is still being prepared             resume
source_advanced        source endTime > what the store harvested          append
upstream_changed       an input's data version differs from the recorded  rematerialize
upstream_planned       an input is in this plan (transitively)            rematerialize
last_failed            the last attempt failed                            retry
forced                 ``force``/``refresh`` asked for it                 rematerialize/rebuild
=====================  =================================================  =============

An asset whose source OOI's table of contents no longer lists is *discontinued*: not planned
(unless forced), its freshness ``DISCONTINUED``, never a failure; a later observation that
lists the source again plans it as usual.

When several reasons hold, the strongest action wins (the table's order). Freshness is
measured on the data's own time: *harvest lag* = source endTime - store's last time (ours);
*source lag* = now - source endTime (OOI's, reported, not retried).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import networkx as nx

from data_vent.core.gcpause import gc_paused
from data_vent.core.plan import NO_SUCCESS, PlanItem
from data_vent.core.records import Observation, Reason, input_version_record
from data_vent.core.snapshot import AssetState, StateSnapshot, SuccessRecord
from data_vent.core.spec import AssetSpec, FreshnessPolicy
from data_vent.core.vocab import Action, FreshnessState, NotPlannedCode, Outcome, ReasonCode

ACTION_ORDER = tuple(Action)
"""Strongest first: when several reasons hold, the first of their actions wins."""
REASON_ACTION = {
    ReasonCode.MISSING: Action.FULL,
    ReasonCode.SOURCE_REPROCESSED: Action.REBUILD,
    ReasonCode.CODE_CHANGED: Action.REBUILD,
    ReasonCode.CONFIG_CHANGED: Action.REBUILD,
    ReasonCode.WAITING: Action.RESUME,
    ReasonCode.SOURCE_ADVANCED: Action.APPEND,
    ReasonCode.UPSTREAM_CHANGED: Action.REMATERIALIZE,
    ReasonCode.UPSTREAM_PLANNED: Action.REMATERIALIZE,
    ReasonCode.LAST_FAILED: Action.RETRY,
    ReasonCode.FORCED: Action.REMATERIALIZE,
}
DEFAULT_FRESHNESS = FreshnessPolicy()

__all__ = ["Plan", "PlanItem", "NotPlanned", "Freshness", "plan", "input_version_record"]


@dataclass
class NotPlanned:
    """Why an asset is not in the plan: fresh, source_behind, waiting, upstream_failed, ..."""

    key: str
    code: NotPlannedCode
    message: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Freshness:
    state: FreshnessState
    harvest_lag: timedelta | None = None
    source_lag: timedelta | None = None
    source_end: datetime | None = None
    store_end: datetime | None = None
    error: str | None = None
    """Why the state is UNKNOWN when the source's latest observation failed."""


@dataclass
class Plan:
    now: datetime
    generations: list[list[PlanItem]] = field(default_factory=list)
    not_planned: dict[str, NotPlanned] = field(default_factory=dict)
    stale: dict[str, list[Reason]] = field(default_factory=dict)
    """Every asset's own reasons, planned or not (for status and selection filters)."""
    freshness: dict[str, Freshness] = field(default_factory=dict)

    @property
    def items(self) -> list[PlanItem]:
        return [item for gen in self.generations for item in gen]

    @property
    def keys(self) -> set[str]:
        return set(self._by_key)

    @cached_property
    def _by_key(self) -> dict[str, PlanItem]:
        """Index of the items (``generations`` is set once, by ``plan``)."""
        return {item.key: item for gen in self.generations for item in gen}

    def item(self, key: str) -> PlanItem | None:
        return self._by_key.get(key)

    def __len__(self) -> int:
        return sum(len(g) for g in self.generations)


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _source_reasons(src: str, obs: Observation | None, last: SuccessRecord) -> list[Reason]:
    if obs is None or obs.end_time is None:
        return []
    rec = last.input_versions.get(src) or {}
    r_begin, r_end, r_count = (
        _dt(rec.get("begin_time")),
        _dt(rec.get("end_time")),
        rec.get("count"),
    )
    reasons: list[Reason] = []
    if r_end is not None:
        reprocessed = (
            (r_begin is not None and obs.begin_time is not None and obs.begin_time != r_begin)
            or (r_count is not None and obs.count is not None and obs.count < r_count)
            or (obs.end_time == r_end and r_count is not None and obs.count != r_count)
        )
        if reprocessed:
            starts = [t for t in (obs.begin_time, r_begin) if t is not None]
            reasons.append(
                Reason(
                    ReasonCode.SOURCE_REPROCESSED,
                    {
                        "source": src,
                        "recorded_begin": r_begin,
                        "observed_begin": obs.begin_time,
                        "recorded_count": r_count,
                        "observed_count": obs.count,
                        "rebuild_from": min(starts) if starts else None,
                    },
                )
            )
    harvested_to = r_end or last.time_max
    if (
        harvested_to is not None
        and obs.end_time > harvested_to
        and (last.time_max is None or obs.end_time > last.time_max)
    ):
        reasons.append(
            Reason(
                ReasonCode.SOURCE_ADVANCED,
                {
                    "source": src,
                    "source_end": obs.end_time,
                    "store_end": last.time_max,
                    "harvested_to": r_end,
                },
            )
        )
    return reasons


def own_reasons(
    spec: AssetSpec,
    state: AssetState,
    specs: Mapping[str, AssetSpec],
    snapshot: StateSnapshot,
    exists: bool = True,
) -> list[Reason]:
    """The reasons an asset is stale by itself (no propagation)."""
    last = state.last_success
    att = state.last_attempt
    failed = None
    if att is not None and att.status == Outcome.FAILED and (last is None or att.id > last.id):
        failed = Reason(
            ReasonCode.LAST_FAILED, {"at": att.finished_at, "error": (att.error or "")[:200]}
        )
    if last is None or not exists:
        values: dict[str, Any] = {}
        if last is not None:
            values["last_success"] = last.finished_at
            values["output"] = "absent"
        return [Reason(ReasonCode.MISSING, values)] + ([failed] if failed else [])
    reasons: list[Reason] = []
    for dep in spec.deps:
        dspec = specs.get(dep)
        if dspec is not None and dspec.observable:
            reasons += _source_reasons(dep, snapshot.observations.get(dep), last)
            continue
        current = snapshot.state(dep).last_success
        cur_version = current.data_version if current else None
        recorded = (last.input_versions.get(dep) or {}).get("data_version")
        if cur_version is not None and cur_version != recorded:
            reasons.append(
                Reason(
                    ReasonCode.UPSTREAM_CHANGED,
                    {"input": dep, "recorded": recorded, "current": cur_version},
                )
            )
    if last.code_version != spec.code_version:
        reasons.append(
            Reason(
                ReasonCode.CODE_CHANGED,
                {"recorded": last.code_version, "current": spec.code_version},
            )
        )
    if last.config_hash != spec.config_hash:
        reasons.append(
            Reason(
                ReasonCode.CONFIG_CHANGED,
                {"recorded": last.config_hash, "current": spec.config_hash},
            )
        )
    if failed is not None:
        reasons.append(failed)
    return reasons


def freshness_of(
    spec: AssetSpec, specs: Mapping[str, AssetSpec], snapshot: StateSnapshot, now: datetime
) -> Freshness | None:
    """PASS/WARN/FAIL/UNKNOWN on harvest lag, for assets fed by a source; else None.
    DISCONTINUED when OOI no longer lists the source (lags from what it last reported)."""
    sources = [d for d in spec.deps if (s := specs.get(d)) is not None and s.observable]
    if not sources:
        return None
    obs = snapshot.observations.get(min(sources))  # the source the `stream_status` view takes
    last = snapshot.state(spec.key).last_success
    if obs is not None and obs.discontinued:
        end = obs.end_time
        store_end = last.time_max if last else None
        return Freshness(
            FreshnessState.DISCONTINUED,
            max(end - store_end, timedelta(0)) if end and store_end else None,
            max(now - end, timedelta(0)) if end else None,
            end,
            store_end,
        )
    failed = snapshot.observe_errors.get(sources[0])
    if failed is not None:  # what OOI holds now is unknown: never PASS by accident
        return Freshness(
            FreshnessState.UNKNOWN,
            source_end=obs.end_time if obs else None,
            store_end=last.time_max if last else None,
            error=failed.error,
        )
    if obs is None or obs.end_time is None:
        return Freshness(FreshnessState.UNKNOWN, store_end=last.time_max if last else None)
    source_lag = max(now - obs.end_time, timedelta(0))
    if last is None or last.time_max is None:
        return Freshness(
            FreshnessState.UNKNOWN, source_lag=source_lag, source_end=obs.end_time
        )
    lag = max(obs.end_time - last.time_max, timedelta(0))
    policy = spec.freshness or DEFAULT_FRESHNESS
    state = FreshnessState.PASS
    if policy.fail is not None and lag > policy.fail:
        state = FreshnessState.FAIL
    elif policy.warn is not None and lag > policy.warn:
        state = FreshnessState.WARN
    return Freshness(state, lag, source_lag, obs.end_time, last.time_max)


def strongest_action(reasons: list[Reason], refresh: bool = False) -> Action:
    """The action that answers every reason (the strongest of theirs)."""
    return _strongest(reasons, refresh)


def _strongest(reasons: list[Reason], refresh: bool) -> Action:
    actions = [REASON_ACTION[r.code] for r in reasons]
    if refresh and any(r.code == ReasonCode.FORCED for r in reasons):
        actions.append(Action.REBUILD)
    return min(actions, key=ACTION_ORDER.index)


def plan(
    specs: Mapping[str, AssetSpec],
    graph: nx.DiGraph,
    snapshot: StateSnapshot,
    now: datetime,
    selection: set[str] | None = None,
    *,
    force: bool = False,
    refresh: bool = False,
    include_upstream: bool = True,
    exists: Mapping[str, bool] | None = None,
    upstream_of: set[str] | None = None,
) -> Plan:
    """Decide what to materialize, in which order, and why; and why not the rest.

    ``selection`` None means every asset (the daily flow). A targeted selection also takes in
    its stale or missing ancestors unless ``include_upstream`` is False: the ancestors of
    ``upstream_of`` (default: the whole selection), which the caller sets to the assets the
    user named, so that a catalog reached by ``x+`` does not pull in its other inputs (they
    are siblings of ``x``, not what was asked for). ``force`` and
    ``refresh`` apply to the selected assets only.
    """
    with gc_paused():
        return _plan(
            specs,
            graph,
            snapshot,
            now,
            selection,
            force=force,
            refresh=refresh,
            include_upstream=include_upstream,
            exists=exists,
            upstream_of=upstream_of,
        )


def _plan(
    specs: Mapping[str, AssetSpec],
    graph: nx.DiGraph,
    snapshot: StateSnapshot,
    now: datetime,
    selection: set[str] | None,
    *,
    force: bool,
    refresh: bool,
    include_upstream: bool,
    exists: Mapping[str, bool] | None,
    upstream_of: set[str] | None,
) -> Plan:
    result = Plan(now=now)
    order = list(nx.topological_sort(graph))
    exists = exists or {}

    for key in order:
        spec = specs[key]
        if spec.observable:
            continue
        reasons = own_reasons(
            spec, snapshot.state(key), specs, snapshot, exists.get(key, True)
        )
        req = snapshot.requests.get(key)
        if req is not None:
            reasons.append(
                Reason(
                    ReasonCode.WAITING,
                    {
                        "request_id": req.request_uuid,
                        "status": req.status,
                        "since": req.created_at,
                        "next_check_at": req.next_check_at,
                    },
                )
            )
        result.stale[key] = reasons
        fr = freshness_of(spec, specs, snapshot, now)
        if fr is not None:
            result.freshness[key] = fr

    between: set[str] = set()  # ancestors of the selection: they follow a planned input
    if selection is None:
        candidates = {k for k in order if not specs[k].observable}
        selected = candidates
    else:
        selected = {k for k in selection if not specs[k].observable}
        candidates = set(selected)
        if include_upstream:
            roots = selected if upstream_of is None else (selected & set(upstream_of))
            for anc in ancestors_of(graph, roots):
                if not specs[anc].observable:
                    between.add(anc)
                    if result.stale.get(anc):
                        candidates.add(anc)

    planned: dict[str, PlanItem] = {}
    for key in order:
        if key not in candidates and not (
            key in between and any(d in planned for d in graph.predecessors(key))
        ):
            continue
        reasons = list(result.stale[key])
        waiting = next((r for r in reasons if r.code == ReasonCode.WAITING), None)
        if waiting is not None:
            nxt = waiting.values.get("next_check_at")
            if nxt is not None and nxt > now and not (force and key in selected):
                result.not_planned[key] = NotPlanned(
                    key,
                    NotPlannedCode.WAITING,
                    f"waiting on OOI request {waiting.values.get('request_id')} "
                    f"(next check {nxt:%Y-%m-%d %H:%M})",
                    dict(waiting.values),
                )
                continue
        gone = _discontinued(specs[key], specs, snapshot)
        if gone is not None and not (force and key in selected):
            result.not_planned[key] = NotPlanned(
                key,
                NotPlannedCode.DISCONTINUED,
                f"discontinued: OOI's table of contents no longer lists {gone.source_key}; "
                "kept as harvested, taken up again when OOI lists it again",
                {"source": gone.source_key, "source_end": gone.end_time},
            )
            continue
        up = [d for d in graph.predecessors(key) if d in planned]
        if up:
            reasons.append(Reason(ReasonCode.UPSTREAM_PLANNED, {"inputs": sorted(up)}))
        if (force or refresh) and key in selected:
            reasons.append(Reason(ReasonCode.FORCED, {"refresh": refresh}))
        if reasons:
            last = snapshot.state(key).last_success
            basis = last.id if last is not None else NO_SUCCESS
            planned[key] = PlanItem(key, _strongest(reasons, refresh), reasons, basis)
            continue
        result.not_planned[key] = _why_not(key, graph, specs, snapshot, result)

    sub = graph.subgraph(planned)
    result.generations = [
        [planned[k] for k in sorted(gen)] for gen in nx.topological_generations(sub)
    ]
    return result


def _discontinued(
    spec: AssetSpec, specs: Mapping[str, AssetSpec], snapshot: StateSnapshot
) -> Observation | None:
    """The observation of a source of ``spec`` that OOI no longer lists, if any."""
    for dep in spec.deps:
        dspec = specs.get(dep)
        if dspec is None or not dspec.observable:
            continue
        obs = snapshot.observations.get(dep)
        if obs is not None and obs.discontinued:
            return obs
    return None


def ancestors_of(graph: nx.DiGraph, keys: set[str]) -> set[str]:
    """All ancestors of a set of nodes in one traversal (not one per node)."""
    seen: set[str] = set()
    stack = list(keys)
    while stack:
        for parent in graph.predecessors(stack.pop()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen - set(keys)


def _why_not(
    key: str,
    graph: nx.DiGraph,
    specs: Mapping[str, AssetSpec],
    snapshot: StateSnapshot,
    result: Plan,
) -> NotPlanned:
    failed = [
        d
        for d in graph.predecessors(key)
        if (a := snapshot.state(d).last_attempt) is not None and a.status == Outcome.FAILED
    ]
    if failed:
        return NotPlanned(
            key,
            NotPlannedCode.UPSTREAM_FAILED,
            f"upstream failed: {', '.join(sorted(failed))}",
            {"inputs": failed},
        )
    fr = result.freshness.get(key)
    if fr is not None and fr.error is not None:
        return NotPlanned(
            key,
            NotPlannedCode.UNOBSERVED,
            f"freshness unknown: its source could not be observed ({fr.error})",
            {"error": fr.error},
        )
    spec = specs[key]
    policy = spec.freshness or DEFAULT_FRESHNESS
    if (
        fr is not None
        and fr.source_lag is not None
        and policy.fail is not None
        and (fr.source_lag > policy.fail)
    ):
        return NotPlanned(
            key,
            NotPlannedCode.SOURCE_BEHIND,
            f"up to date with OOI, but OOI itself is behind: source lag {fr.source_lag}",
            {"source_end": fr.source_end, "source_lag": str(fr.source_lag)},
        )
    return NotPlanned(
        key, NotPlannedCode.FRESH, "fresh: nothing changed since the last success"
    )

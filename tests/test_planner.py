"""The planner: pure tests on hand-built snapshots, then end to end through the state DB."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import networkx as nx
import pytest
from sqlalchemy import event

from data_vent.core.plan import PlanItem as _PlanItem
from data_vent.core.records import MaterializationRecord, Observation, input_version_record
from data_vent.core.snapshot import (
    AssetState,
    AttemptRecord,
    RequestRecord,
    StateSnapshot,
    SuccessRecord,
)
from data_vent.core.spec import AssetSpec, FreshnessPolicy
from data_vent.core.vocab import Action
from data_vent.graph.build import build_graph
from data_vent.graph.planner import ACTION_ORDER, Plan, plan
from data_vent.settings import get_settings
from data_vent.state.db import get_engine
from data_vent.state.materializations import record_materialization
from data_vent.state.observations import record_observations
from data_vent.state.snapshot import read_snapshot
from data_vent.state.specs import sync_specs

SRC_KIND = "tests.kinds:FileSource"
KIND = "tests.kinds:FileAsset"

T0 = datetime(2024, 1, 1)
T1 = datetime(2024, 5, 31, 12)
NOW = datetime(2024, 6, 1)
POLICY = FreshnessPolicy(warn=timedelta(hours=2), fail=timedelta(days=1))


def src(key: str) -> AssetSpec:
    return AssetSpec(key, SRC_KIND, observable=True)


def asset(key: str, *deps: str, **kw: Any) -> AssetSpec:
    return AssetSpec(key, KIND, tuple(deps), **kw)


def specs_of(*items: AssetSpec) -> dict[str, AssetSpec]:
    return {s.key: s for s in items}


@dataclass
class World:
    """Specs plus a snapshot in which every asset is fresh; cases then perturb it."""

    specs: dict[str, AssetSpec]
    snap: StateSnapshot = field(default_factory=StateSnapshot)
    next_id: int = 1

    @property
    def graph(self) -> nx.DiGraph:
        return build_graph(self.specs)

    def observe(self, key: str, begin=T0, end=T1, count=100) -> Observation:
        obs = Observation(key, begin, end, count)
        self.snap.observations[key] = obs
        return obs

    def succeed(self, key: str, time_max=None, **over: Any) -> SuccessRecord:
        """A success recording the current inputs, as the runner would."""
        spec = self.specs[key]
        inputs, ends = {}, []
        for d in spec.deps:
            if self.specs[d].observable:
                obs = self.snap.observations.get(d)
                inputs[d] = input_version_record(d, obs.data_version if obs else None, obs)
                if obs:
                    ends.append(obs.end_time)
            else:
                up = self.snap.state(d).last_success
                inputs[d] = input_version_record(d, up.data_version if up else None, None)
        rec = SuccessRecord(
            id=self.next_id,
            code_version=spec.code_version,
            config_hash=spec.config_hash,
            input_versions=inputs,
            data_version=f"{key}@{self.next_id}",
            time_min=T0,
            time_max=time_max or (max(ends) if ends else None),
            rows=10,
            finished_at=NOW - timedelta(hours=1),
        )
        rec = replace(rec, **over)
        self.next_id += 1
        st = self.snap.assets.setdefault(key, AssetState(key))
        st.last_success = rec
        st.last_attempt = AttemptRecord(rec.id, "success", None, rec.finished_at, "r")
        return rec

    def fail(self, key: str, error: str = "boom") -> AttemptRecord:
        att = AttemptRecord(self.next_id, "failed", error, NOW - timedelta(minutes=5), "r2")
        self.next_id += 1
        self.snap.assets.setdefault(key, AssetState(key)).last_attempt = att
        return att

    def request(self, key: str, next_check_at: datetime | None) -> RequestRecord:
        req = RequestRecord(7, key, "pending", "uuid-7", T1, next_check_at, T0, T1)
        self.snap.requests[key] = req
        return req

    def all_fresh(self) -> World:
        for key in nx.topological_sort(self.graph):
            if self.specs[key].observable:
                self.observe(key)
            else:
                self.succeed(key)
        return self

    def plan(self, selection=None, now=NOW, **kw: Any) -> Plan:
        return plan(self.specs, self.graph, self.snap, now, selection, **kw)


def chain() -> World:
    """S -> X -> Y: a source, its store, a derived asset; all fresh."""
    return World(specs_of(src("S"), asset("X", "S", freshness=POLICY), asset("Y", "X")))


def reasons_of(p: Plan, key: str) -> dict[str, dict]:
    item = p.item(key)
    assert item is not None, f"{key} not planned: {p.not_planned.get(key)}"
    return {r.code: r.values for r in item.reasons}


def test_all_fresh_plans_nothing() -> None:
    w = chain().all_fresh()
    p = w.plan(now=T1 + timedelta(hours=1))
    assert len(p) == 0 and p.generations == []
    assert {k: np.code for k, np in p.not_planned.items()} == {"X": "fresh", "Y": "fresh"}
    assert p.stale == {"X": [], "Y": []}


# ---- one table-driven test per reason ---------------------------------------------------


@dataclass
class Case:
    build: Callable[[], tuple[World, dict]]
    key: str
    code: str
    values: dict | Callable[[World], dict]
    action: str


def _missing_never():
    w = chain()
    w.observe("S")
    return w, {}


def _missing_absent():
    w = chain().all_fresh()
    return w, {"exists": {"X": False}}


def _advanced():
    w = chain().all_fresh()
    w.observe("S", end=T1 + timedelta(hours=5), count=130)
    return w, {}


def _begin_changed():
    w = chain().all_fresh()
    w.observe("S", begin=T0 - timedelta(days=3))
    return w, {}


def _count_changed_same_end():
    w = chain().all_fresh()
    w.observe("S", count=120)
    return w, {}


def _count_decreased():
    w = chain().all_fresh()
    w.observe("S", begin=T0 + timedelta(days=1), end=T1 + timedelta(hours=1), count=90)
    return w, {}


def _code_changed():
    w = chain().all_fresh()
    w.specs["X"] = replace(w.specs["X"], code_version="2")
    return w, {}


def _config_changed():
    w = chain().all_fresh()
    w.specs["X"] = replace(w.specs["X"], config={"chunk": 5})
    return w, {}


def _upstream_changed():
    w = chain().all_fresh()
    w.succeed("X")  # X rematerialized since Y last ran: a new data version
    return w, {}


def _upstream_planned():
    w = World(
        specs_of(src("S"), asset("X", "S"), asset("Y", "X"), asset("Z", "Y"), asset("W", "Z"))
    ).all_fresh()
    w.observe("S", end=T1 + timedelta(hours=1), count=101)
    return w, {}


def _last_failed():
    w = chain().all_fresh()
    w.fail("X", "OSError: disk full")
    return w, {}


def _waiting_due():
    w = chain().all_fresh()
    w.request("X", NOW - timedelta(minutes=1))
    return w, {}


def _forced():
    w = chain().all_fresh()
    return w, {"selection": {"X"}, "force": True}


def _refresh():
    w = chain().all_fresh()
    return w, {"selection": {"X"}, "refresh": True}


OBS = {"source": "S"}
CASES = {
    "missing": Case(_missing_never, "X", "missing", {}, "full"),
    "missing_output_absent": Case(
        _missing_absent,
        "X",
        "missing",
        {"last_success": NOW - timedelta(hours=1), "output": "absent"},
        "full",
    ),
    "source_advanced": Case(
        _advanced,
        "X",
        "source_advanced",
        {**OBS, "source_end": T1 + timedelta(hours=5), "store_end": T1, "harvested_to": T1},
        "append",
    ),
    "source_reprocessed_begin": Case(
        _begin_changed,
        "X",
        "source_reprocessed",
        {
            **OBS,
            "recorded_begin": T0,
            "observed_begin": T0 - timedelta(days=3),
            "recorded_count": 100,
            "observed_count": 100,
            "rebuild_from": T0 - timedelta(days=3),
        },
        "rebuild",
    ),
    "source_reprocessed_count_same_end": Case(
        _count_changed_same_end,
        "X",
        "source_reprocessed",
        {
            **OBS,
            "recorded_begin": T0,
            "observed_begin": T0,
            "recorded_count": 100,
            "observed_count": 120,
            "rebuild_from": T0,
        },
        "rebuild",
    ),
    "source_reprocessed_count_decreased": Case(
        _count_decreased,
        "X",
        "source_reprocessed",
        {
            **OBS,
            "recorded_begin": T0,
            "observed_begin": T0 + timedelta(days=1),
            "recorded_count": 100,
            "observed_count": 90,
            "rebuild_from": T0,
        },
        "rebuild",
    ),
    "code_changed": Case(
        _code_changed, "X", "code_changed", {"recorded": "1", "current": "2"}, "rebuild"
    ),
    "config_changed": Case(
        _config_changed,
        "X",
        "config_changed",
        lambda w: {
            "recorded": asset("X", "S").config_hash,
            "current": w.specs["X"].config_hash,
        },
        "rebuild",
    ),
    "upstream_changed": Case(
        _upstream_changed,
        "Y",
        "upstream_changed",
        lambda w: {
            "input": "X",
            "recorded": "X@1",
            "current": w.snap.state("X").last_success.data_version,
        },
        "rematerialize",
    ),
    "upstream_planned_level1": Case(
        _upstream_planned, "Y", "upstream_planned", {"inputs": ["X"]}, "rematerialize"
    ),
    "upstream_planned_level3": Case(
        _upstream_planned, "W", "upstream_planned", {"inputs": ["Z"]}, "rematerialize"
    ),
    "last_failed": Case(
        _last_failed,
        "X",
        "last_failed",
        {"at": NOW - timedelta(minutes=5), "error": "OSError: disk full"},
        "retry",
    ),
    "waiting": Case(
        _waiting_due,
        "X",
        "waiting",
        {
            "request_id": "uuid-7",
            "status": "pending",
            "since": T1,
            "next_check_at": NOW - timedelta(minutes=1),
        },
        "resume",
    ),
    "forced": Case(_forced, "X", "forced", {"refresh": False}, "rematerialize"),
    "refresh": Case(_refresh, "X", "forced", {"refresh": True}, "rebuild"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reason(name: str) -> None:
    case = CASES[name]
    w, kw = case.build()
    p = w.plan(**kw)
    got = reasons_of(p, case.key)
    assert case.code in got, got
    expected = case.values(w) if callable(case.values) else case.values
    assert got[case.code] == expected
    assert p.item(case.key).action == case.action
    # the asset's own reasons (not propagated, not forced) are in `stale` too
    if case.code not in ("upstream_planned", "forced"):
        assert case.code in {r.code for r in p.stale[case.key]}


def test_source_reprocessed_count_decreased_also_advanced() -> None:
    w, _ = _count_decreased()
    codes = reasons_of(w.plan(), "X")
    assert set(codes) == {"source_reprocessed", "source_advanced"}
    assert w.plan().item("X").action == "rebuild"


def test_upstream_planned_is_transitive_over_three_levels() -> None:
    w, _ = _upstream_planned()
    p = w.plan()
    assert [[it.key for it in gen] for gen in p.generations] == [["X"], ["Y"], ["Z"], ["W"]]
    for key in ("Y", "Z", "W"):
        assert p.stale[key] == []  # nothing of their own: only propagated
        assert [r.code for r in p.item(key).reasons] == ["upstream_planned"]


def test_waiting_not_due_is_not_planned_nor_its_downstream() -> None:
    w = chain().all_fresh()
    nxt = NOW + timedelta(minutes=30)
    w.request("X", nxt)
    p = w.plan()
    assert "X" not in p.keys and "Y" not in p.keys
    np_ = p.not_planned["X"]
    assert np_.code == "waiting"
    assert np_.values == {
        "request_id": "uuid-7",
        "status": "pending",
        "since": T1,
        "next_check_at": nxt,
    }
    assert "uuid-7" in np_.message
    assert p.not_planned["Y"].code == "fresh"
    # forcing the selected asset plans it anyway, as a resume
    p = w.plan({"X"}, force=True)
    assert p.item("X").action == "resume"


def test_last_failed_ignored_when_a_success_came_after() -> None:
    w = chain().all_fresh()
    w.fail("X")
    w.succeed("X")
    w.succeed("Y")
    assert "X" not in w.plan().keys


def test_force_applies_to_selection_only() -> None:
    w = chain().all_fresh()
    p = w.plan({"X", "Y"}, force=True)
    assert set(reasons_of(p, "Y")) == {"upstream_planned", "forced"}
    p = w.plan({"X"}, force=True, include_upstream=False)
    assert p.keys == {"X"} and "Y" not in p.not_planned


# ---- freshness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "end_after, state",
    [
        (timedelta(0), "PASS"),
        (timedelta(hours=1), "PASS"),
        (timedelta(hours=3), "WARN"),
        (timedelta(days=2), "FAIL"),
    ],
)
def test_freshness_states(end_after: timedelta, state: str) -> None:
    w = chain().all_fresh()
    end = T1 + end_after
    w.observe("S", end=end)
    now = end + timedelta(hours=4)
    fr = w.plan(now=now).freshness["X"]
    assert fr.state == state
    assert fr.harvest_lag == end_after
    assert fr.source_lag == timedelta(hours=4)
    assert (fr.source_end, fr.store_end) == (end, T1)
    assert "Y" not in w.plan(now=now).freshness  # not fed by a source


def test_freshness_default_policy() -> None:
    w = World(specs_of(src("S"), asset("X", "S"))).all_fresh()
    w.observe("S", end=T1 + timedelta(hours=7))
    assert w.plan().freshness["X"].state == "WARN"  # default warn 6 h, fail 1 d


def test_freshness_custom_policy_without_warn() -> None:
    pol = FreshnessPolicy(warn=None, fail=timedelta(hours=1))
    w = World(specs_of(src("S"), asset("X", "S", freshness=pol))).all_fresh()
    w.observe("S", end=T1 + timedelta(minutes=50))
    assert w.plan().freshness["X"].state == "PASS"
    w.observe("S", end=T1 + timedelta(minutes=70))
    assert w.plan().freshness["X"].state == "FAIL"


def test_freshness_unknown() -> None:
    w = chain()
    fr = w.plan().freshness["X"]  # no observation, no store
    assert (fr.state, fr.harvest_lag, fr.source_lag) == ("UNKNOWN", None, None)
    w.observe("S")
    fr = w.plan().freshness["X"]  # observed, never harvested
    assert (fr.state, fr.harvest_lag, fr.source_lag) == ("UNKNOWN", None, NOW - T1)
    assert fr.source_end == T1
    w.succeed("X", time_max=None)
    w.snap.assets["X"].last_success.time_max = None  # harvested nothing yet
    assert w.plan().freshness["X"].state == "UNKNOWN"


# ---- why not planned --------------------------------------------------------------------


def test_not_planned_fresh() -> None:
    w = chain().all_fresh()
    np_ = w.plan(now=T1 + timedelta(hours=3)).not_planned["X"]
    assert np_.code == "fresh" and np_.values == {}


def test_not_planned_source_behind() -> None:
    w = chain().all_fresh()
    now = T1 + timedelta(days=3)
    np_ = w.plan(now=now).not_planned["X"]
    assert np_.code == "source_behind"
    assert np_.values == {"source_end": T1, "source_lag": str(timedelta(days=3))}
    assert w.plan(now=now).freshness["X"].state == "PASS"  # our harvest is not behind


def test_discontinued_source_is_not_planned_nor_failed() -> None:
    """Issue 11.8: OOI's table of contents dropped the source. Even a missing store and a
    source that moved are left alone, with a status of their own; forcing still plans it."""
    from data_vent.graph.status import asset_status, headline

    w = chain().all_fresh()
    w.snap.observations["S"] = Observation("S", T0, T1 + timedelta(hours=6), 120, True)
    w.snap.assets["X"].last_success = None  # and the store was never built
    p = w.plan()
    assert p.keys == set()
    np_ = p.not_planned["X"]
    assert np_.code == "discontinued" and np_.values["source"] == "S"
    assert "no longer lists S" in np_.message
    fr = p.freshness["X"]
    assert fr.state == "DISCONTINUED" and fr.source_end == T1 + timedelta(hours=6)
    assert headline(asset_status("X", p, w.snap)) == "discontinued"
    assert p.not_planned["Y"].code != "discontinued"  # only the assets fed by the source
    forced = w.plan({"X"}, force=True)
    assert forced.item("X") is not None
    # listed again: planned as any stream would be
    w.observe("S", end=T1 + timedelta(hours=6), count=120)
    assert "missing" in reasons_of(w.plan(), "X")


def test_not_planned_upstream_failed() -> None:
    w = chain().all_fresh()
    w.fail("X")
    p = w.plan({"Y"}, include_upstream=False)
    assert p.keys == set()
    np_ = p.not_planned["Y"]
    assert np_.code == "upstream_failed" and np_.values == {"inputs": ["X"]}
    assert "X" in np_.message


# ---- precedence -------------------------------------------------------------------------


def _with(*codes: str) -> World:
    w = chain().all_fresh()
    for code in codes:
        if code == "missing":
            w.snap.assets.pop("X")
        elif code == "code_changed":
            w.specs["X"] = replace(w.specs["X"], code_version="9")
        elif code == "source_advanced":
            w.observe("S", end=T1 + timedelta(hours=1), count=101)
        elif code == "source_reprocessed":
            w.observe("S", begin=T0 - timedelta(days=1), end=T1 + timedelta(hours=1))
        elif code == "last_failed":
            w.fail("X")
        elif code == "waiting":
            w.request("X", None)
    return w


@pytest.mark.parametrize(
    "codes, action",
    [
        (("missing", "waiting", "last_failed"), "full"),
        (("code_changed", "source_advanced", "last_failed"), "rebuild"),
        (("source_reprocessed", "waiting"), "rebuild"),
        (("waiting", "source_advanced", "last_failed"), "resume"),
        (("source_advanced", "last_failed"), "append"),
    ],
)
def test_strongest_action_wins(codes: tuple[str, ...], action: str) -> None:
    p = _with(*codes).plan()
    got = reasons_of(p, "X")
    assert set(codes) <= set(got)
    assert p.item("X").action == action
    # and Y, fed by X: rematerialize after it, whatever X does
    assert p.item("Y").action == "rematerialize"


def test_upstream_changed_and_last_failed_rematerialize() -> None:
    w, _ = _upstream_changed()
    w.fail("Y")
    p = w.plan()
    assert set(reasons_of(p, "Y")) == {"upstream_changed", "last_failed"}
    assert p.item("Y").action == "rematerialize"
    assert ACTION_ORDER.index("rematerialize") < ACTION_ORDER.index("retry")


# ---- targeted selection -----------------------------------------------------------------


def _diamond() -> World:
    """S1 -> A -> C <- E <- S2, M -> C; A stale (source advanced), M missing, E fresh."""
    w = World(
        specs_of(
            src("S1"),
            src("S2"),
            asset("A", "S1"),
            asset("E", "S2"),
            asset("M"),
            asset("C", "A", "E", "M"),
        )
    ).all_fresh()
    w.observe("S1", end=T1 + timedelta(hours=1), count=101)
    del w.snap.assets["M"]
    return w


def test_selection_takes_in_stale_and_missing_ancestors_only() -> None:
    p = _diamond().plan({"C"})
    assert p.keys == {"A", "M", "C"}
    assert reasons_of(p, "C") == {"upstream_planned": {"inputs": ["A", "M"]}}
    assert "E" not in p.not_planned  # not even considered
    assert [sorted(it.key for it in g) for g in p.generations] == [["A", "M"], ["C"]]


def test_selection_without_upstream() -> None:
    w = _diamond()
    p = w.plan({"C"}, include_upstream=False)
    assert p.keys == set()
    assert p.not_planned == {"C": p.not_planned["C"]}
    assert p.not_planned["C"].code == "fresh"
    w.specs["C"] = replace(w.specs["C"], code_version="2")
    p = w.plan({"C"}, include_upstream=False)
    assert p.keys == {"C"} and set(reasons_of(p, "C")) == {"code_changed"}


def test_selection_takes_in_fresh_ancestor_downstream_of_a_stale_one() -> None:
    """S -> A (stale) -> B (fresh) -> C (selected): rebuilding A makes B stale, so B runs."""
    w = World(
        specs_of(
            src("S"),
            asset("A", "S"),
            asset("B", "A"),
            asset("C", "B"),
            src("S2"),
            asset("F", "S2"),
            asset("D", "F"),
        )
    ).all_fresh()
    w.specs["C"] = replace(w.specs["C"], deps=("B", "D"))
    w.snap.assets["C"].last_success.input_versions["D"] = {
        "data_version": w.snap.state("D").last_success.data_version
    }
    w.snap.assets["C"].last_success.config_hash = w.specs["C"].config_hash
    w.observe("S", end=T1 + timedelta(hours=1), count=101)
    p = w.plan({"C"})
    assert [[it.key for it in g] for g in p.generations] == [["A"], ["B"], ["C"]]
    assert reasons_of(p, "B") == {"upstream_planned": {"inputs": ["A"]}}
    assert not ({"D", "F"} & (p.keys | set(p.not_planned)))


def test_generations_are_topologically_ordered() -> None:
    rng = random.Random(7)
    keys = [f"n{i:02d}" for i in range(40)]
    specs = [src("S")]
    for i, k in enumerate(keys):
        deps = sorted({keys[j] for j in range(i) if rng.random() < 0.1})
        specs.append(asset(k, *(deps or ["S"])))
    w = World(specs_of(*specs)).all_fresh()
    w.observe("S", end=T1 + timedelta(hours=1), count=101)
    p = w.plan()
    assert p.keys == set(keys)
    gen_of = {it.key: g for g, gen in enumerate(p.generations) for it in gen}
    g = w.graph
    for u, v in g.edges:
        if u in gen_of:
            assert gen_of[u] < gen_of[v], (u, v)
    for g_, gen in enumerate(p.generations):
        assert [it.key for it in gen] == sorted(it.key for it in gen)
        if g_:  # every item of a later generation waits for something in the one before
            assert all(
                any(gen_of[d] == g_ - 1 for d in w.specs[it.key].deps if d in gen_of)
                for it in gen
            )


# ---- end to end through the state DB ----------------------------------------------------


def _e2e_specs() -> dict[str, AssetSpec]:
    #  s1 -> a1 -> b -> c        s2 -> a2 -> d
    #              b, a2 -> e
    return specs_of(
        src("s1"),
        src("s2"),
        asset("a1", "s1"),
        asset("a2", "s2"),
        asset("b", "a1"),
        asset("c", "b"),
        asset("d", "a2"),
        asset("e", "b", "a2"),
    )


def _run(engine, specs, p: Plan) -> None:
    from data_vent.run.runner import materialize_asset

    settings = get_settings()
    for gen in p.generations:
        for item in gen:
            out = materialize_asset(item, specs, settings, engine, "run")
            assert out.status == "success", out


def test_end_to_end_changing_one_source_replans_its_descendants(db_url: str) -> None:
    engine = get_engine(db_url)
    specs = _e2e_specs()
    graph = build_graph(specs)
    sync_specs(engine, specs)
    record_observations(engine, [Observation("s1", T0, T1, 10), Observation("s2", T0, T1, 20)])
    p = plan(specs, graph, read_snapshot(engine), NOW)
    assert p.keys == {"a1", "a2", "b", "c", "d", "e"}
    assert {it.key: it.action for it in p.items} == dict.fromkeys(p.keys, "full")
    _run(engine, specs, p)

    p = plan(specs, graph, read_snapshot(engine), NOW)
    assert len(p) == 0, [(i.key, i.describe()) for i in p.items]

    # s1 advances: exactly its descendants
    record_observations(
        engine,
        [Observation("s1", T0, T1 + timedelta(hours=2), 12), Observation("s2", T0, T1, 20)],
    )
    p = plan(specs, graph, read_snapshot(engine), NOW)
    assert p.keys == nx.descendants(graph, "s1") == {"a1", "b", "c", "e"}
    assert p.item("a1").action == "append"
    assert reasons_of(p, "a1")["source_advanced"]["source_end"] == T1 + timedelta(hours=2)
    assert reasons_of(p, "e") == {"upstream_planned": {"inputs": ["b"]}}
    assert [[i.key for i in g] for g in p.generations] == [["a1"], ["b"], ["c", "e"]]
    _run(engine, specs, p)
    assert len(plan(specs, graph, read_snapshot(engine), NOW)) == 0

    # s2 reprocessed (begin moved): a2 rebuilds, d and e follow
    record_observations(engine, [Observation("s2", T0 - timedelta(days=1), T1, 25)])
    p = plan(specs, graph, read_snapshot(engine), NOW)
    assert p.keys == {"a2", "d", "e"}
    assert p.item("a2").action == "rebuild"


def test_read_snapshot_query_count_is_constant(db_url: str) -> None:
    engine = get_engine(db_url)
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    def grow_to(n: int) -> int:
        specs = {}
        for i in range(n // 2):
            specs[f"s{i}"] = src(f"s{i}")
            specs[f"a{i}"] = asset(f"a{i}", f"s{i}")
        sync_specs(engine, specs)
        record_observations(engine, [Observation(f"s{i}", T0, T1, n) for i in range(n // 2)])
        for i in range(n // 2):
            for status in ("success", "failed"):
                record_materialization(
                    engine,
                    MaterializationRecord(f"a{i}", "r", Action.FULL).finish(
                        status, data_version="v"
                    ),
                )
        statements.clear()
        snap = read_snapshot(engine)
        assert len(snap.assets) == n
        assert len(snap.observations) == n // 2
        assert sum(1 for s in snap.assets.values() if s.last_success) == n // 2
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    small = grow_to(10)
    big = grow_to(200)
    assert small == big == 5
    event.remove(engine, "before_cursor_execute", _count)


def test_plan_item_describe_reads_values() -> None:
    w, _ = _advanced()
    item: _PlanItem = w.plan().item("X")
    text = item.describe()
    assert text.startswith("source_advanced (") and "source_end=2024-05-31 17:00:00" in text

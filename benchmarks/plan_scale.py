"""Planner scale: time from state-DB read to Plan on a harvest-shaped graph.

N sources, N stream stores, 2 derived assets per stream and one catalog over all streams
(4N+1 assets), one recorded success each; then new observations for 10 % of the sources.
Prints the time of read_snapshot + plan, the number of stale assets (expected: 3 per changed
source, plus the catalog) and the time to resolve a `+key+` selection. Baseline, measured
in the same run: reading the same state one asset at a time (the runner's under-lease read,
as a planner that asks per asset would), over a sample of assets and scaled to all of them.

    python benchmarks/plan_scale.py --streams 1000 [--db-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from common import record_successes, success_row

from data_vent.core.records import Observation, input_version_record
from data_vent.core.spec import AssetSpec
from data_vent.graph.build import build_graph
from data_vent.graph.planner import plan
from data_vent.graph.selection import select
from data_vent.state.db import get_engine
from data_vent.state.observations import record_observations
from data_vent.state.snapshot import read_snapshot
from data_vent.state.specs import sync_specs


def harvest_specs(n: int) -> dict[str, AssetSpec]:
    specs: dict[str, AssetSpec] = {}
    for i in range(n):
        table = (
            f"RS{i // 100:02d}SITE-NODE{i % 7}-{i % 90:02d}-INSTR{i:05d}-streamed-stream_{i}"
        )
        src = f"ooi/{table}"
        specs[src] = AssetSpec(src, "ooi_source", observable=True, group=table[:8])
        specs[table] = AssetSpec(table, "ooi_stream", deps=(src,), group=table[:8])
        for d in ("availability", "summary"):
            specs[f"{table}/{d}"] = AssetSpec(f"{table}/{d}", "derived", deps=(table,))
    stores = sorted(k for k, s in specs.items() if s.kind == "ooi_stream")
    specs["catalog"] = AssetSpec("catalog", "catalog", deps=tuple(stores))
    return specs


def populate(engine, specs: dict[str, AssetSpec], t0: datetime) -> None:
    sync_specs(engine, specs)
    obs = [
        Observation(k, t0, t0 + timedelta(days=1), 1000)
        for k, s in specs.items()
        if s.observable
    ]
    record_observations(engine, obs)
    obs_by_key = {o.source_key: o for o in obs}
    rows = []
    for key, spec in specs.items():
        if spec.observable:
            continue
        inputs = {}
        for dep in spec.deps:
            o = obs_by_key.get(dep)
            inputs[dep] = input_version_record(dep, o.data_version if o else f"v-{dep}", o)
        rows.append(
            success_row(
                key,
                spec,
                inputs,
                "bench",
                started_at=t0,
                finished_at=t0,
                time_min=t0,
                time_max=t0 + timedelta(days=1),
            )
        )
    record_successes(engine, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--db-url", default=None, help="default: a SQLite file in a temp dir")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline-sample", type=int, default=1000, help="assets read one by one")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dv-bench-"))
    url = args.db_url or f"sqlite:///{tmp / 'state.db'}"
    engine = get_engine(url)
    t0 = datetime(2026, 1, 1)
    specs = harvest_specs(args.streams)
    graph = build_graph(specs)
    t = time.perf_counter()
    populate(engine, specs, t0)
    setup = time.perf_counter() - t
    sources = sorted(k for k, s in specs.items() if s.observable)
    changed = sources[::10]
    record_observations(
        engine, [Observation(k, t0, t0 + timedelta(days=2), 2000) for k in changed]
    )
    now = t0 + timedelta(days=2, hours=1)
    times, reads = [], []
    result = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        snap = read_snapshot(engine)
        t_read = time.perf_counter() - t
        result = plan(specs, graph, snap, now)
        times.append(time.perf_counter() - t)
        reads.append(t_read)
    assert result is not None
    expected = 3 * len(changed) + 1
    store = changed[0].removeprefix("ooi/")
    sel_times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        sel = select(f"+{store}+", graph, specs)
        sel_times.append(time.perf_counter() - t)
    print(
        f"assets: {len(specs)} ({args.streams} streams), db: {engine.dialect.name}, "
        f"setup {setup:.1f} s"
    )
    print(
        f"changed sources: {len(changed)}; stale assets planned: {len(result)} "
        f"(expected {expected}) in {len(result.generations)} generations"
    )
    print(
        f"DB read -> Plan: median {statistics.median(times):.3f} s "
        f"(read {statistics.median(reads):.3f} s, plan "
        f"{statistics.median(times) - statistics.median(reads):.3f} s), "
        f"min {min(times):.3f} s over {args.repeat} runs"
    )
    sample = list(specs)[:: max(1, len(specs) // args.baseline_sample)]
    t = time.perf_counter()
    for key in sample:
        read_snapshot(engine, keys=[key, *specs[key].deps])
    per_asset = (time.perf_counter() - t) / len(sample)
    whole = per_asset * len(specs)
    print(
        f"baseline, one asset at a time: {per_asset * 1000:.2f} ms/asset over {len(sample)} "
        f"assets -> {whole:.1f} s for all {len(specs)}; the set-based read is "
        f"{whole / statistics.median(reads):.0f}x faster"
    )
    print(
        f"resolve '+{store[:30]}…+': {len(sel)} assets, "
        f"median {statistics.median(sel_times) * 1000:.2f} ms"
    )
    if len(result) != expected:
        raise SystemExit(f"wrong plan size {len(result)} != {expected}")


if __name__ == "__main__":
    main()

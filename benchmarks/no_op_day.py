"""A day with nothing new: the daily harvest over N streams on the OOI simulator.

N harvest configs (two streams per instrument), every store, derived output and catalog
already up to date in the state DB (recorded successes; stand-in outputs on disk, which is
all a no-op run looks at). Then the daily flow runs twice on Prefect (the first run also
starts Prefect's ephemeral server): the wall time, the calls OOI saw (one ``metadata/times``
per instrument), the data requests (0), the assets planned (0), the most calls in flight.

    python benchmarks/no_op_day.py --streams 600 [--db-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from common import record_successes, settings_values, success_row  # noqa: E402

from data_vent.assets.kinds import get_kind  # noqa: E402
from data_vent.core.records import input_version_record  # noqa: E402
from data_vent.run.workspace import Workspace  # noqa: E402
from data_vent.settings import Settings  # noqa: E402
from data_vent.simulator import Simulator  # noqa: E402
from data_vent.state.observations import latest_observations  # noqa: E402

STREAMS = ("ctdpf_sbe43_sample", "ctdpf_optode_sample")


def write_configs(folder: Path, n: int) -> int:
    """``n`` upstream-format harvest configs, two streams per instrument; returns the
    number of instruments."""
    folder.mkdir(parents=True)
    instruments = set()
    for i in range(n):
        k = i // 2
        refdes = f"RS{k // 100:02d}SBPS-PC{k % 10:02d}A-{k % 9 + 1}A-CTDPFA{k:03d}"
        instruments.add(refdes)
        doc = {
            "instrument": refdes,
            "stream": {"method": "streamed", "name": STREAMS[i % 2]},
            "harvest_options": {"refresh": False, "path": "s3://ooi-data"},
            "assigness": [],
        }
        (folder / f"{refdes}-streamed-{STREAMS[i % 2]}.yaml").write_text(yaml.safe_dump(doc))
    return len(instruments)


def up_to_date(ws: Workspace) -> None:
    """Record a success for every materializable asset, on exactly its current inputs,
    and put a stand-in output where each asset's ``exists`` looks."""
    specs = ws.specs
    sources = [k for k, s in specs.items() if s.observable]
    obs = latest_observations(ws.engine, sources)
    order = [k for gen in _generations(ws) for k in gen]
    rows = []
    for key in order:
        spec = specs[key]
        inputs = {}
        tmin = tmax = None
        for dep in spec.deps:
            o = obs.get(dep)
            if o is not None:
                inputs[dep] = input_version_record(dep, o.data_version, o)
                tmin, tmax = o.begin_time, o.end_time
            else:
                inputs[dep] = input_version_record(dep, f"v-{dep}", None)
        rows.append(
            success_row(key, spec, inputs, "bench-setup", time_min=tmin, time_max=tmax)
        )
        _stand_in(ws, key)
    record_successes(ws.engine, rows)


def _generations(ws: Workspace) -> list[list[str]]:
    import networkx as nx

    sub = ws.graph.subgraph(k for k, s in ws.specs.items() if not s.observable)
    return [sorted(g) for g in nx.topological_generations(sub)]


def _stand_in(ws: Workspace, key: str) -> None:
    spec = ws.specs[key]
    root = Path(ws.settings.resolved_storage())
    if spec.kind == "ooi_stream":
        path = root / key / ".zmetadata"
        payload = {"metadata": {}, "zarr_consolidated_format": 1}
    elif spec.kind == "catalog":
        path, payload = root / "catalog.yaml", {}
    else:
        path = Path(get_kind(spec.kind).output_url(key, ws.settings))
        payload = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=600)
    ap.add_argument("--db-url", default=None, help="default: a SQLite file in a temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dv-noop-"))
    n_instruments = write_configs(tmp / "configs", args.streams)
    with Simulator(tmp / "configs", workdir=tmp / "sim") as sim:
        settings = Settings(**settings_values(tmp, args.db_url, sim.base_url))
        t = time.perf_counter()
        ws = Workspace.load(settings)
        ws.sync()
        ws.observe()
        up_to_date(ws)
        left = ws.plan()
        if len(left):
            raise SystemExit(f"setup left {len(left)} assets stale: {left.keys[:5]}")
        print(
            f"{args.streams} streams on {n_instruments} instruments, {len(ws.specs)} assets, "
            f"db {ws.engine.dialect.name}; set up in {time.perf_counter() - t:.1f} s"
        )
        from data_vent.flows import daily_harvest, run_flow

        for label in ("first run (starts Prefect's ephemeral server)", "second run"):
            sim.reset_counters()
            t = time.perf_counter()
            result = run_flow(daily_harvest, settings=settings)
            wall = time.perf_counter() - t
            counts = sim.counter_snapshot()
            calls = sum(counts.get("metadata_times", {}).values())
            data = sum(counts.get("data_requests", {}).values())
            print(
                f"{label}: {wall:.1f} s wall; metadata/times calls {calls} "
                f"(instruments {n_instruments}); data requests {data}; "
                f"assets planned {len(result['plan'])}; most calls in flight "
                f"{sim.peak_calls} (cap {settings.ooi_max_calls})"
            )
        sim.reset_counters()
        t = time.perf_counter()
        ws.sync()
        t_sync = time.perf_counter() - t
        t = time.perf_counter()
        ws.observe()
        t_obs = time.perf_counter() - t
        t = time.perf_counter()
        ws.plan()
        t_plan = time.perf_counter() - t
        print(
            f"without Prefect: sync {t_sync:.2f} s, observe {t_obs:.2f} s, plan {t_plan:.2f} s"
        )


if __name__ == "__main__":
    main()

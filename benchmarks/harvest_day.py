"""A day of new data for N streams: the daily harvest on 1 and on 2 worker processes.

N streams (one per instrument) on the OOI simulator, sampled every ``--interval`` seconds.
A first run builds every store from one day of data; then the clock moves one day and the
daily flow appends it on a local Dask cluster of 1 worker process, then one more day on 2
(same run, same machine). Prints the wall time of each, the NetCDF megabytes OOI served and
MB/s. Starts its own ``prefect server`` (process-based task runners need a real API).

    python benchmarks/harvest_day.py --streams 100 [--interval 5] [--db-url URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from common import settings_values

# the Prefect server the deploy test starts, started the same way
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.processes import (  # noqa: E402
    free_port,
    prefect_env,
    start_prefect_server,
    stop,
    wait_healthy,
)

CLOCK = datetime(2026, 1, 2)


def start_prefect(home: Path) -> subprocess.Popen:
    """A Prefect server on loopback; sets PREFECT_API_URL for this process and its children."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (home.parent / "prefect-server.log").open("wb")
    proc = start_prefect_server(port, prefect_env(home), log)
    if not wait_healthy(api, proc, timeout=180, every=0.5):
        stop(proc)
        raise SystemExit(f"prefect server did not start; see {home.parent}")
    os.environ.update(
        PREFECT_API_URL=api,
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_LOGGING_TO_API_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    return proc


def write_configs(folder: Path, n: int, interval: float) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        refdes = f"RS{i // 100:02d}SBPS-PC{i % 10:02d}A-{i % 9 + 1}A-CTDPFA{i:03d}"
        doc = {
            "instrument": refdes,
            "stream": {"method": "streamed", "name": "ctdpf_sbe43_sample"},
            "harvest_options": {"refresh": False, "path": "s3://ooi-data"},
            "simulator": {"first": CLOCK - timedelta(days=1), "interval": interval},
        }
        (folder / f"{refdes}-streamed-ctdpf_sbe43_sample.yaml").write_text(yaml.safe_dump(doc))


def served_bytes(workdir: Path, since: float) -> int:
    return sum(
        p.stat().st_size for p in workdir.rglob("*.nc") if p.stat().st_mtime >= since - 1
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--db-url", default=None, help="default: a SQLite file in a temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dv-harvest-day-"))
    server = start_prefect(tmp / "prefect-home")
    try:
        from data_vent.flows import daily_harvest, run_flow
        from data_vent.settings import Settings
        from data_vent.simulator import Simulator

        write_configs(tmp / "configs", args.streams, args.interval)
        with Simulator(
            tmp / "configs", ready_delay=0.2, start=CLOCK, workdir=tmp / "sim"
        ) as sim:
            base = dict(
                settings_values(tmp, args.db_url, sim.base_url),
                ooi_poll_interval=0.1,
                task_runner="dask",
            )
            rows_per_day = int(86400 / args.interval)
            print(
                f"{args.streams} streams, {rows_per_day} rows per stream-day, "
                f"db {'postgresql' if args.db_url else 'sqlite'}"
            )
            for label, workers, advance in (
                ("first day (full builds), 2 workers", 2, 0),
                ("a day of new data, 1 worker", 1, 86400),
                ("a day of new data, 2 workers", 2, 86400),
            ):
                sim.advance(advance)
                since = time.time()
                t = time.perf_counter()
                result = run_flow(
                    daily_harvest, settings=Settings(**base, dask_workers=workers)
                )
                wall = time.perf_counter() - t
                mb = served_bytes(tmp / "sim", since) / 1e6
                ok = sum(1 for o in result["outcomes"].values() if o["status"] == "success")
                print(
                    f"{label}: {wall:.1f} s wall, {ok}/{len(result['outcomes'])} assets "
                    f"succeeded, {mb:.1f} MB of NetCDF, {mb / wall:.2f} MB/s"
                )
    finally:
        stop(server, grace=30)


if __name__ == "__main__":
    main()

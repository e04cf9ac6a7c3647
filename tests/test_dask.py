"""DATA_VENT_TASK_RUNNER=dask: the asset tasks of a harvest run on a local Dask cluster of
worker processes (a real ``prefect server start``: process-based runners need one)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from sqlalchemy import select

from data_vent.core.timeutil import to_ntp_seconds
from data_vent.simulator import Simulator
from data_vent.state.db import get_engine
from data_vent.state.models import Asset, Materialization
from tests.test_deploy import prefect_api  # noqa: F401 - the real Prefect server fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "data_vent" / "demo_configs"
M, A = Materialization.__table__, Asset.__table__


def test_harvest_on_a_local_dask_cluster_of_two_worker_processes(
    prefect_api,  # noqa: F811
    tmp_path: Path,
) -> None:
    _api, prefect_env = prefect_api
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in sorted(DEMO.glob("*.yaml"))[:3]:
        (configs / path.name).write_text(path.read_text())
    db = f"sqlite:///{tmp_path / 'state.db'}"
    storage = tmp_path / "stores"
    with Simulator(configs, ready_delay=0.2, workdir=tmp_path / "sim") as sim:
        env = {
            **{k: v for k, v in prefect_env.items() if not k.startswith("DATA_VENT_")},
            "DATA_VENT_HOME": str(tmp_path / "home"),
            "DATA_VENT_DB_URL": db,
            "DATA_VENT_STORAGE": str(storage),
            "DATA_VENT_CONFIG_DIR": str(configs),
            "DATA_VENT_OOI_URL": sim.base_url,
            "DATA_VENT_OOI_POLL_INTERVAL": "0.1",
            "DATA_VENT_CHUNK_TARGET_BYTES": "1048576",
            "DATA_VENT_TASK_RUNNER": "dask",
            "DATA_VENT_DASK_WORKERS": "2",
        }
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "data-vent"), "harvest"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate(timeout=280)
        assert proc.returncode == 0, (out[-3000:], err[-8000:])
        expected = {t: s.summary(sim.now_ntp) for t, s in sim.streams.items()}
    engine = get_engine(db)
    with engine.connect() as conn:
        assets = [r.key for r in conn.execute(select(A.c.key).where(~A.c.observable))]
        rows = conn.execute(select(M.c.asset_key, M.c.status, M.c.worker)).all()
    successes = Counter(r.asset_key for r in rows if r.status == "success")
    assert successes == Counter(assets), rows  # every asset exactly once
    workers = {r.worker for r in rows}
    assert len(workers) == 2, workers  # both Dask worker processes did work...
    assert not any(w.endswith(f":{proc.pid}") for w in workers)  # ...not the flow's
    for table, summary in expected.items():
        with xr.open_zarr(storage / table, consolidated=True, decode_times=False) as ds:
            t = ds["time"].values
        assert t.size == summary["count"], table
        assert np.all(np.diff(t) > 0), table
        assert t[-1] == pytest.approx(to_ntp_seconds(_ooi_time(summary["endTime"])), abs=1e-3)


def _ooi_time(text: str):
    from data_vent.core.timeutil import parse_ooi_time

    return parse_ooi_time(text)

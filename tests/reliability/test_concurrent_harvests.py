"""Many runs at once: 2 and 4 ``data-vent harvest`` processes started together on an empty
home, against one OOI simulator and one state DB (SQLite, then PostgreSQL), on the session's
Prefect server.

Every run exits 0 (an asset another run holds is its work, not a failure), every asset is
materialized once (one success row each), OOI is asked for each stream's data once, and the
catalog is built. Before the fix, two harvests built most streams twice (46 OOI data
requests for 25 streams) and most concurrent runs exited 1 with no real failure. Each set-up
runs once: the double work showed in every trial; the intermittent PostgreSQL slot deadlock
has a test of its own (tests/test_ooi_ratelimit.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from data_vent.core.timeutil import utcnow
from data_vent.demo import DEMO_CONFIGS
from data_vent.simulator import Simulator
from tests.reliability.helpers import attempts, cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

STREAMS = 6
"""A slice of the demo's RCA streams (distinct instruments), to keep each set-up short."""


def stream_configs(folder: Path) -> list[str]:
    """Demo streams with a synthetic history (not the ones replaying real files)."""
    folder.mkdir(parents=True, exist_ok=True)
    synthetic = [
        p for p in sorted(DEMO_CONFIGS.glob("*.yaml")) if "simulator" not in p.read_text()
    ]
    tables = []
    for path in synthetic[::4][:STREAMS]:
        shutil.copy(path, folder / path.name)
        doc = yaml.safe_load(path.read_text())
        tables.append(f"{doc['instrument']}-{doc['stream']['method']}-{doc['stream']['name']}")
    return tables


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[Simulator, list[str]]]:
    tables = stream_configs(tmp_path / "configs")
    start = (utcnow() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    s = Simulator(tmp_path / "configs", ready_delay=0.2, start=start, workdir=tmp_path / "sim")
    s.start()
    yield s, tables
    s.stop()


def prefect_api() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": PREFECT_API_URL.value()} if PREFECT_API_URL.value() else {}


@pytest.mark.parametrize("runs", [2, 4])
def test_harvests_started_together(
    runs: int, db_url: str, sim, isolated_env: Path, tmp_path: Path
) -> None:
    from data_vent.state.db import get_engine

    simulator, tables = sim
    env = {
        "DATA_VENT_DB_URL": db_url,
        "DATA_VENT_CONFIG_DIR": str(tmp_path / "configs"),
        "DATA_VENT_OOI_URL": simulator.base_url,
        "DATA_VENT_OOI_POLL_INTERVAL": "0.1",
        "DATA_VENT_CHUNK_TARGET_BYTES": str(1 << 20),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        **prefect_api(),
    }
    procs = [cli("harvest", **env) for _ in range(runs)]
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}"

    assets = {*tables, *(f"{t}/availability" for t in tables), "catalog"}
    engine = get_engine(db_url)
    assert attempts(engine, "success") == dict.fromkeys(assets, 1)  # each materialized once
    assert attempts(engine, "failed") == {}
    for t in tables:
        assert simulator.data_requests(t) == 1, t  # each OOI data request made once
    catalog = yaml.safe_load((isolated_env / "stores" / "catalog.yaml").read_text())
    assert set(catalog["sources"]) == set(tables)

"""Fixtures of the stream-store tests: real OOI files, a moto S3 server on loopback, two
streams harvested from the OOI simulator."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np

CONFIGS = Path(__file__).parent / "data" / "configs"
DATA = Path(__file__).parent / "data" / "netcdf"
NC_FILES = sorted(DATA.rglob("*.nc"))
SE = DATA / "stream_engine_output"
_GL = "recovered_host-ctdgv_m_glider_instrument_recovered.nc"
GLIDER_CTD = [
    SE / f"deployment0003_CE05MOAS-GL319-05-CTDGVM000-{_GL}",
    SE / f"deployment0006_CE05MOAS-GL319-05-CTDGVM000-{_GL}",
    SE / f"deployment0008_CP05MOAS-GL388-03-CTDGVM000-{_GL}",
]
CTDPFJ = SE / (
    "CE02SHSP-SP001-08-CTDPFJ000-recovered_cspp-ctdpf_j_cspp_instrument_recovered__se1.14.0.nc"
)
NUTNRJ = SE / (
    "CE02SHSP-SP001-05-NUTNRJ000-recovered_cspp-nutnr_j_cspp_instrument_recovered__se1.14.0.nc"
)


SIM_TABLES = [
    "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample",
    "RS03AXPS-PC03A-4B-PHSENA302-streamed-phsen_data_record",
]
"""The streams :func:`harvest_sim_tables` harvests."""


def harvest_sim_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, np.ndarray]:
    """``SIM_TABLES``' configs in ``tmp_path/configs``, harvested once from the OOI simulator
    (in this process, no Prefect) into the test's storage, every asset a success; the times
    the simulator served per table, which the stores must hold."""
    from data_vent.run import runner
    from data_vent.run.workspace import Workspace
    from data_vent.settings import get_settings
    from data_vent.simulator import Simulator

    cfg = tmp_path / "configs"
    cfg.mkdir()
    for t in SIM_TABLES:
        shutil.copy(CONFIGS / f"{t}.yaml", cfg)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", "1048576")
    monkeypatch.setenv("DATA_VENT_OOI_POLL_INTERVAL", "0.1")
    with Simulator(cfg, ready_delay=0.2, start=datetime(2024, 3, 1)) as sim:
        monkeypatch.setenv("DATA_VENT_OOI_URL", sim.base_url)
        ws = Workspace.load(get_settings())
        ws.sync()
        ws.observe()
        outcomes = ws.execute(ws.plan(), runner.new_run_id())
        assert {o.status for o in outcomes.values()} == {"success"}, outcomes
        return {t: sim.streams[t].times(sim.streams[t].t0, sim.now_ntp) for t in SIM_TABLES}


def subset(src: Path, dest: Path, index, drop: list[str] | None = None, **isel) -> Path:
    """A real file cut to some rows (and optionally other dims), written back as NetCDF."""
    from data_vent.ncio import load_dataset, save_dataset

    out = load_dataset(src, decode_cf=False).isel(obs=index, **isel)
    return save_dataset(out.drop_vars(drop) if drop else out, dest)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for the whole session; yields storage_options."""
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    opts = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint},
    }
    yield opts
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket (moto reset) and its storage_options."""
    import requests
    import s3fs

    requests.post(f"{s3_server['client_kwargs']['endpoint_url']}/moto-api/reset", timeout=10)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(**s3_server)
    fs.mkdir("stores")
    yield "s3://stores", s3_server
    s3fs.S3FileSystem.clear_instance_cache()

"""The simulator's NetCDF matches a real Stream Engine file; its streams come from configs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import requests

from data_vent.ncio import load_dataset, netcdf4_file
from data_vent.ooi.sim_netcdf import FileSpec, write_stream_file
from data_vent.ooi.simulator import Simulator, streams_from_configs

DATA = Path(__file__).parent / "data"
REAL = "CE02SHSM-SBD11-06-METBKA000-telemetered-metbk_a_dcl_instrument__se1.2.7.nc"
CORE_VARS = (
    "time",
    "deployment",
    "id",
    "provenance",
    "lat",
    "lon",
    "preferred_timestamp",
    "port_timestamp",
    "driver_timestamp",
    "internal_timestamp",
    "ingestion_timestamp",
)
TABLE = "CE02SHSM-SBD11-06-METBKA000-telemetered-metbk_a_dcl_instrument"


def real_file() -> Path:
    for p in (DATA / "netcdf" / "stream_engine_output" / REAL, DATA / "m2m" / REAL):
        if p.exists():
            return p
    pytest.fail(f"real Stream Engine fixture {REAL} missing from tests/data/netcdf")


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nc") / "sim.nc"
    times = 3.9e9 + np.arange(50) * 60.0
    return write_stream_file(path, FileSpec(TABLE, times, 4))


@pytest.fixture
def pair(sim_file: Path) -> Iterator[tuple[netCDF4.Dataset, netCDF4.Dataset]]:
    with netcdf4_file(real_file()) as real, netcdf4_file(sim_file) as sim:
        yield real, sim


def test_same_format_and_record_dimension(pair) -> None:
    real, sim = pair
    assert sim.data_model == real.data_model == "NETCDF4"
    assert sim.dimensions["obs"].isunlimited() and real.dimensions["obs"].isunlimited()
    assert {"obs", "string36", "string18"} <= set(sim.dimensions) & set(real.dimensions)


def test_same_global_attribute_names(pair) -> None:
    real, sim = pair
    assert set(sim.ncattrs()) == set(real.ncattrs())
    for name in ("id", "stream", "collection_method", "subsite", "node", "sensor"):
        assert sim.getncattr(name) == real.getncattr(name)


@pytest.mark.parametrize("var", CORE_VARS)
def test_core_variables_match(pair, var: str) -> None:
    real, sim = pair
    r, s = real.variables[var], sim.variables[var]
    assert s.dimensions == r.dimensions
    assert s.dtype == r.dtype
    assert set(s.ncattrs()) == set(r.ncattrs())
    if var == "time":
        assert {a: s.getncattr(a) for a in s.ncattrs()} == {
            a: r.getncattr(a) for a in r.ncattrs()
        }


def test_qc_companions_like_real(pair) -> None:
    real, sim = pair
    real_qc = [v for v in real.variables if v.endswith("_qc_executed")]
    sim_qc = [v for v in sim.variables if v.endswith("_qc_executed")]
    assert real_qc and sim_qc
    for v in sim_qc:
        base = v[: -len("_qc_executed")]
        for suffix in ("_qc_executed", "_qc_results"):
            s, r = sim.variables[base + suffix], real.variables[real_qc[0][:-12] + suffix]
            assert (s.dtype, s.dimensions, s.ncattrs()) == (r.dtype, r.dimensions, r.ncattrs())


def test_opens_with_xarray_like_real(pair) -> None:
    real, sim = pair
    r, s = load_dataset(real.filepath()), load_dataset(sim.filepath())
    assert set(r.coords) == set(s.coords) == {"time", "lat", "lon"}
    assert s.time.dtype == r.time.dtype
    assert s.id.dtype.kind == r.id.dtype.kind == "S"
    assert int(s.deployment[0]) == 4


def test_same_instant_same_values(tmp_path: Path) -> None:
    """Overlapping requests must serve identical rows, as OOI does."""
    t = 3.9e9 + np.arange(10) * 600.0
    a = write_stream_file(tmp_path / "a.nc", FileSpec(TABLE, t[:6], 1))
    b = write_stream_file(tmp_path / "b.nc", FileSpec(TABLE, t[4:], 1))
    da, db = load_dataset(a), load_dataset(b)
    for v in ("sea_water_temperature", "id"):
        assert (da[v].values[4:] == db[v].values[:2]).all()


@pytest.mark.slow  # the simulator server
def test_streams_from_harvest_configs(tmp_path: Path) -> None:
    configs = DATA / "configs"
    if not configs.exists():
        configs = tmp_path
        (tmp_path / "a.yaml").write_text(
            "instrument: CE04OSPS-SF01B-2A-CTDPFA107\n"
            "stream: {method: streamed, name: ctdpf_sbe43_sample}\n"
        )
    clock = datetime(2024, 1, 1)
    one, two = streams_from_configs(configs, clock), streams_from_configs(configs, clock)
    assert one and [(s.table, s.first, s.interval) for s in one] == [
        (s.table, s.first, s.interval) for s in two
    ]  # deterministic histories
    assert all(s.first < clock for s in one)
    with Simulator(configs, ready_delay=0.1, start=clock) as sim:
        s = one[0]
        r = requests.get(
            f"{sim.base_url}/12576/sensor/inv/{s.name.site}/{s.name.node}/{s.name.sensor}"
            "/metadata/times"
        )
        entry = next(e for e in r.json() if e["stream"] == s.name.stream)
        assert entry["count"] == len(s.times(s.t0, sim.now_ntp))


@pytest.mark.slow  # simulator subprocess
def test_serve_forever_prints_base_url(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "a.yaml").write_text(
        "instrument: CE04OSPS-SF01B-2A-CTDPFA107\nstream: {method: streamed, name: x_sample}\n"
    )
    code = (
        "import sys; from data_vent.ooi.simulator import serve_forever; "
        "serve_forever(0, sys.argv[1])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(cfg)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].strip().split("=", 1)[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/m2m")
        assert requests.get(f"{url}/12576/sensor/inv", timeout=5).json() == ["CE04OSPS"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode is not None

"""The simulator's NetCDF matches a real Stream Engine file; its streams come from configs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import requests

from data_vent.ncio import load_dataset, netcdf4_file
from data_vent.simulator import Simulator, streams_from_configs
from data_vent.simulator.synthetic import FileSpec, write_stream_file

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


def start_cli_simulator(cfg: Path, *args: str) -> tuple[subprocess.Popen, list[str]]:
    """``data-vent simulator`` in a subprocess, with its first two output lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "data_vent", "simulator", "--port", "0"]
        + ["--streams", str(cfg), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    return proc, [proc.stdout.readline() for _ in range(2)]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def one_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "a.yaml").write_text(
        "instrument: CE04OSPS-SF01B-2A-CTDPFA107\nstream: {method: streamed, name: x_sample}\n"
    )
    return cfg


@pytest.mark.slow
def test_standalone_simulator_clock_starts_now(tmp_path: Path) -> None:
    """Issue 12.15: the standalone simulator no longer sits at 2024-01-01."""
    from data_vent.core.timeutil import utcnow

    before = utcnow().replace(microsecond=0)
    proc, lines = start_cli_simulator(one_config(tmp_path))
    try:
        clock = datetime.fromisoformat(lines[0].split("clock ")[1].strip().rstrip("Z"))
        assert before <= clock <= utcnow()
        url = lines[1].strip().split("=", 1)[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/m2m")
        (entry,) = requests.get(
            f"{url}/12576/sensor/inv/CE04OSPS/SF01B/2A-CTDPFA107/metadata/times", timeout=5
        ).json()
        end = datetime.fromisoformat(entry["endTime"].rstrip("Z"))
        assert clock - timedelta(hours=1) <= end <= clock  # data up to the wall clock
    finally:
        stop(proc)


@pytest.mark.slow
def test_standalone_simulator_clock_option(tmp_path: Path) -> None:
    cfg = one_config(tmp_path)
    proc, lines = start_cli_simulator(cfg, "--clock", "2024-01-01T00:00Z")
    try:
        assert "clock 2024-01-01T00:00:00Z" in lines[0]
    finally:
        stop(proc)
    proc, lines = start_cli_simulator(cfg, "--clock", "yesterday")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        "error: --clock 'yesterday' is not an ISO time (e.g. 2024-01-01T00:00Z)"
    ]


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ``data_vent`` modules a file imports, at module level or inside functions
    (``from pkg import submodule`` counts as the submodule, not the package)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            out |= subs or {node.module}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m in modules}


def import_graph():
    import networkx as nx

    pkg = Path(__file__).parent.parent / "data_vent"
    modules = {
        ".".join(p.relative_to(pkg.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in pkg.rglob("*.py")
    }
    g = nx.DiGraph()
    for mod, path in modules.items():
        g.add_node(mod)
        g.add_edges_from((mod, t) for t in _imports(path, set(modules)) if t != mod)
    return g


def test_simulator_is_a_package_beside_ooi_without_cycles() -> None:
    import networkx as nx

    g = import_graph()
    sim = {m for m in g if m.startswith("data_vent.simulator")}
    assert {"data_vent.simulator.routes", "data_vent.simulator.server"} <= sim
    ooi_users = {m for m in g if m.startswith("data_vent.ooi")}
    leaks = [(a, b) for a, b in g.edges if a in ooi_users and b in sim]
    assert leaks == [], f"ooi/ must not import the simulator: {leaks}"
    cycles = [c for c in nx.simple_cycles(g.subgraph(sim))]
    assert cycles == [], f"import cycles in the simulator: {cycles}"


@pytest.mark.slow  # the simulator server
def test_one_route_table_answers_every_path() -> None:
    from data_vent.simulator.routes import ROUTES

    with Simulator(
        ["CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"],
        ready_delay=0.1,
        start=datetime(2024, 1, 1),
    ) as sim:
        inv = f"{sim.base_url}/12576/sensor/inv"
        assert requests.get(inv, timeout=5).json() == ["CE04OSPS"]
        assert requests.get(f"{inv}/CE04OSPS/SF01B/2A-CTDPFA107", timeout=5).json() == [
            "streamed"
        ]
        r = requests.post(inv, timeout=5)
        assert r.status_code == 405
        r = requests.get(f"{sim.base_url}/12576/nothing/here", timeout=5)
        assert r.status_code == 404 and "unknown M2M path" in r.json()["message"]
        r = requests.post(f"{sim.host_url}/sim/fault?table=nope&fault=http_500", timeout=5)
        assert r.status_code == 400
    seen = [(r.pattern.pattern, m) for r in ROUTES for m in r.methods]
    assert len(seen) == len(set(seen)), "two routes for one method and path"


# -- streams that replay real Stream Engine files ------------------------------------------

SE = DATA / "netcdf" / "stream_engine_output"
GLIDER = "CE05MOAS-GL319-05-CTDGVM000-recovered_host-ctdgv_m_glider_instrument_recovered"
GLIDER_FILES = [SE / f"deployment{n:04d}_{GLIDER}.nc" for n in (3, 6)]
PER_REQUEST = {"requestUUID", "time_coverage_start", "time_coverage_end"}


def raw(path: Path) -> dict:
    """Dimensions, global attributes and every variable's dtype, attributes and raw values."""
    with netcdf4_file(path) as ds:
        ds.set_auto_maskandscale(False)
        out = {
            "dims": {n: len(d) for n, d in ds.dimensions.items()},
            "attrs": {k: ds.getncattr(k) for k in ds.ncattrs()},
            "vars": {},
        }
        for name, v in ds.variables.items():
            v.set_auto_maskandscale(False)
            if v.dtype == np.dtype("S1"):
                v.set_auto_chartostring(False)
            attrs = {k: v.getncattr(k) for k in v.ncattrs()}
            out["vars"][name] = (v.dtype, v.dimensions, attrs, np.asarray(v[...]))
    return out


def glider_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    files = "".join(f"  - {p}\n" for p in GLIDER_FILES)
    (cfg / f"{GLIDER}.yaml").write_text(
        "instrument: CE05MOAS-GL319-05-CTDGVM000\n"
        "stream: {method: recovered_host, name: ctdgv_m_glider_instrument_recovered}\n"
        f"simulator:\n  days: 2\n  files:\n{files}"
    )
    return cfg


@pytest.mark.slow  # the simulator server
def test_real_files_served_time_shifted_with_everything_else_kept(tmp_path: Path) -> None:
    """Two deployments of a glider, two Stream Engine versions: a request over two days
    gets their rows as files of the real layout, each row moved by whole seconds only."""
    from data_vent.ooi.client import OOIClient
    from tests.conftest_ooi import ooi_settings
    from tests.polling import poll_until
    from tests.real_rows import chunks_in_range, open_sources

    clock = datetime(2026, 11, 20)
    with Simulator(glider_config(tmp_path), ready_delay=0.1, start=clock) as sim:
        (stream,) = sim.streams.values()
        assert stream.kind == "real" and stream.period == 86400
        with pytest.raises(ValueError, match="does not apply"):
            sim.set_fault(GLIDER, "duplicate_times")  # a real file is served as it is
        client = OOIClient(ooi_settings(sim.base_url))
        (entry,) = client.metadata_times("CE05MOAS-GL319-05-CTDGVM000")
        # first row at the clock - 2 days - 38 ms: two whole cycles of both files, then
        # the first row of the third cycle, just before the clock
        assert entry.count == 2 * (1001 + 5803) + 1
        assert client.deployments("CE05MOAS-GL319-05-CTDGVM000") == [3, 6]
        ans = client.request_data(GLIDER, entry.begin_time, entry.end_time)
        poll_until(lambda: client.request_status(ans.status_url).state == "ready")
        listing = client.listing(ans.catalog_url, GLIDER)
        assert [f.deployment for f in listing.data] == [3, 3, 3, 6, 6]  # as the client sorts
        paths = [client.download(f, tmp_path / "dl") for f in listing.data]
        client.close()

    sources = open_sources(GLIDER_FILES)
    begin, end = stream.t0, to_ntp(entry.end_time)
    chunks = chunks_in_range(sources, list(stream.shifts), stream.period, begin, end)
    assert sum(len(c.rows) for c in chunks) == entry.count
    real = [raw(p) for p in GLIDER_FILES]
    by_name = sorted(chunks, key=lambda c: (c.file, c.shift))  # deployment, then time
    for path, chunk in zip(paths, by_name, strict=True):
        got, want = raw(path), real[chunk.file]
        assert {**got["dims"], "obs": 0} == {**want["dims"], "obs": 0}
        assert got["dims"]["obs"] == len(chunk.rows)
        assert {k: v for k, v in got["attrs"].items() if k not in PER_REQUEST} == {
            k: v for k, v in want["attrs"].items() if k not in PER_REQUEST
        }
        assert got["attrs"]["requestUUID"] == ans.request_uuid
        assert got["vars"].keys() == want["vars"].keys()
        for name, (dtype, dims, attrs, values) in want["vars"].items():
            g_dtype, g_dims, g_attrs, g_values = got["vars"][name]
            assert (g_dtype, g_dims) == (dtype, dims), name
            assert g_attrs.keys() == attrs.keys(), name  # _FillValue of strings too
            for k in attrs:
                np.testing.assert_array_equal(g_attrs[k], attrs[k], err_msg=f"{name}.{k}")
            if "obs" not in dims:
                np.testing.assert_array_equal(g_values, values, err_msg=name)
                continue
            rows = np.take(values, chunk.rows, axis=dims.index("obs"))
            if str(attrs.get("units", "")).startswith("seconds since"):
                fill = attrs.get("_FillValue")
                moved = (rows != fill) & np.isfinite(rows)
                np.testing.assert_array_equal(g_values[~moved], rows[~moved], err_msg=name)
                assert np.all(g_values[moved] - rows[moved] == chunk.shift), name
            else:
                np.testing.assert_array_equal(g_values, rows, err_msg=name)


def to_ntp(value: datetime) -> float:
    from data_vent.core.timeutil import to_ntp_seconds

    return to_ntp_seconds(value)


def test_real_stream_refuses_a_file_of_another_stream(tmp_path: Path) -> None:
    from data_vent.simulator.real import RealStream

    wrong = SE / REAL  # the CE02SHSM met buoy, not the glider
    with pytest.raises(ValueError, match="not CE05MOAS"):
        RealStream(GLIDER, [wrong], datetime(2026, 1, 1))


def test_demo_streams_that_replay_real_files_load() -> None:
    from data_vent.demo import DEMO_CONFIGS

    streams = streams_from_configs(DEMO_CONFIGS, datetime(2026, 11, 20))
    real = [s for s in streams if s.kind == "real"]
    assert len(real) >= 5
    for s in real:
        t = s.times(s.t0, s.t0 + 3 * s.period)
        assert np.diff(t).max() < 86400, s.table  # a simulated day always brings new rows
        assert all(src.path.is_file() for src in s.sources)

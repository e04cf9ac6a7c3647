"""End to end: the daily flow on a real Prefect server against the OOI simulator on loopback.

* two simulated days over the 31 demo streams: full harvest, then only the new day is
  requested and appended, derived assets follow in the same run; the 7 streams that replay
  real Stream Engine files then hold exactly the real files' rows for the harvested range,
  variable by variable; a third run with the clock not advanced asks OOI for no data at all;
* an OOI request that is not ready leaves its stream ``waiting`` while the run moves on; the
  next run resumes the same request; a stream whose source is behind is not retried;
* a stream OOI's table of contents drops is ``discontinued``: reported, never requested nor
  failed, the harvest exits 0; when OOI lists it again it is harvested again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from sqlmodel import Session, select

from data_vent.core.timeutil import to_ntp_seconds, utcnow
from data_vent.demo import DEMO_CONFIGS
from data_vent.ooi.names import parse_table
from data_vent.simulator import Simulator
from tests.real_rows import chunks_in_range, compare, open_sources, store_drops

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

NTP_UNITS = "seconds since 1900-01-01"
REAL_DATA = Path(__file__).parent / "data" / "netcdf"
TOL = 1e-3  # seconds; stores and requests carry OOI's millisecond precision


def demo_tables() -> list[str]:
    out = []
    for path in sorted(DEMO_CONFIGS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        out.append(f"{doc['instrument']}-{doc['stream']['method']}-{doc['stream']['name']}")
    return out


def refdes(table: str) -> str:
    n = parse_table(table)
    return f"{n.site}-{n.node}-{n.sensor}"


@pytest.fixture
def harvest_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", "1048576")
    monkeypatch.setenv("DATA_VENT_OOI_POLL_INTERVAL", "0.1")
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    monkeypatch.setenv("PREFECT_LOGGING_TO_API_ENABLED", "false")


def start_sim(
    monkeypatch: pytest.MonkeyPatch, config_dir: Path, start: datetime, workdir: Path
) -> Simulator:
    sim = Simulator(config_dir, ready_delay=0.2, start=start, workdir=workdir)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("DATA_VENT_OOI_URL", sim.start())
    return sim


@pytest.fixture
def demo_sim(
    harvest_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Simulator]:
    # One day back, on the hour: after `advance(86400)` the simulated clock is just past.
    start = (utcnow() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    sim = start_sim(monkeypatch, DEMO_CONFIGS, start, tmp_path / "sim")
    yield sim
    sim.stop()


def settings_and_engine():
    from data_vent.settings import get_settings
    from data_vent.state.db import get_engine

    s = get_settings()
    return s, get_engine(s.resolved_db_url())


def store_times(url: str) -> np.ndarray:
    """The store's raw time values (float64 NTP seconds), as a plain reader sees them."""
    with xr.open_zarr(url, consolidated=True, decode_times=False) as ds:
        return np.asarray(ds["time"].values)


def check_store(url: str, expected: np.ndarray) -> np.ndarray:
    """A store a plain reader opens, with OOI's time encoding and exactly ``expected``."""
    with xr.open_zarr(url, consolidated=True) as ds:
        assert ds["time"].dims == ("time",), url
        assert all(ds[v].dims[:1] == ("time",) for v in ds.data_vars if "time" in ds[v].dims)
        assert ds["time"].encoding["units"].startswith(NTP_UNITS), ds["time"].encoding
    arr = zarr.open_group(url, mode="r")["time"]
    assert arr.dtype == np.float64, (url, arr.dtype)
    assert str(arr.attrs["units"]).startswith(NTP_UNITS), dict(arr.attrs)
    times = store_times(url)
    assert len(times) == len(expected), (url, len(times), len(expected))
    assert np.all(np.diff(times) > 0), f"{url}: time not strictly increasing"
    assert len(np.unique(times)) == len(times), f"{url}: duplicate times"
    np.testing.assert_allclose(times, expected, rtol=0, atol=TOL)
    return times


def materializations(engine, key: str, status: str | None = None) -> list:
    from data_vent.state.models import Materialization as M

    with Session(engine) as s:
        stmt = select(M).where(M.asset_key == key)
        if status:
            stmt = stmt.where(M.status == status)
        return list(s.exec(stmt.order_by(M.id)))


def check_db(engine, key: str, times: np.ndarray, n_success: int, run_id: str) -> None:
    rows = materializations(engine, key, "success")
    assert len(rows) == n_success, (key, [(r.status, r.action) for r in rows])
    last = rows[-1]
    assert last.run_id == run_id
    assert last.rows == len(times)
    assert abs(to_ntp_seconds(last.time_min) - times[0]) < TOL, (key, last.time_min)
    assert abs(to_ntp_seconds(last.time_max) - times[-1]) < TOL, (key, last.time_max)
    assert last.data_version and last.finished_at is not None


def check_observation(engine, table: str, expected: np.ndarray) -> None:
    from data_vent.state.models import SourceObservation as O

    with Session(engine) as s:
        obs = s.exec(
            select(O).where(O.source_key == f"ooi/{table}").order_by(O.id.desc())
        ).first()
    assert obs is not None, f"no observation recorded for ooi/{table}"
    assert obs.count == len(expected)
    assert abs(to_ntp_seconds(obs.begin_time) - expected[0]) < TOL
    assert abs(to_ntp_seconds(obs.end_time) - expected[-1]) < TOL


def check_availability(root: str, table: str, rows: int) -> None:
    doc = json.loads((Path(root) / "_derived" / table / "availability.json").read_text())
    assert doc["store"] == table and doc["rows"] == rows
    for level in ("hourly", "daily", "monthly"):
        assert sum(doc[level].values()) == rows, (table, level)


def check_catalog(root: str, rows_by_table: dict[str, int]) -> None:
    cat = yaml.safe_load((Path(root) / "catalog.yaml").read_text())
    assert set(cat["sources"]) == set(rows_by_table)
    for key, src in cat["sources"].items():
        assert src["driver"] == "zarr"
        assert src["args"]["consolidated"] is True
        # local stores: paths relative to the catalog (intake's CATALOG_DIR)
        assert src["args"]["urlpath"] == "{{ CATALOG_DIR }}/" + key
        assert src["metadata"]["rows"] == rows_by_table[key]
    index = json.loads((Path(root) / "index.json").read_text())
    assert {e["key"]: e["rows"] for e in index} == rows_by_table
    stats = json.loads((Path(root) / "stats.json").read_text())
    assert stats["streams"] == len(rows_by_table)
    assert stats["rows"] == sum(rows_by_table.values())
    assert sum(v["rows"] for v in stats["by_site"].values()) == stats["rows"]
    assert stats["missing"] == []


def requests_since(sim: Simulator, before: set[str]) -> dict[str, list]:
    out: dict[str, list] = {}
    with sim.lock:
        for uid, req in sim.requests.items():
            if uid not in before:
                out.setdefault(req.table, []).append(req)
    return out


def check_real_rows(url: str, stream) -> int:
    """The store holds the real files' rows (read from ``tests/data``) over its range, each
    variable equal, its ``seconds since`` variables moved by the stream's whole seconds."""
    paths = [
        next(REAL_DATA.rglob(src.path.name), None)
        or pytest.fail(f"{src.path.name} not copied")
        for src in stream.sources
    ]
    sources = open_sources(paths)
    with xr.open_zarr(url, consolidated=True, decode_times=False) as ds:
        end = float(ds["time"].values[-1])
        chunks = chunks_in_range(sources, list(stream.shifts), stream.period, stream.t0, end)
        problems = compare(ds, sources, chunks, store_drops(paths))
    assert problems == [], f"{url}: {problems}"
    return len({v for src in sources for v in src.variables})


def test_two_days_of_demo_streams_real_files_kept_then_a_day_with_no_news(demo_sim: Simulator):
    from data_vent.flows import daily_harvest, run_flow

    sim = demo_sim
    tables = demo_tables()
    assert len(tables) >= 20 and set(tables) == set(sim.streams)
    settings, engine = settings_and_engine()
    root = settings.resolved_storage()

    # -- day 1: the full history of every stream ------------------------------------------
    day1 = run_flow(daily_harvest)
    assert day1["ok"], day1["failed"]
    statuses = {k: o["status"] for k, o in day1["outcomes"].items()}
    assert set(statuses.values()) == {"success"}
    assert set(statuses) == {*tables, *(f"{t}/availability" for t in tables), "catalog"}
    assert day1["observed"]["observed"] == len(tables)
    prev: dict[str, np.ndarray] = {}
    for t in tables:
        s = sim.streams[t]
        expected = s.times(s.t0, sim.now_ntp)
        assert len(expected) > 0
        prev[t] = check_store(f"{root}/{t}", expected)
        check_db(engine, t, prev[t], 1, day1["run_id"])
        check_observation(engine, t, expected)
        check_availability(root, t, len(expected))
        assert sim.data_requests(t) == 1
    check_catalog(root, {t: len(v) for t, v in prev.items()})

    # -- day 2: one more simulated day; only the new range is asked for and appended ------
    before = set(sim.requests)
    sim.reset_counters()
    sim.advance(86400)
    day2 = run_flow(daily_harvest)
    assert day2["ok"], day2["failed"]
    assert len(day2["observed"]["changed"]) == len(tables)
    plan = {row["key"]: row for row in day2["plan"]}
    outcomes = day2["outcomes"]
    reqs = requests_since(sim, before)
    assert set(reqs) == set(tables)
    counters = sim.counter_snapshot()
    assert counters["data_requests"] == dict.fromkeys(tables, 1)
    assert counters["metadata_times"] == dict.fromkeys({refdes(t) for t in tables}, 1)
    rows_now: dict[str, int] = {}
    for t in tables:
        s = sim.streams[t]
        (req,) = reqs[t]
        assert abs(req.begin - prev[t][-1]) < TOL, (t, req.begin, prev[t][-1])
        new = s.times(prev[t][-1], sim.now_ntp)
        new = new[new > prev[t][-1] + TOL]
        assert len(new) > 0
        assert abs(req.end - new[-1]) < TOL
        row = plan[t]
        assert row["action"] == "append", row
        (reason,) = row["reasons"]
        assert reason["code"] == "source_advanced"
        assert reason["values"]["source"] == f"ooi/{t}"
        assert datetime.fromisoformat(reason["values"]["source_end"]) > datetime.fromisoformat(
            reason["values"]["store_end"]
        )
        assert outcomes[t]["status"] == "success"
        assert outcomes[t]["details"]["rows_added"] == len(new)
        times = check_store(f"{root}/{t}", s.times(s.t0, sim.now_ntp))
        assert len(times) == len(prev[t]) + len(new)
        np.testing.assert_array_equal(times[: len(prev[t])], prev[t])
        check_db(engine, t, times, 2, day2["run_id"])
        check_observation(engine, t, times)
        rows_now[t] = len(times)

        # its availability follows it in the same run, after it
        av = f"{t}/availability"
        assert plan[av]["generation"] > row["generation"]
        codes = {r["code"] for r in plan[av]["reasons"]}
        assert "upstream_planned" in codes and codes <= {
            "upstream_planned",
            "upstream_changed",
        }
        up = next(r for r in plan[av]["reasons"] if r["code"] == "upstream_planned")
        assert up["values"]["inputs"] == [t]
        assert outcomes[av]["status"] == "success" and outcomes[av]["rows"] == len(times)
        store_done = materializations(engine, t, "success")[-1]
        av_rec = materializations(engine, av, "success")[-1]
        assert av_rec.run_id == day2["run_id"]
        assert av_rec.started_at >= store_done.finished_at
        assert av_rec.input_versions[t]["data_version"] == store_done.data_version
        check_availability(root, t, len(times))
    real = [t for t in tables if sim.streams[t].kind == "real"]
    assert len(real) >= 5
    for t in real:
        assert check_real_rows(f"{root}/{t}", sim.streams[t]) > 10
    cat = plan["catalog"]
    assert cat["generation"] > max(plan[t]["generation"] for t in tables)
    assert {r["code"] for r in cat["reasons"]} <= {"upstream_planned", "upstream_changed"}
    assert set(
        next(r for r in cat["reasons"] if r["code"] == "upstream_planned")["values"]["inputs"]
    ) == set(tables)
    assert outcomes["catalog"]["status"] == "success"
    check_catalog(root, rows_now)

    # -- day 3: clock not advanced; no data request, nothing planned, nothing done --------
    sim.reset_counters()
    day3 = run_flow(daily_harvest)
    assert day3["ok"]
    assert day3["plan"] == [] and day3["outcomes"] == {}
    assert day3["observed"]["changed"] == []
    assert sim.data_requests() == 0
    assert sim.counter_snapshot() == {
        "toc": {"all": 1},
        "metadata_times": dict.fromkeys({refdes(t) for t in tables}, 1),
    }
    for t in tables:
        assert len(store_times(f"{root}/{t}")) == rows_now[t]
        assert len(materializations(engine, t)) == 2


def test_unready_request_is_resumed_and_a_behind_source_is_not_retried(
    harvest_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from typer.testing import CliRunner

    from data_vent.cli import app
    from data_vent.flows import daily_harvest, run_flow
    from data_vent.run.workspace import Workspace
    from data_vent.state.models import OOIRequest

    cfg = tmp_path / "configs"
    cfg.mkdir()
    tables = demo_tables()[:3]
    for path in sorted(DEMO_CONFIGS.glob("*.yaml"))[:3]:
        shutil.copy(path, cfg / path.name)
    stuck, behind = tables[0], tables[1:]
    wait = 6.0  # the healthy streams must be ready within it on a loaded CI host
    monkeypatch.setenv("DATA_VENT_OOI_REQUEST_WAIT", str(wait))
    # OOI itself is 3 days behind the wall clock (source lag > the 1 day fail policy).
    start = (utcnow() - timedelta(days=3)).replace(microsecond=0)
    sim = start_sim(monkeypatch, cfg, start, tmp_path / "sim")
    try:
        sim.set_fault(stuck, "never_ready")
        settings, engine = settings_and_engine()
        root = settings.resolved_storage()

        # -- run 1: the stuck stream is left waiting; the others succeed --------------------
        day1 = run_flow(daily_harvest)
        out = day1["outcomes"]
        assert out[stuck]["status"] == "waiting", out[stuck]
        assert out[stuck]["seconds"] < wait + 5  # it waited a bounded time, then moved on
        for t in behind:
            assert out[t]["status"] == "success"
            assert out[f"{t}/availability"]["status"] == "success"
        assert out[f"{stuck}/availability"]["status"] == "skipped"
        assert out[f"{stuck}/availability"]["error"] == f"upstream waiting on OOI: {stuck}"
        # waiting is not a failure: the catalog lists the stores that exist, the run is ok
        assert out["catalog"]["status"] == "success", out["catalog"]
        assert day1["ok"], day1["failed"]
        assert not Path(root, stuck).exists()
        with sim.lock:
            (sim_req,) = [r for r in sim.requests.values() if r.table == stuck]
        assert out[stuck]["details"]["request"] == sim_req.uuid
        with Session(engine) as s:
            (row,) = s.exec(select(OOIRequest).where(OOIRequest.asset_key == stuck))
        assert row.status == "pending" and row.request_uuid == sim_req.uuid
        assert sim.data_requests(stuck) == 1

        res = CliRunner().invoke(app, ["status", "--json"])
        assert res.exit_code == 0, res.output
        status = {r["key"]: r for r in json.loads(res.stdout)["assets"]}
        codes = {r["code"] for r in status[stuck]["reasons"]}
        assert "waiting" in codes, status[stuck]
        waiting = next(r for r in status[stuck]["reasons"] if r["code"] == "waiting")
        assert waiting["values"]["request_id"] == sim_req.uuid

        # -- OOI finishes the job; the clock does not move -----------------------------------
        sim.clear_fault(stuck, "never_ready")
        p = Workspace.load(settings).plan()
        item = p.item(stuck)
        assert item is not None and "waiting" in {r.code for r in item.reasons}
        for t in behind:
            assert p.item(t) is None
            assert p.not_planned[t].code == "source_behind", p.not_planned[t]
            assert status[t]["note"] and "behind" in status[t]["note"]

        day2 = run_flow(daily_harvest)
        out = day2["outcomes"]
        for t in behind:  # reported in the run's result too
            assert day2["not_planned"][t]["code"] == "source_behind"
        assert out[stuck]["status"] == "success", out[stuck]
        assert out[stuck]["details"]["request"] == sim_req.uuid
        assert sim.data_requests(stuck) == 1  # resumed, never asked twice
        assert len(sim.requests) == len(tables)
        s = sim.streams[stuck]
        times = check_store(f"{root}/{stuck}", s.times(s.t0, sim.now_ntp))
        check_db(engine, stuck, times, 1, day2["run_id"])
        assert out[f"{stuck}/availability"]["status"] == "success"
        check_availability(root, stuck, len(times))
        with Session(engine) as session:
            (row,) = session.exec(select(OOIRequest).where(OOIRequest.asset_key == stuck))
        assert row.status == "done"
        for t in behind:  # source behind, nothing new: neither planned nor asked again
            assert t not in out
            assert sim.data_requests(t) == 1
            assert len(materializations(engine, t)) == 1
    finally:
        sim.stop()


def test_a_stream_gone_from_the_toc_is_discontinued_then_harvested_again(
    harvest_env,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """Issue 11.8, through the CLI: ``data-vent harvest`` against the simulator on HTTP."""
    from data_vent.cli import app

    def cli(*args: str) -> tuple[int, str]:
        """The CLI in this process, as ``main`` runs it (CliRunner closes the streams that
        Prefect's log handler keeps between runs)."""
        capsys.readouterr()
        code = app(list(args), standalone_mode=False)
        return (code if isinstance(code, int) else 0), capsys.readouterr().out

    cfg = tmp_path / "configs"
    cfg.mkdir()
    tables = demo_tables()[:3]
    for path in sorted(DEMO_CONFIGS.glob("*.yaml"))[:3]:
        shutil.copy(path, cfg / path.name)
    gone, kept = tables[0], tables[1:]
    start = (utcnow() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    sim = start_sim(monkeypatch, cfg, start, tmp_path / "sim")

    def harvest() -> str:
        code, out = cli("harvest")
        assert code == 0, out
        return out

    def status() -> dict[str, dict]:
        code, out = cli("status", "--json")
        assert code == 0, out
        return {r["key"]: r for r in json.loads(out)["assets"]}

    try:
        harvest()
        _, engine = settings_and_engine()
        before = len(materializations(engine, gone))
        assert status()[gone]["freshness"] == "PASS"

        # OOI drops the stream from its table of contents; a day passes
        sim.remove_from_toc(gone)
        sim.advance(86400)
        sim.reset_counters()
        out = harvest()
        assert "discontinued" in out and gone in out
        assert sim.data_requests(gone) == 0
        assert all(sim.data_requests(t) == 1 for t in kept)
        assert refdes(gone) not in sim.counter_snapshot()["metadata_times"]
        row = status()[gone]
        assert row["freshness"] == "DISCONTINUED" and "discontinued" in row["note"]
        assert len(materializations(engine, gone)) == before  # neither tried nor failed
        code, out = cli("assets", "status:discontinued", "--json")
        assert code == 0, out
        assert [r["key"] for r in json.loads(out)] == [gone]

        # and the day after: still reported, still no request, still exit 0
        sim.advance(86400)
        harvest()
        assert sim.data_requests(gone) == 0
        assert len(materializations(engine, gone)) == before

        # OOI lists it again: harvested again, up to OOI's end
        sim.return_to_toc(gone)
        sim.reset_counters()
        harvest()
        assert sim.data_requests(gone) == 1
        s = sim.streams[gone]
        check_store(
            f"{settings_and_engine()[0].resolved_storage()}/{gone}", s.times(s.t0, sim.now_ntp)
        )
        last = materializations(engine, gone, "success")[-1]
        assert last.action == "append"
        assert status()[gone]["freshness"] == "PASS"
    finally:
        sim.stop()

"""The OOI stream asset kind end to end: workspace -> planner -> runner -> store.

Real parts only: the OOI simulator on loopback, harvest config YAMLs in a temp folder, a
SQLite state DB and Zarr stores under the test's DATA_VENT_HOME. Each test drives the same
path the CLI and the daily flow take (``Workspace`` + ``runner.materialize_asset``).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from sqlmodel import Session, col, select

from data_vent.core.timeutil import from_ntp_seconds, to_naive_utc
from data_vent.graph.planner import Plan
from data_vent.run import runner
from data_vent.run.workspace import Workspace
from data_vent.settings import get_settings
from data_vent.simulator import SimRequest, SimStream, Simulator
from data_vent.state.models import Materialization, OOIRequest

CONFIGS = Path(__file__).parent / "data" / "configs"
CTD = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
PHSEN = "CE04OSPS-SF01B-2B-PHSENA108-streamed-phsen_data_record"
SRC = f"ooi/{CTD}"
pytestmark = pytest.mark.slow  # every test harvests through the OOI simulator server

CLOCK = datetime(2024, 1, 1)
DAY = 86400.0


@dataclass
class Harvest:
    """A simulator, a workspace over it, and helpers to run and inspect harvests."""

    sim: Simulator
    home: Path
    config_dir: Path
    ws: Workspace | None = None

    def load(self) -> Workspace:
        self.ws = Workspace.load(get_settings())
        self.ws.sync()
        return self.ws

    def observe(self) -> None:
        assert self.ws is not None
        self.ws.observe()

    def plan(self, selection: str | None = CTD, **kw) -> Plan:
        assert self.ws is not None
        return self.ws.plan(selection, **kw)

    def run(self, plan: Plan | None = None) -> dict[str, runner.AssetOutcome]:
        """Materialize every item of ``plan`` (default: the CTD store), in plan order."""
        ws = self.ws
        assert ws is not None
        plan = plan if plan is not None else self.plan()
        run_id = runner.new_run_id()
        return {
            item.key: runner.materialize_asset(item, ws.specs, ws.settings, ws.engine, run_id)
            for item in plan.items
        }

    def harvest(self, **plan_kw) -> runner.AssetOutcome:
        """Observe, plan the CTD store and materialize it."""
        self.observe()
        plan = self.plan(**plan_kw)
        assert CTD in plan.keys, plan
        return self.run(plan)[CTD]

    def harvest_as(self, action: str, reason: str) -> runner.AssetOutcome:
        """Observe, check that the CTD store is planned as ``action`` for ``reason`` (what
        OOI changed since the last harvest), and materialize it, which must succeed."""
        self.observe()
        plan = self.plan()
        item = plan.item(CTD)
        assert item is not None and item.action == action
        assert reason in [r.code for r in item.reasons]
        out = self.run(plan)[CTD]
        assert out.status == "success", out.error
        return out

    def fail_a_day_later(self, fault: str) -> tuple[dict[str, str], runner.AssetOutcome]:
        """Harvest, move a day on and run again with OOI showing ``fault`` once observed (only
        the data request sees it): the store as it was before that run, and the run's failed
        outcome, whose error is one line."""
        assert self.harvest().status == "success"
        before = self.store_snapshot()
        self.sim.advance(DAY)
        self.observe()
        self.sim.set_fault(CTD, fault)
        out = self.run()[CTD]
        assert out.status == "failed" and "\n" not in out.error
        return before, out

    # ---------------------------------------------------------------- inspection
    @property
    def stream(self) -> SimStream:
        return self.sim.streams[CTD]

    def source_times(self) -> np.ndarray:
        return self.stream.times(self.stream.t0, self.sim.now_ntp)

    @property
    def store_path(self) -> Path:
        return self.home / "stores" / CTD

    def store_group(self) -> zarr.Group:
        return zarr.open_consolidated(str(self.store_path), mode="r", zarr_format=2)

    def store_times(self) -> np.ndarray:
        return np.asarray(self.store_group()["time"][...])

    def store_snapshot(self) -> dict[str, str]:
        """Every file of the store with its content hash ({} when absent)."""
        if not self.store_path.exists():
            return {}
        return {
            str(p.relative_to(self.store_path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.store_path.rglob("*"))
            if p.is_file()
        }

    def materializations(self, key: str = CTD) -> list[Materialization]:
        assert self.ws is not None
        with Session(self.ws.engine) as s:
            stmt = (
                select(Materialization)
                .where(Materialization.asset_key == key)
                .order_by(col(Materialization.id))
            )
            return list(s.exec(stmt))

    def requests(self, key: str = CTD) -> list[OOIRequest]:
        assert self.ws is not None
        with Session(self.ws.engine) as s:
            stmt = select(OOIRequest).where(OOIRequest.asset_key == key)
            return list(s.exec(stmt.order_by(col(OOIRequest.id))))

    def sim_requests(self) -> list[SimRequest]:
        with self.sim.lock:
            return sorted(
                (r for r in self.sim.requests.values() if r.table == CTD),
                key=lambda r: r.created,
            )


@contextmanager
def _harvesting(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tables: list[str],
    **sim_options: Any,
) -> Iterator[Harvest]:
    """``tables``' configs on a simulator (with ``sim_options``), the environment pointed at
    it, and a loaded ``Harvest`` (credentials set beforehand are the ones it uses)."""
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    for table in tables:
        shutil.copy(CONFIGS / f"{table}.yaml", config_dir)
    with Simulator(config_dir, ready_delay=0.2, start=CLOCK, **sim_options) as sim:
        _harvest_env(monkeypatch, sim.base_url, config_dir)
        h = Harvest(sim, home, config_dir)
        h.load()
        yield h


@pytest.fixture
def harvest(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harvest]:
    with _harvesting(isolated_env, tmp_path, monkeypatch, [CTD]) as h:
        yield h


def _harvest_env(monkeypatch: pytest.MonkeyPatch, url: str, config_dir: Path) -> None:
    monkeypatch.setenv("DATA_VENT_OOI_URL", url)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", "1048576")
    monkeypatch.setenv("DATA_VENT_OOI_POLL_INTERVAL", "0.1")
    monkeypatch.setenv("DATA_VENT_OOI_RETRIES", "1")
    monkeypatch.setenv("DATA_VENT_OOI_BACKOFF", "0.01")


def _rules(outcome: runner.AssetOutcome, variable: str | None = None) -> dict[str, int]:
    """Rule -> total count recorded in the materialization details (of one variable)."""
    out: dict[str, int] = {}
    for r in outcome.details.get("rules_applied", []):
        if variable is None or r.get("variable") == variable:
            out[r["rule"]] = out.get(r["rule"], 0) + r.get("count", 0)
    return out


def _dt(ntp: float) -> datetime:
    return from_ntp_seconds(float(ntp))


def _assert_store_matches_source(h: Harvest) -> None:
    stored = h.store_times()
    assert np.all(np.diff(stored) > 0), "store time must be strictly increasing"
    np.testing.assert_array_equal(stored, h.source_times())


# ==================================================================== full build, append
def test_full_build_requests_whole_range_and_records_provenance(harvest: Harvest) -> None:
    h = harvest
    h.observe()
    plan = h.plan(None)  # the daily flow: every asset
    item = plan.item(CTD)
    assert item is not None and item.action == "full"
    assert [r.code for r in item.reasons] == ["missing"]
    outcomes = h.run(plan)
    assert {k: o.status for k, o in outcomes.items()} == dict.fromkeys(outcomes, "success")

    times = h.source_times()
    (req,) = h.requests()
    assert (req.range_begin, req.range_end, req.status) == (
        _dt(times[0]),
        _dt(times[-1]),
        "done",
    )
    (sreq,) = h.sim_requests()
    assert (sreq.begin, sreq.end) == (times[0], times[-1])
    assert h.sim.data_requests(CTD) == 1

    _assert_store_matches_source(h)
    out = outcomes[CTD]
    assert out.rows == times.size and out.details["mode"] == "rebuild"
    (mat,) = h.materializations()
    assert mat.status == "success" and mat.action == "full"
    assert mat.rows == times.size
    assert (mat.time_min, mat.time_max) == (_dt(times[0]), _dt(times[-1]))
    src = mat.input_versions[SRC]
    assert src["count"] == times.size
    assert to_naive_utc(datetime.fromisoformat(src["end_time"])) == _dt(times[-1])
    assert mat.data_version
    attrs = h.store_group().attrs
    assert attrs["data_vent_rows"] == times.size
    # nothing left to do afterwards
    assert CTD not in h.plan(None).keys


def test_next_day_appends_exactly_the_new_range(harvest: Harvest) -> None:
    h = harvest
    first = h.harvest()
    assert first.status == "success"
    end_before = h.store_times()[-1]
    rows_before = h.store_times().size

    h.sim.advance(DAY)
    out = h.harvest_as("append", "source_advanced")

    times = h.source_times()
    req = h.requests()[-1]
    assert (req.range_begin, req.range_end) == (_dt(end_before), _dt(times[-1]))
    sreq = h.sim_requests()[-1]
    assert (sreq.begin, sreq.end) == (end_before, times[-1])
    assert h.sim.data_requests(CTD) == 2

    _assert_store_matches_source(h)
    new = int(np.count_nonzero(times > end_before))
    assert out.details["mode"] == "append"
    assert out.details["rows_added"] == new == times.size - rows_before
    # the boundary sample came back from OOI and was dropped as identical
    assert _rules(out).get("overlap_identical_dropped") == 1
    mat = h.materializations()[-1]
    assert (mat.rows, mat.time_max) == (times.size, _dt(times[-1]))


def test_refresh_rebuilds_the_whole_stream_beside_the_live_store(harvest: Harvest) -> None:
    h = harvest
    assert h.harvest().status == "success"
    version_before = h.store_group().attrs["data_vent_version"]
    h.sim.advance(DAY / 2)

    out = h.harvest(refresh=True)
    assert out.status == "success", out.error
    assert out.action == "rebuild" and out.details["mode"] == "rebuild"
    times = h.source_times()
    req = h.requests()[-1]
    assert (req.range_begin, req.range_end) == (_dt(times[0]), _dt(times[-1]))
    assert h.sim_requests()[-1].begin == times[0]
    _assert_store_matches_source(h)
    assert out.details["rows_added"] == times.size
    version_after = h.store_group().attrs["data_vent_version"]
    assert int(version_after.split("-")[0]) == int(version_before.split("-")[0]) + 1
    # built beside (a sibling staging copy), then published: nothing of it is left over
    siblings = [p.name for p in h.store_path.parent.iterdir()]
    assert siblings == [CTD]
    assert not (h.store_path / ".data-vent-journal.json").exists()


# ==================================================================== reuse (issue 11.9)
def test_refresh_reuses_the_finished_request_in_the_account_folder(harvest: Harvest) -> None:
    """A full-history rebuild takes its files from the account's THREDDS folder when a
    finished request of the stream there covers the range: OOI is not asked again."""
    h = harvest
    assert h.harvest().status == "success"
    (first,) = h.sim_requests()
    h.sim.reset_counters()

    out = h.harvest(refresh=True)
    assert out.status == "success", out.error
    assert out.action == "rebuild" and out.details["mode"] == "rebuild"
    assert h.sim.data_requests(CTD) == 0  # zero new data requests
    reused = out.details["reused_request"]
    assert reused["folder"] == first.folder
    assert reused["catalog"].endswith(f"/{first.user}/{first.folder}/catalog.xml")
    assert out.details["request"] is None
    counters = h.sim.counter_snapshot()
    assert counters["account_catalogs"] == {first.user: 1}
    assert counters["downloads"][CTD] >= 1
    old, new = h.requests()
    assert old.request_uuid == first.uuid and new.request_uuid is None
    assert (new.status, new.range_begin, new.range_end) == (
        "done",
        old.range_begin,
        old.range_end,
    )
    _assert_store_matches_source(h)
    assert h.materializations()[-1].details["reused_request"] == reused


def test_full_build_with_a_lost_state_db_reuses_the_request(
    harvest: Harvest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new worker (empty DB, no store) told where the account's folder is builds from
    the finished request there."""
    from data_vent.ooi.reuse import account_url

    h = harvest
    assert h.harvest().status == "success"
    account = account_url(h.requests()[0].output_url)
    assert account is not None and account.endswith("/catalog.xml")
    home = tmp_path / "home2"
    home.mkdir()
    monkeypatch.setenv("DATA_VENT_HOME", str(home))
    monkeypatch.setenv("DATA_VENT_OOI_RESULTS_URL", account)
    h.home = home
    h.load()
    h.sim.reset_counters()

    out = h.harvest()
    assert out.status == "success", out.error
    assert out.action == "full"
    assert h.sim.data_requests(CTD) == 0
    assert out.details["reused_request"]["folder"] == h.sim_requests()[0].folder
    _assert_store_matches_source(h)


def test_a_request_that_no_longer_covers_the_range_is_not_reused(harvest: Harvest) -> None:
    h = harvest
    assert h.harvest().status == "success"
    h.sim.advance(DAY / 4)  # the old request ends before the source's new end
    out = h.harvest(refresh=True)
    assert out.status == "success", out.error
    assert "reused_request" not in out.details
    assert h.sim.data_requests(CTD) == 2


# ==================================================================== waiting
def test_waiting_request_is_resumed_not_asked_again(
    harvest: Harvest, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harvest
    monkeypatch.setenv("DATA_VENT_OOI_REQUEST_WAIT", "0.2")
    h.load()
    h.sim.set_fault(CTD, "never_ready")

    first = h.harvest()
    assert first.status == "waiting", first.error
    (req,) = h.requests()
    assert req.status == "pending" and first.details["request"] == req.request_uuid
    assert h.materializations()[-1].status == "waiting"
    assert not h.store_path.exists()

    second = h.harvest()
    assert second.status == "waiting"
    assert second.details["request"] == req.request_uuid
    assert [r.id for r in h.requests()] == [req.id]
    assert h.sim.data_requests(CTD) == 1

    # OOI finishes the job (the simulator's request becomes ready) while the source
    # moved on: the run harvests the requested range only ...
    requested = h.source_times()
    h.sim.advance(DAY / 4)
    h.sim.clear_fault(CTD, "never_ready")
    with h.sim.lock:
        h.sim.requests[req.request_uuid].ready_at = time.monotonic()
    third = h.harvest()
    assert third.status == "success", third.error
    assert third.details["request"] == req.request_uuid
    assert h.sim.data_requests(CTD) == 1
    assert [r.status for r in h.requests()] == ["done"]
    np.testing.assert_array_equal(h.store_times(), requested)
    # ... and records what it harvested, so the rest is still planned as an append
    item = h.plan().item(CTD)
    assert item is not None and item.action == "append"
    assert "source_advanced" in [r.code for r in item.reasons]
    assert h.run()[CTD].status == "success"
    _assert_store_matches_source(h)
    assert h.sim.data_requests(CTD) == 2


def test_refresh_supersedes_a_pending_append_request(
    harvest: Harvest, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harvest
    assert h.harvest().status == "success"
    h.sim.advance(DAY)
    monkeypatch.setenv("DATA_VENT_OOI_REQUEST_WAIT", "0.2")
    h.load()
    h.sim.set_fault(CTD, "never_ready")
    assert h.harvest().status == "waiting"
    append_req = h.requests()[-1]
    assert append_req.range_begin > _dt(h.source_times()[0])

    h.sim.clear_fault(CTD, "never_ready")
    monkeypatch.setenv("DATA_VENT_OOI_REQUEST_WAIT", "30")
    h.load()
    out = h.harvest(refresh=True)
    assert out.status == "success", out.error
    assert out.details["mode"] == "rebuild"
    first, old, new = h.requests()
    assert first.status == "done"
    assert old.id == append_req.id and old.status == "failed" and "superseded" in old.error
    assert new.range_begin == _dt(h.source_times()[0]) and new.status == "done"
    _assert_store_matches_source(h)


# ==================================================================== faults
def test_http_500_on_first_build_fails_and_writes_nothing(harvest: Harvest) -> None:
    h = harvest
    h.observe()
    h.sim.set_fault(CTD, "http_500")
    out = h.run()[CTD]
    assert out.status == "failed"
    assert "\n" not in out.error and "500" in out.error
    assert h.materializations()[-1].error == out.error
    assert h.store_snapshot() == {}
    assert h.requests() == []


def test_http_500_on_append_leaves_the_store_unchanged(harvest: Harvest) -> None:
    h = harvest
    before, out = h.fail_a_day_later("http_500")
    assert "500" in out.error
    assert h.store_snapshot() == before
    # the next run retries and catches up
    h.sim.clear_fault(CTD)
    plan = h.plan()
    assert {r.code for r in plan.item(CTD).reasons} >= {"source_advanced", "last_failed"}
    assert h.run(plan)[CTD].status == "success"
    _assert_store_matches_source(h)


def test_truncated_download_fails_and_leaves_the_store_unchanged(harvest: Harvest) -> None:
    h = harvest
    assert h.harvest().status == "success"
    before = h.store_snapshot()
    h.sim.advance(DAY)
    h.sim.set_fault(CTD, "truncated")
    out = h.harvest()
    assert out.status == "failed" and "\n" not in out.error
    assert "truncated" in out.error
    assert h.store_snapshot() == before
    assert list((h.home / "downloads").iterdir()) == []
    # the ready request is resumed (not asked again) once downloads work
    h.sim.clear_fault(CTD)
    again = h.harvest()
    assert again.status == "success", again.error
    assert h.sim.data_requests(CTD) == 2
    _assert_store_matches_source(h)


@pytest.mark.parametrize(
    ("fault", "rule"),
    [("duplicate_times", "duplicate_in_file_dropped"), ("out_of_order", "sorted_within_file")],
)
def test_bad_times_are_fixed_and_the_rule_recorded(
    harvest: Harvest, fault: str, rule: str
) -> None:
    h = harvest
    h.sim.set_fault(CTD, fault)
    out = h.harvest()
    assert out.status == "success", out.error
    _assert_store_matches_source(h)
    assert _rules(out).get(rule, 0) > 0
    assert rule in {r["rule"] for r in h.materializations()[-1].details["rules_applied"]}


def test_new_variable_is_added_with_fill_for_earlier_rows(harvest: Harvest) -> None:
    h = harvest
    assert h.harvest().status == "success"
    rows_before = h.store_times().size
    assert "sea_water_density" not in h.store_group()
    h.sim.set_fault(CTD, "new_variable", after=h.sim.now.isoformat())
    h.sim.advance(DAY)
    out = h.harvest()
    assert out.status == "success", out.error
    _assert_store_matches_source(h)
    arr = h.store_group()["sea_water_density"]
    assert arr.shape[0] == h.source_times().size
    # rows stored before: fill, except the boundary row OOI sent again, which now has
    # the new variable's value (the new array takes it instead of comparing it)
    old, new = arr[: rows_before - 1], arr[rows_before - 1 :]
    fill = arr.fill_value
    assert np.all(np.isnan(old)) if np.isnan(fill) else np.all(old == fill)
    assert np.all(np.isfinite(new)) and not np.any(new == fill)
    rules = _rules(out, "sea_water_density")
    assert "new_variable" in rules
    assert rules.get("new_variable_filled") == rows_before
    assert rules.get("new_variable_backfilled") == 1
    assert _rules(out, "time").get("overlap_identical_dropped") == 1


def test_discontinued_stream_fails_with_a_clear_message(harvest: Harvest) -> None:
    h = harvest
    before, out = h.fail_a_day_later("discontinued")
    assert "discontinued" in out.error.lower() and CTD in out.error
    assert "harvest config" in out.error and "not found in OOI Database" in out.error
    assert h.store_snapshot() == before


def test_reprocessed_source_is_rebuilt(harvest: Harvest) -> None:
    h = harvest
    assert h.harvest().status == "success"
    rows_before = h.store_times().size
    h.sim.reprocess(CTD)
    out = h.harvest_as("rebuild", "source_reprocessed")
    assert out.details["mode"] == "rebuild"
    times = h.source_times()
    assert times.size > rows_before
    req = h.requests()[-1]
    assert req.range_begin == _dt(times[0])
    _assert_store_matches_source(h)
    assert CTD not in h.plan().keys
    # the first request covers the range, but its rows are what OOI reprocessed: asked again
    assert "reused_request" not in out.details
    assert h.sim.data_requests(CTD) == 2


# ==================================================================== secrets
SECRET_USER = "alice-secret-user"
SECRET_TOKEN = "tok-SECRET-123"


def test_secrets_never_reach_db_logs_or_errors(
    isolated_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OOI_USERNAME", SECRET_USER)
    monkeypatch.setenv("OOI_TOKEN", SECRET_TOKEN)
    tables = [CTD, PHSEN]
    with _harvesting(isolated_env, tmp_path, monkeypatch, tables, require_auth=True) as h:
        sim = h.sim
        h.observe()
        sim.set_fault(CTD, "http_500")
        sim.set_fault(PHSEN, "discontinued")
        outcomes = h.run(h.plan(f"{CTD} or {PHSEN}"))
        assert {outcomes[CTD].status, outcomes[PHSEN].status} == {"failed"}
        # the credentials were used (the estimate that precedes a request got the 500):
        # the simulator requires them
        assert sim.counter_snapshot()["estimates"][CTD] >= 1
        errors = [o.error or "" for o in outcomes.values()]
        errors += [m.error or "" for k in (CTD, PHSEN) for m in h.materializations(k)]
        h.ws.engine.dispose()

    db_files = sorted(isolated_env.glob("state.db*"))
    assert db_files
    for secret in (SECRET_USER, SECRET_TOKEN):
        assert all(secret not in e for e in errors)
        for f in db_files:
            assert secret.encode() not in f.read_bytes(), f
        assert secret not in caplog.text
        for rec in caplog.records:
            assert secret not in rec.getMessage()


def test_user_name_not_stored_after_a_successful_harvest(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OOI_USERNAME", SECRET_USER)
    monkeypatch.setenv("OOI_TOKEN", SECRET_TOKEN)
    with _harvesting(isolated_env, tmp_path, monkeypatch, [CTD], require_auth=True) as h:
        assert h.harvest().status == "success"
        h.ws.engine.dispose()
    for f in isolated_env.glob("state.db*"):
        assert SECRET_TOKEN.encode() not in f.read_bytes()
        assert SECRET_USER.encode() not in f.read_bytes()

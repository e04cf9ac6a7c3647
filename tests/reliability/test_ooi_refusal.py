"""Issue 8, defect 4: bad credentials never look green.

OOI answering 401/403 to every call made ``harvest`` exit 0 with "Nothing to do: every
selected asset is fresh." Now: exit 2 with one line naming OOI_USERNAME/OOI_TOKEN; a 429 is
retried honouring Retry-After, then exit 1; and a run whose observations failed never
reports the assets as fresh: ``status`` shows them UNKNOWN with the error, from the DB.
Real parts: the OOI simulator on loopback, harvests in their own process on the session's
Prefect server, the state DB on SQLite.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from data_vent.core.errors import OOIUnavailable
from data_vent.core.timeutil import to_naive_utc
from data_vent.ooi.client import OOIClient
from data_vent.run import runner
from data_vent.run.workspace import Workspace
from data_vent.settings import Settings, get_settings
from tests.conftest_ooi import Simulator
from tests.processes import free_port
from tests.reliability.harness import run_main, run_process

pytestmark = pytest.mark.slow  # the OOI simulator, Prefect, CLI subprocesses

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
CTD = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
PHSEN = "CE04OSPS-SF01B-2B-PHSENA108-streamed-phsen_data_record"
CLOCK = datetime(2024, 1, 1)
TOKEN = "tok-SECRET-0401"


@dataclass
class Site:
    sim: Simulator
    env: dict[str, str]
    home: Path


@pytest.fixture
def site(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """Two instruments harvested once (in this process, no Prefect): both stores fresh."""
    cfg = tmp_path / "configs"
    cfg.mkdir()
    for table in (CTD, PHSEN):
        shutil.copy(CONFIGS / f"{table}.yaml", cfg)
    with Simulator(cfg, ready_delay=0.2, start=CLOCK) as sim:
        env = {
            "DATA_VENT_HOME": str(isolated_env),
            "DATA_VENT_CONFIG_DIR": str(cfg),
            "DATA_VENT_OOI_URL": sim.base_url,
            "OOI_USERNAME": "sim-user",
            "OOI_TOKEN": TOKEN,
            "DATA_VENT_OOI_RETRIES": "1",
            "DATA_VENT_OOI_BACKOFF": "0.01",
            "DATA_VENT_OOI_POLL_INTERVAL": "0.1",
            "DATA_VENT_CHUNK_TARGET_BYTES": "1048576",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        ws = Workspace.load(get_settings())
        ws.sync()
        ws.observe()
        outcomes = ws.execute(ws.plan(), runner.new_run_id())
        assert all(o.status == "success" for o in outcomes.values()), outcomes
        yield Site(sim, env, isolated_env)


def status_rows(site: Site, capfd, monkeypatch) -> dict[str, dict]:
    res = run_main(["status", "--json"], site.env, capfd, monkeypatch)
    assert res.code == 0, res.err
    return {r["key"]: r for r in json.loads(res.out)["assets"]}


def test_a_fresh_site_is_pass(site: Site, capfd, monkeypatch):
    """The control: before any fault, both stores are PASS."""
    rows = status_rows(site, capfd, monkeypatch)
    assert rows[CTD]["freshness"] == rows[PHSEN]["freshness"] == "PASS"


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("code", [401, 403])
def test_refused_credentials_exit_2_and_status_unknown(
    site: Site, code: int, capfd, monkeypatch
):
    site.sim.advance(3600)  # OOI has news: a harvest that saw it would append
    for table in (CTD, PHSEN):
        site.sim.set_fault(table, "http_error", status=code)

    res = run_process(["harvest"], site.env)

    assert res.code == 2, res.err
    line = res.one_error_line()
    assert f"({code})" in line and "OOI_USERNAME" in line and "OOI_TOKEN" in line
    assert "fresh" not in res.out.lower() and "Nothing to do" not in res.out
    assert TOKEN not in res.out + res.err
    rows = status_rows(site, capfd, monkeypatch)
    for table in (CTD, PHSEN):
        assert rows[table]["freshness"] == "UNKNOWN"
        assert f"({code})" in rows[table]["observe_error"]
        assert rows[table]["note"] != "fresh"
    plain = run_main(["status"], site.env, capfd, monkeypatch)
    assert "UNKNOWN" in plain.out and "PASS" not in plain.out
    picked = run_main(["assets", "status:unknown", "--json"], site.env, capfd, monkeypatch)
    assert picked.code == 0, picked.err
    assert {r["key"] for r in json.loads(picked.out)} == {CTD, PHSEN}


@pytest.mark.usefixtures("prefect_server")
def test_one_instrument_down_the_other_harvested(site: Site, capfd, monkeypatch):
    """One instrument answering 500: the other is harvested, the run exits 1 with one line
    for the source it could not see, and that store is UNKNOWN (not PASS) until seen."""
    site.sim.advance(3600)
    site.sim.set_fault(PHSEN, "http_500")

    res = run_process(["harvest"], site.env)

    assert res.code == 1, res.err
    assert "Traceback" not in res.err
    lines = res.err_lines
    assert len(lines) == 1 and "could not observe OOI" in lines[0] and "500" in lines[0], lines
    assert "PHSENA108" in lines[0]
    rows = status_rows(site, capfd, monkeypatch)
    assert rows[CTD]["freshness"] == "PASS"
    assert rows[PHSEN]["freshness"] == "UNKNOWN" and "500" in rows[PHSEN]["observe_error"]

    site.sim.clear_fault(PHSEN)  # seen again: the error is gone
    again = run_main(["observe"], site.env, capfd, monkeypatch)
    assert again.code == 0, again.err
    assert status_rows(site, capfd, monkeypatch)[PHSEN]["observe_error"] is None


@pytest.mark.usefixtures("prefect_server")
def test_ooi_unreachable_inside_harvest_exit_1_one_line(site: Site):
    env = {**site.env, "DATA_VENT_OOI_URL": f"http://127.0.0.1:{free_port()}/api/m2m"}
    res = run_process(["harvest"], env)
    assert res.code == 1, res.err
    line = res.one_error_line()
    assert "unreachable" in line and "DATA_VENT_OOI_URL" in line


# -- 429: retried, honouring Retry-After (urllib3 Retry), then a one-line failure ---------


def _client(sim: Simulator, **kw) -> OOIClient:
    values = dict(
        ooi_url=sim.base_url,
        ooi_username="sim-user",
        ooi_token=TOKEN,
        ooi_retries=2,
        ooi_backoff=0.01,
        ooi_connect_timeout=2.0,
        ooi_read_timeout=5.0,
    )
    values.update(kw)
    return OOIClient(Settings(**values))


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    cfg = tmp_path / "configs"
    cfg.mkdir()
    shutil.copy(CONFIGS / f"{CTD}.yaml", cfg)
    with Simulator(cfg, ready_delay=0.2, start=CLOCK) as s:
        yield s


def test_429_waits_for_retry_after_then_succeeds(sim: Simulator):
    sim.set_fault(CTD, "http_error", status=429, retry_after=1, times=1)
    with _client(sim) as client:
        t0 = time.monotonic()
        times = client.metadata_times("CE04OSPS-SF01B-2A-CTDPFA107")
        waited = time.monotonic() - t0
    assert [t.stream for t in times] == ["ctdpf_sbe43_sample"]
    assert waited >= 1.0  # backoff alone (0.01 s) would not wait


def test_429_every_time_is_unavailable_after_the_retries(sim: Simulator):
    sim.set_fault(CTD, "http_error", status=429, retry_after=1)
    with _client(sim, ooi_retries=1) as client, pytest.raises(OOIUnavailable) as err:
        t0 = time.monotonic()
        client.metadata_times("CE04OSPS-SF01B-2A-CTDPFA107")
    assert time.monotonic() - t0 >= 1.0
    assert "429" in str(err.value) and err.value.exit_code == 1
    assert sim.counter_snapshot()["metadata_times"]["CE04OSPS-SF01B-2A-CTDPFA107"] == 2


def test_retry_after_is_capped(sim: Simulator):
    """A server asking for an hour does not stall the worker for an hour."""
    sim.set_fault(CTD, "http_error", status=429, retry_after=3600, times=1)
    with _client(sim, ooi_retry_after_max=0.2) as client:
        t0 = time.monotonic()
        client.metadata_times("CE04OSPS-SF01B-2A-CTDPFA107")
    assert time.monotonic() - t0 < 5


def test_a_data_request_refused_with_429_is_asked_again_once(sim: Simulator):
    """429 says the request was not processed: retrying a (non-idempotent) data request is
    safe, and OOI ends up with exactly one request."""
    sim.set_fault(CTD, "http_error", status=429, retry_after=0, times=1)
    with _client(sim) as client:
        end = to_naive_utc(sim.now)
        answer = client.request_data(CTD, datetime(2023, 12, 1), end)
    assert answer.request_uuid and len(sim.requests) == 1

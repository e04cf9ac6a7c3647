"""OOI requests as state: start, resume after a killed run, bounded wait, expiry, failure."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from data_vent.core.errors import OOINoData
from data_vent.ooi.client import OOIClient
from data_vent.ooi.requests_state import (
    check_request,
    ensure_request,
    mark_done,
    outstanding_requests,
    request_files,
    wait_until_ready,
)
from data_vent.simulator import Simulator
from data_vent.state.models import OOIRequest
from tests.conftest_ooi import CLOCK, CTD, ooi_settings, sim_streams

pytest_plugins = ["tests.conftest_ooi"]

BEGIN, END = datetime(2023, 12, 1), datetime(2024, 1, 1)


def rows(engine) -> list[OOIRequest]:
    with Session(engine) as s:
        return list(s.exec(select(OOIRequest)))


def test_request_is_made_once_and_reused(engine, client: OOIClient, sim: Simulator) -> None:
    req = ensure_request(engine, client, CTD, BEGIN, END, run_id="run-1")
    assert (
        req.status == "pending" and req.request_uuid and req.status_url.endswith("status.txt")
    )
    again = ensure_request(engine, client, CTD, BEGIN, END, run_id="run-2")
    assert again.id == req.id and again.request_uuid == req.request_uuid
    assert sim.data_requests(CTD) == 1
    other = ensure_request(engine, client, CTD, BEGIN, END + timedelta(days=1), run_id="run-2")
    assert other.id != req.id and sim.data_requests(CTD) == 2
    assert [r.id for r in outstanding_requests(engine, CTD)] == [req.id, other.id]


def test_wait_ready_lists_only_own_files_then_done(
    engine, client: OOIClient, sim: Simulator, tmp_path: Path
) -> None:
    req = ensure_request(engine, client, CTD, BEGIN, END, run_id="r")
    req = wait_until_ready(engine, client, req, max_wait=10, poll=0.05)
    assert req.status == "ready"
    data = request_files(req)
    assert [f.deployment for f in data] == [1, 2] and all(f.table == CTD for f in data)
    assert len(request_files(req, "provenance")) == 2
    assert not any("DEPEND000" in f["name"] for f in req.files)
    path = client.download(data[0], tmp_path / "dl")
    assert path.stat().st_size == data[0].size
    # a ready request is reused, not asked again
    assert ensure_request(engine, client, CTD, BEGIN, END, run_id="r2").id == req.id
    done = mark_done(engine, req)
    assert done.status == "done"
    fresh = ensure_request(engine, client, CTD, BEGIN, END, run_id="r3")
    assert fresh.id != req.id and sim.data_requests(CTD) == 2


def test_bounded_wait_returns_pending(engine, client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "never_ready")
    req = ensure_request(engine, client, CTD, BEGIN, END, run_id="r")
    out = wait_until_ready(engine, client, req, max_wait=0.3, poll=0.05)
    assert out.status == "pending" and out.id == req.id
    assert sim.counter_snapshot()["status"][CTD] >= 2


def test_failed_request(engine, client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "request_failed")
    req = ensure_request(engine, client, CTD, BEGIN, END, run_id="r")
    out = wait_until_ready(engine, client, req, max_wait=10, poll=0.05)
    assert out.status == "failed" and "failed" in out.error.lower()
    assert ensure_request(engine, client, CTD, BEGIN, END, run_id="r2").id != req.id


def test_expired_request_is_replaced(engine, client: OOIClient, sim: Simulator) -> None:
    req = ensure_request(engine, client, CTD, BEGIN, END, run_id="r", expiry=timedelta(0))
    assert check_request(engine, client, req).status == "expired"
    new = ensure_request(engine, client, CTD, BEGIN, END, run_id="r2")
    assert new.id != req.id and sim.data_requests(CTD) == 2


def test_no_data_raises_and_stores_nothing(engine, client: OOIClient) -> None:
    with pytest.raises(OOINoData):
        ensure_request(engine, client, CTD, datetime(2020, 1, 1), datetime(2020, 2, 1), "r")
    assert rows(engine) == []


CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from data_vent.ooi.client import OOIClient
    from data_vent.ooi.requests_state import ensure_request, wait_until_ready
    from data_vent.settings import Settings
    from data_vent.state.db import init_db, make_engine

    engine = make_engine(sys.argv[1])
    init_db(engine)
    client = OOIClient(Settings(ooi_url=sys.argv[2], ooi_username="u", ooi_token="t",
                                ooi_retries=0))
    req = ensure_request(engine, client, sys.argv[3], datetime(2023, 12, 1),
                         datetime(2024, 1, 1), run_id="killed-run")
    print(req.id, req.request_uuid, flush=True)
    wait_until_ready(engine, client, req, max_wait=120, poll=0.05)
    print("not killed", flush=True)
    """
)


@pytest.mark.slow  # a run in a subprocess
def test_killed_run_is_resumed_by_the_next_run(engine, tmp_path: Path) -> None:
    url = str(engine.url)
    with Simulator(sim_streams(), ready_delay=3.0, start=CLOCK) as sim:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, sim.base_url, CTD],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        try:
            line = child.stdout.readline()
            child.kill()
        finally:
            child.wait(timeout=10)
        assert line, child.stderr.read()
        req_id, uuid = line.split()
        [row] = rows(engine)
        assert row.status == "pending" and row.run_id == "killed-run"
        assert sim.request_state(sim.requests[uuid]) == "pending"  # killed before readiness
        with OOIClient(ooi_settings(sim.base_url)) as client:
            resumed = ensure_request(engine, client, CTD, BEGIN, END, run_id="next-run")
            assert (resumed.id, resumed.request_uuid) == (int(req_id), uuid)
            resumed = wait_until_ready(engine, client, resumed, max_wait=15, poll=0.05)
        assert resumed.status == "ready" and request_files(resumed)
        assert sim.data_requests(CTD) == 1

"""Per-asset leases: exclusive, re-entrant, expiring; and across real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from data_vent.core.timeutil import utcnow
from data_vent.state.db import get_engine
from data_vent.state.leases import acquire_lease, lease_holder, release_lease, renew_lease
from data_vent.state.models import Materialization
from data_vent.state.specs import sync_specs
from tests.lease_worker import held_spec
from tests.polling import poll_until

ROOT = Path(__file__).parent.parent
KEY = "streams/held"
M = Materialization.__table__


def test_lease_is_exclusive_and_reentrant(db_url: str) -> None:
    engine = get_engine(db_url)
    assert acquire_lease(engine, KEY, "h1", 60, run_id="r1")
    first = lease_holder(engine, KEY)
    assert first is not None and first[0] == "h1"
    assert not acquire_lease(engine, KEY, "h2", 60)  # second holder refused
    assert lease_holder(engine, KEY) == first  # and changed nothing
    assert acquire_lease(engine, KEY, "h1", 120)  # re-entrant, extends
    again = lease_holder(engine, KEY)
    assert again[0] == "h1" and again[1] > first[1]
    assert acquire_lease(engine, "other/key", "h2", 60)  # per asset
    assert not renew_lease(engine, KEY, "h2", 60)
    assert renew_lease(engine, KEY, "h1", 60)
    release_lease(engine, KEY, "h2")  # not the holder: no effect
    assert lease_holder(engine, KEY)[0] == "h1"
    release_lease(engine, KEY, "h1")
    assert lease_holder(engine, KEY) is None
    assert acquire_lease(engine, KEY, "h2", 60)


def test_expired_lease_is_taken_over(db_url: str) -> None:
    engine = get_engine(db_url)
    assert acquire_lease(engine, KEY, "h1", -1)  # expired at once
    assert acquire_lease(engine, KEY, "h2", 60)
    assert lease_holder(engine, KEY)[0] == "h2"
    assert not renew_lease(engine, KEY, "h1", 60)  # h1 lost it
    # a short lease: refused while live, taken once it expires
    assert acquire_lease(engine, "short", "h1", 0.5)
    assert not acquire_lease(engine, "short", "h2", 60)
    poll_until(
        lambda: acquire_lease(engine, "short", "h2", 60), 10, what="the lease to expire"
    )
    assert lease_holder(engine, "short")[0] == "h2"


def _worker(db_url: str, home: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.lease_worker", "materialize", db_url, KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DATA_VENT_HOME": str(home), **env},
    )


def _started(home: Path) -> Path:
    return home / "started" / KEY.replace("/", "__")


def _materializations(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(M.c.status, M.c.run_id).where(M.c.asset_key == KEY)))


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.mark.slow  # worker subprocesses
def test_two_processes_one_materializes_other_is_locked(
    db_url: str, isolated_env: Path, procs: list
) -> None:
    engine = get_engine(db_url)
    sync_specs(engine, {KEY: held_spec(KEY)})
    home = isolated_env
    a = _worker(db_url, home)
    procs.append(a)
    poll_until(lambda: _started(home).exists() or a.poll() is not None, 30, what="A to start")
    assert a.poll() is None, a.communicate()
    stamp = _started(home).read_text()
    assert lease_holder(engine, KEY) is not None

    b = _worker(db_url, home, DATA_VENT_LEASE_WAIT="0.5")  # gives up waiting: locked
    procs.append(b)
    out_b, err_b = b.communicate(timeout=60)
    assert b.returncode == 0, err_b
    res_b = json.loads(out_b)
    assert res_b["status"] == "locked"
    assert "lease" in res_b["error"]
    assert _started(home).read_text() == stamp  # B never began materializing
    assert a.poll() is None  # A is still holding
    assert _materializations(engine) == []

    (home / "release").write_text("go")
    out_a, err_a = a.communicate(timeout=60)
    assert a.returncode == 0, err_a
    assert json.loads(out_a)["status"] == "success"
    rows = _materializations(engine)
    assert [r.status for r in rows] == ["success"]
    assert (home / "materialized.log").read_text().splitlines() == [f"{KEY} full"]
    assert lease_holder(engine, KEY) is None  # released


@pytest.mark.slow  # worker subprocesses
def test_crashed_holder_lease_expires(db_url: str, isolated_env: Path, procs: list) -> None:
    engine = get_engine(db_url)
    sync_specs(engine, {KEY: held_spec(KEY)})
    home = isolated_env
    a = _worker(db_url, home, DATA_VENT_LEASE_SECONDS="3")
    procs.append(a)
    poll_until(lambda: _started(home).exists() or a.poll() is not None, 30, what="A to start")
    assert a.poll() is None, a.communicate()
    a.send_signal(signal.SIGKILL)
    a.wait(timeout=10)
    assert a.returncode == -signal.SIGKILL

    # immediately after: the dead holder's lease is still live
    holder = lease_holder(engine, KEY)
    assert holder is not None and holder[0] != "rescuer"
    assert holder[1] > utcnow()
    assert not acquire_lease(engine, KEY, "rescuer", 60)
    # once it expires (3 s, no one renews it) another holder takes it over
    start = time.monotonic()
    poll_until(lambda: acquire_lease(engine, KEY, "rescuer", 60), 20, what="expiry")
    assert time.monotonic() - start < 10
    assert lease_holder(engine, KEY)[0] == "rescuer"
    assert utcnow() >= holder[1]
    assert _materializations(engine) == []  # the crash left no attempt behind

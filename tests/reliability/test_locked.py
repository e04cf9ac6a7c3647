"""Defect 3: locked is not failed. An asset another live run holds is that run's work: it is
reported ``locked``, its dependents wait for the holder (bounded) and re-check, or are left
to it; kinds that take partial inputs (the catalog) still run; the run is ok. A holder that
died is noticed within one lease expiry (60 s by default), a live one keeps its lease by
renewing it.

Before the fix a held lease was a failure: dependents were skipped as "upstream failed",
the run ended Failed (exit 1), and a crashed run's lease blocked the asset for 600 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from data_vent.settings import Settings
from tests.kinds import DAY1, three_levels, write_sources
from tests.polling import poll_until
from tests.reliability.helpers import ROOT
from tests.reliability.test_recheck import materialized, workspace

OTHER = "otherhost:4242:1:run-other"


@pytest.fixture
def home(isolated_env: Path, tmp_path: Path, db_url: str, monkeypatch) -> Path:
    three_levels(tmp_path / "configs", catalog=True, hold="a")
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    write_sources(isolated_env, DAY1)
    return isolated_env


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_an_asset_another_run_holds_is_locked_not_failed(home: Path, monkeypatch) -> None:
    from data_vent.flows import daily_harvest, run_flow
    from data_vent.state.leases import acquire_lease

    monkeypatch.setenv("DATA_VENT_LEASE_WAIT", "0.5")
    ws = workspace()
    assert acquire_lease(ws.engine, "a", OTHER, 600, "run-other")  # live, and it stays so
    result = run_flow(daily_harvest)

    out = result["outcomes"]
    assert out["a"]["status"] == "locked"
    assert "run run-other" in out["a"]["error"] and out["a"]["details"]["held_by_run"]
    assert out["b"]["status"] == "success"
    for key in ("ab", "top"):  # left to the run that holds their upstream
        assert out[key]["status"] == "skipped", out[key]
        assert out[key]["details"]["skip"] == "upstream_locked"
        assert out[key]["details"]["held_by_run"] == "run-other"
    assert out["cat"]["status"] == "success"  # the catalog still gets built
    assert result["ok"] and result["failed"] == []  # the run's exit code: 0
    assert ("a", "full") not in materialized(home)


def test_dependents_wait_for_the_holder_then_recheck(home: Path, monkeypatch) -> None:
    from data_vent.run import runner

    monkeypatch.setenv("DATA_VENT_LEASE_WAIT", "60")
    a, b = workspace(), workspace()
    a.observe()
    plan_b = b.plan()
    waits: list[dict] = []

    def listen(event: str, payload) -> None:
        if event == "lease_wait":
            waits.append(payload)

    results: dict[str, object] = {}
    item = a.plan().item("a")  # run A's own plan: a alone
    run_a = threading.Thread(
        target=lambda: results.update(
            a=runner.materialize_asset(item, a.specs, a.settings, a.engine, "run-A")
        )
    )
    run_b = threading.Thread(target=lambda: results.update(b=b.execute(plan_b, "run-B")))
    runner.add_listener(listen)
    try:
        run_a.start()
        poll_until((home / "started" / "a").exists, 30, what="run A to hold a")
        run_b.start()
        poll_until(lambda: any(w["key"] == "a" for w in waits), 30, what="run B to wait")
        assert "run run-A" in waits[0]["holder"]
        (home / "release").write_text("go")
        run_a.join(60)
        run_b.join(60)
    finally:
        runner.remove_listener(listen)
        (home / "release").write_text("go")
    assert results["a"].status == "success"
    out_b = results["b"]
    assert out_b["a"].status == "skipped" and out_b["a"].details["done_by"] == "run-A"
    assert {k: o.status for k, o in out_b.items() if k != "a"} == dict.fromkeys(
        ["b", "ab", "top", "cat"], "success"
    )
    assert not any(runner.is_failure(o) for o in out_b.values())
    assert materialized(home)[("a", "full")] == 1


def test_lease_defaults_notice_a_dead_holder_within_a_minute() -> None:
    s = Settings()
    assert s.lease_seconds <= 60
    assert s.lease_renew_seconds * 3 <= s.lease_seconds


@pytest.mark.slow  # a worker subprocess, killed
def test_a_live_holder_keeps_its_lease_a_killed_one_loses_it(
    db_url: str, isolated_env: Path
) -> None:
    """Scaled down (expiry 2 s, heartbeat 0.4 s): a live holder keeps the asset well past
    its expiry; once killed, another writer takes it within about one expiry."""
    from data_vent.state.db import get_engine
    from data_vent.state.leases import acquire_lease, lease_holder
    from data_vent.state.specs import sync_specs
    from tests.lease_worker import held_spec

    key, expiry = "streams/held", 2.0
    engine = get_engine(db_url)
    sync_specs(engine, {key: held_spec(key)})
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.lease_worker", "materialize", db_url, key],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={
            **os.environ,
            "DATA_VENT_LEASE_SECONDS": str(expiry),
            "DATA_VENT_LEASE_RENEW_SECONDS": "0.4",
        },
    )
    try:
        started = isolated_env / "started" / key.replace("/", "__")
        poll_until(lambda: started.exists() or worker.poll() is not None, 30, what="hold")
        assert worker.poll() is None, worker.communicate()
        # alive: for three expiries no one else gets it (its heartbeat renews it)
        end = time.monotonic() + 3 * expiry
        while time.monotonic() < end:
            assert not acquire_lease(engine, key, "rescuer", 60), "a live lease was taken"
            assert worker.poll() is None
            time.sleep(0.1)  # sampling a period, not waiting for an event
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed = time.monotonic()
        poll_until(lambda: acquire_lease(engine, key, "rescuer", 60), 20, what="takeover")
        assert time.monotonic() - killed < expiry + 2
        assert lease_holder(engine, key)[0] == "rescuer"
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)


def test_a_run_waits_once_for_a_run_that_is_busy(home: Path, monkeypatch) -> None:
    """Another run kept `a` past this run's wait: its `b` is left to it at once, not after a
    second wait (a long rebuild holding many stores would cost one wait per store)."""
    from data_vent.state.leases import acquire_lease

    monkeypatch.setenv("DATA_VENT_LEASE_WAIT", "1.5")
    ws = workspace()
    ws.observe()
    for key in ("a", "b"):
        assert acquire_lease(ws.engine, key, f"{OTHER}:{key}", 600, "run-other")
    from data_vent.run.runner import new_run_id

    out = ws.execute(ws.plan(), new_run_id())  # one asset after another
    assert out["a"].status == out["b"].status == "locked"
    waited = sorted(o.error.split("waited ")[1].split(" s")[0] for o in (out["a"], out["b"]))
    assert waited[0] == "0" and float(waited[1]) >= 1, waited
    assert out["cat"].status == "success"

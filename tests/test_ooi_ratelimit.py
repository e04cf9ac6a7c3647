"""The shared cap on concurrent calls to OOI: slots in the state DB, across processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from data_vent.ooi.ratelimit import CallLimiter
from data_vent.simulator import Simulator
from data_vent.state.db import get_engine
from data_vent.state.slots import acquire_slot, release_slot, renew_slots, slots_in_use
from tests.polling import poll_until

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "data_vent" / "demo_configs"


def test_slots_are_capped_and_expire(db_url: str) -> None:
    engine = get_engine(db_url)
    got = [acquire_slot(engine, "ooi", 2, f"p1#{i}", "p1", 60) for i in range(3)]
    assert sorted(g for g in got if g is not None) == [0, 1] and got[2] is None
    assert slots_in_use(engine, "ooi") == 2
    assert acquire_slot(engine, "other", 2, "p2#0", "p2", 60) is not None  # separate
    release_slot(engine, "ooi", got[0], "p2#0")  # not the holder: no effect
    assert acquire_slot(engine, "ooi", 2, "p2#1", "p2", 60) is None
    release_slot(engine, "ooi", got[0], "p1#0")
    assert acquire_slot(engine, "ooi", 2, "p2#1", "p2", 60) == got[0]
    # a crashed holder's slot (never renewed) is free again once it expires
    assert renew_slots(engine, "ooi", "p1", 0.3) == 1
    poll_until(
        lambda: acquire_slot(engine, "ooi", 2, "p3#0", "p3", 60) is not None,
        10,
        what="the unrenewed slot to expire",
    )


def test_limiters_of_two_processes_share_the_cap(db_url: str) -> None:
    """Two limiters (as two processes would hold), 6 threads each, on one DB: never more
    than the cap inside at once, and the cap is reached."""
    engine = get_engine(db_url)
    limiters = [CallLimiter(engine, cap=3, ttl=30) for _ in range(2)]
    inside, peak, lock = 0, 0, threading.Lock()

    def call(limiter: CallLimiter) -> None:
        nonlocal inside, peak
        for _ in range(4):
            with limiter.slot():
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.02)  # the work a call stands for, not synchronization
                with lock:
                    inside -= 1

    threads = [
        threading.Thread(target=call, args=(lim,)) for lim in limiters for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert peak == 3
    assert slots_in_use(engine, "ooi") == 0


def test_many_takers_of_one_limit_never_deadlock(db_url: str) -> None:
    """16 threads take and free slots of one limit of 4, each on its own connection. On
    PostgreSQL an upsert that meets a live slot still locks its row; without one lock per
    limit, takers trying slots in other orders deadlocked (6 of 16 threads died, measured)."""
    engine = get_engine(db_url)
    errors: list[BaseException] = []
    taken = 0
    lock = threading.Lock()

    def take(i: int) -> None:
        nonlocal taken
        try:
            for j in range(40):
                slot = acquire_slot(engine, "ooi", 4, f"t{i}#{j}", f"t{i}", 60)
                if slot is not None:
                    release_slot(engine, "ooi", slot, f"t{i}#{j}")
                    with lock:
                        taken += 1
        except BaseException as exc:  # a deadlock surfaces as OperationalError
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert taken > 0 and slots_in_use(engine, "ooi") == 0


@pytest.mark.slow
def test_processes_harvesting_one_simulator_never_exceed_the_cap(
    db_url: str, tmp_path: Path
) -> None:
    """Three harvest processes, each with 4 asset threads and 8 observe threads, against
    one simulator whose calls are slow: OOI never sees more than the cap at once."""
    cap = 3
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in sorted(DEMO.glob("*.yaml"))[:3]:
        (configs / path.name).write_text(path.read_text())
    with Simulator(configs, ready_delay=0.2, workdir=tmp_path / "sim") as sim:
        for table in sim.streams:
            sim.set_fault(table, "slow", seconds=0.2)
        env = {
            "DATA_VENT_DB_URL": db_url,
            "DATA_VENT_CONFIG_DIR": str(configs),
            "DATA_VENT_OOI_URL": sim.base_url,
            "DATA_VENT_OOI_MAX_CALLS": str(cap),
            "DATA_VENT_OBSERVE_CONCURRENCY": "8",
            "DATA_VENT_CONCURRENCY": "4",
            "DATA_VENT_OOI_POLL_INTERVAL": "0.05",
            "DATA_VENT_CHUNK_TARGET_BYTES": "1048576",
            "DATA_VENT_STORAGE": str(tmp_path / "stores"),
        }
        get_engine(db_url)  # migrate once, before the processes race for it
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.harvest_worker"],
                cwd=ROOT,
                env={**_base_env(), **env, "DATA_VENT_HOME": str(tmp_path / f"w{i}")},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        results = [p.communicate(timeout=240) for p in procs]
        for p, (_out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err[-2000:]
        assert sim.counter_snapshot()["metadata_times"]  # they did call OOI
        outs = [out for out, _ in results]
        assert 2 <= sim.peak_calls <= cap, (sim.peak_calls, outs)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DATA_VENT_")}


@pytest.mark.slow
def test_observation_goes_out_concurrently_under_the_cap(tmp_path: Path) -> None:
    """The metadata/times calls of a run overlap, up to the cap and never past it."""
    from data_vent.run.workspace import Workspace
    from data_vent.settings import Settings

    configs = tmp_path / "configs"
    configs.mkdir()
    for path in sorted(DEMO.glob("*.yaml"))[:6]:
        (configs / path.name).write_text(path.read_text())
    with Simulator(configs, workdir=tmp_path / "sim") as sim:
        for table in sim.streams:
            sim.set_fault(table, "slow", seconds=0.3)
        ws = Workspace.load(
            Settings(
                home=tmp_path / "home",
                config_dir=configs,
                ooi_url=sim.base_url,
                ooi_max_calls=3,
                observe_concurrency=8,
            )
        )
        ws.sync()
        observed = ws.observe()
        calls = sim.counter_snapshot()["metadata_times"]
    assert observed.total == 6 and len(observed.changed) == 6 and not observed.failures
    assert sum(calls.values()) == 6  # one call per instrument
    assert sim.peak_calls == 3  # overlapping (one after another peaks at 1), never past 3

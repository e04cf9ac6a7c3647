"""Dependency-driven execution: an asset starts when its own inputs are done, not when its
whole generation is; a stream whose OOI request is held blocks only its own dependents."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from data_vent.core.timeutil import utcnow
from data_vent.flows import daily_harvest, run_flow
from data_vent.run import runner
from data_vent.settings import Settings
from data_vent.simulator import Simulator
from data_vent.state.db import get_engine
from data_vent.state.models import Materialization
from tests.polling import poll_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

DEMO = Path(__file__).parent.parent / "data_vent" / "demo_configs"
M = Materialization.__table__


def finished(engine) -> dict[str, Any]:
    """Asset -> finish time of its success."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(M.c.asset_key, M.c.finished_at).where(M.c.status == "success")
        )
        return {r.asset_key: r.finished_at for r in rows}


def test_a_stream_held_by_ooi_blocks_only_its_own_dependents(
    db_url: str, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in sorted(DEMO.glob("*.yaml"))[:3]:
        (configs / path.name).write_text(path.read_text())
    url = db_url
    with Simulator(configs, ready_delay=0.2, workdir=tmp_path / "sim") as sim:
        tables = sorted(sim.streams)
        held = tables[0]
        settings = Settings(
            home=tmp_path / "home",
            db_url=url,
            storage=str(tmp_path / "stores"),
            config_dir=configs,
            ooi_url=sim.base_url,
            ooi_request_wait=240,  # the held stream waits for its request in this run
            ooi_poll_interval=0.1,
            concurrency=4,
            chunk_target_bytes=1 << 20,
        )

        def hold(event: str, _payload: Any) -> None:
            if event == "plan":  # observed already: hold only the data request
                sim.set_fault(held, "never_ready")

        result: dict[str, Any] = {}
        runner.add_listener(hold)
        flow = threading.Thread(
            target=lambda: result.update(run_flow(daily_harvest, settings=settings))
        )
        flow.start()
        try:
            engine = get_engine(url)
            others = {f"{t}/availability" for t in tables if t != held} | {
                t for t in tables if t != held
            }
            poll_until(
                lambda: others <= finished(engine).keys(),
                240,
                every=0.2,
                what="the other streams and their derived assets",
            )
            done_before = finished(engine)
            assert held not in done_before and f"{held}/availability" not in done_before
            released = utcnow()
            sim.clear_fault(held, "never_ready")
            flow.join(240)
        finally:
            runner.remove_listener(hold)
            sim.clear_fault(held)
    assert not flow.is_alive()
    assert result["ok"], result.get("failed")
    after = finished(get_engine(url))
    assert all(after[k] < released for k in others)
    assert after[held] > released and after[f"{held}/availability"] > released
    assert after["catalog"] > released  # the catalog reads every store: it came last

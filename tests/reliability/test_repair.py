"""Defect 8: a rebuild killed in its publish window (``.zmetadata`` deleted, new keys half
moved in) leaves the store unreadable. ``status`` flags it, ``data-vent repair`` finishes
the publish under the store's lease, and every run repairs such stores before it plans.

Before the fix nothing repaired the store until that asset's next write, and the next run
planned it as ``missing``: a full rebuild and a second OOI data request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from data_vent.core.timeutil import utcnow
from data_vent.simulator.synthetic import FileSpec, write_stream_file
from data_vent.store.commit import JOURNAL, ZMETA, read_journal
from data_vent.store.location import Location
from tests.polling import poll_until
from tests.reliability.helpers import (
    CTD,
    ROOT,
    file_times,
    make_parts,
    store_times,
)

pytest_plugins = ["tests.conftest_ooi"]
pytestmark = pytest.mark.slow  # a writer subprocess killed mid-publish

KILL_IN_PUBLISH = """
import os, signal, sys
from data_vent.store.location import Location
moved = []
real_move = Location.move
def move(self, rel, dest):
    moved.append(rel)
    if len(moved) == 3:  # .zmetadata is gone, two keys are in place: kill -9 now
        os.kill(os.getpid(), signal.SIGKILL)
    return real_move(self, rel, dest)
Location.move = move
from data_vent.cli import main
sys.argv = ["data-vent", *sys.argv[1:]]
main()
"""


def kill_rebuild_in_publish(key: str, files: list[Path]) -> None:
    """``data-vent ingest KEY --rebuild FILES`` killed (SIGKILL) in its publish window."""
    proc = subprocess.run(
        [sys.executable, "-c", KILL_IN_PUBLISH, "ingest", key, "--rebuild", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DATA_VENT_LEASE_SECONDS": "2"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def unreadable(url: Path) -> bool:
    try:
        xr.open_zarr(str(url), consolidated=True).close()
    except Exception:
        return True
    return False


def no_live_writer(key: str) -> bool:
    """The killed writer's lease has expired (or it never took one)."""
    from data_vent.run.workspace import Workspace
    from data_vent.state.leases import lease_holder

    held = lease_holder(Workspace.load().engine, key)
    return held is None or held[1] < utcnow()


@pytest.fixture
def ctd_home(isolated_env: Path, stream_config, db_url: str, monkeypatch) -> Path:
    stream_config(CTD)
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", str(1 << 14))
    return isolated_env


def test_status_flags_it_and_repair_finishes_the_publish(
    ctd_home: Path, tmp_path: Path
) -> None:
    from data_vent.cli import app
    from data_vent.run.ingest import ingest
    from data_vent.run.workspace import Workspace

    parts = make_parts(tmp_path / "parts", CTD, 3, 3000)
    ingest(Workspace.load(), CTD, parts[:2])
    url = ctd_home / "stores" / CTD
    kill_rebuild_in_publish(CTD, parts)

    assert unreadable(url) and not (url / ZMETA).exists()
    assert read_journal(Location(str(url)))["state"] == "publishing"
    poll_until(lambda: no_live_writer(CTD), 20, what="the dead writer's lease to expire")
    cli = CliRunner()
    res = cli.invoke(app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    row = next(r for r in json.loads(res.stdout)["assets"] if r["key"] == CTD)
    assert row.get("needs_repair"), row

    res = cli.invoke(app, ["repair"])
    assert res.exit_code == 0, res.output
    assert "rolled forward" in res.stdout and CTD in res.stdout
    assert not (url / JOURNAL).exists()
    np.testing.assert_array_equal(store_times(url), file_times(parts))  # the new version
    row = next(r for r in json.loads(cli.invoke(app, ["status", "--json"]).stdout)["assets"])
    assert not row["needs_repair"]
    hist = json.loads(cli.invoke(app, ["history", CTD, "--json"]).stdout)
    assert hist[0]["action"] == "repair" and hist[0]["status"] == "success"
    assert hist[0]["rows"] == 9000 and "rolled forward" in hist[0]["details"]["repaired"]
    assert cli.invoke(app, ["repair"]).stdout.startswith("Nothing to repair")


@pytest.mark.usefixtures("prefect_server")
def test_the_next_harvest_repairs_before_planning(
    ctd_home: Path, tmp_path: Path, sim, monkeypatch
) -> None:
    from data_vent.flows import daily_harvest, run_flow

    monkeypatch.setenv("DATA_VENT_OOI_URL", sim.base_url)
    monkeypatch.setenv("DATA_VENT_OOI_POLL_INTERVAL", "0.1")
    first = run_flow(daily_harvest)
    assert first["outcomes"][CTD]["status"] == "success", first["outcomes"][CTD]
    url = ctd_home / "stores" / CTD
    harvested = store_times(url)
    # the same history, rebuilt from one file, killed while publishing
    s = sim.streams[CTD]
    whole = write_stream_file(
        tmp_path / "whole.nc", FileSpec(CTD, s.times(s.t0, sim.now_ntp), 1)
    )
    kill_rebuild_in_publish(CTD, [whole])
    assert unreadable(url)
    poll_until(lambda: no_live_writer(CTD), 20, what="the dead writer's lease to expire")

    second = run_flow(daily_harvest)
    assert second["ok"], second["failed"]
    planned = {row["key"]: row for row in second["plan"]}
    assert CTD not in planned  # repaired before planning: not `missing`, no full rebuild
    assert sim.data_requests(CTD) == 1  # OOI was not asked again
    assert "rolled forward" in second["repaired"][CTD]["details"]["repaired"]
    np.testing.assert_array_equal(store_times(url), harvested)

"""Defect 1: one writer per store. Every write (here: ``ingest``) holds the asset's lease; a
second writer waits for it (bounded) or exits 1 naming the holder, and nothing repairs a
store whose lease a live holder has.

On the code before the fix, ``ingest`` took no lease and its repair rolled back the other
process's in-flight write: two ingests started together lost a whole part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from data_vent.store.commit import JOURNAL
from tests.polling import poll_until
from tests.reliability.helpers import (
    CTD,
    attempts,
    cli,
    file_times,
    make_parts,
    store_times,
)

pytestmark = pytest.mark.slow  # CLI subprocesses

ROWS = 20_000


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_parts(tmp_path_factory.mktemp("parts"), CTD, 3, ROWS)


@pytest.fixture
def ctd_home(
    isolated_env: Path, stream_config, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    stream_config(CTD)
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", str(1 << 16))  # many chunk objects
    return isolated_env


def _ws():
    from data_vent.run.workspace import Workspace

    return Workspace.load()


def _journal(home: Path) -> Path:
    return home / "stores" / CTD / JOURNAL


def test_two_concurrent_ingests_lose_no_row(ctd_home: Path, parts: list[Path]) -> None:
    from data_vent.run.ingest import ingest

    ingest(_ws(), CTD, [parts[0]])
    first = cli("ingest", CTD, str(parts[1]))
    try:
        # the first ingest is writing (its journal is there): a second one starts now
        poll_until(
            lambda: _journal(ctd_home).exists() or first.poll() is not None,
            60,
            every=0.005,
            what="the first ingest to start writing",
        )
        assert first.poll() is None, first.communicate()
        second = ingest(_ws(), CTD, [parts[2]])
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert second.rows_added == ROWS  # it waited for the first, then appended after it
    times = store_times(ctd_home / "stores" / CTD)
    np.testing.assert_array_equal(times, file_times(parts))  # every row, in order, once
    assert attempts(_ws().engine, "success")[CTD] == 3


def test_a_writer_held_past_the_wait_exits_1_naming_the_holder(
    ctd_home: Path, parts: list[Path]
) -> None:
    from data_vent.run.ingest import ingest
    from data_vent.state.leases import acquire_lease, lease_holder

    ws = _ws()
    ingest(ws, CTD, [parts[0]])
    before = store_times(ctd_home / "stores" / CTD)
    assert acquire_lease(ws.engine, CTD, "otherhost:4242:1:run-harvest7", 60, "run-harvest7")
    res = cli("ingest", CTD, str(parts[1]), DATA_VENT_LEASE_WAIT="1")
    _, err = res.communicate(timeout=120)
    assert res.returncode == 1, err
    notice, line = [ln for ln in err.splitlines() if ln.strip()]  # waiting..., then why not
    assert "Traceback" not in err and "waiting for it" in notice
    assert line.startswith("error:") and CTD in line, line
    assert "run run-harvest7" in line and "otherhost" in line and "LEASE_WAIT" in line
    np.testing.assert_array_equal(store_times(ctd_home / "stores" / CTD), before)
    assert attempts(ws.engine)[CTD] == 1  # nothing tried, nothing recorded
    assert lease_holder(ws.engine, CTD)[0].endswith("run-harvest7")  # untouched


def test_repair_leaves_a_live_writers_store_alone(ctd_home: Path, parts: list[Path]) -> None:
    from data_vent.cli import app
    from data_vent.run.ingest import ingest

    ingest(_ws(), CTD, [parts[0]])
    writer = cli("ingest", CTD, str(parts[1]))
    try:
        poll_until(
            lambda: _journal(ctd_home).exists() or writer.poll() is not None,
            60,
            every=0.005,
            what="the ingest to start writing",
        )
        assert writer.poll() is None, writer.communicate()
        res = CliRunner().invoke(app, ["repair", "--json"])
        _, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert res.exit_code == 0, res.output
    assert writer.returncode == 0, err
    # the journal was an in-flight write under a live lease: not touched, and the write
    # it belonged to committed whole
    times = store_times(ctd_home / "stores" / CTD)
    np.testing.assert_array_equal(times, file_times(parts[:2]))
    assert "repair" not in {r["action"] for r in _history(CTD)}


def _history(key: str) -> list[dict]:
    from data_vent.state.materializations import history

    return history(_ws().engine, key)

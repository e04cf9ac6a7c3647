"""The state DB on SQLite and PostgreSQL: migrations, observations, materializations and
concurrent read-modify-write transactions (threads and processes)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from data_vent.core.records import MaterializationRecord, Observation, Reason
from data_vent.core.spec import AssetSpec
from data_vent.core.vocab import Action, Outcome
from data_vent.state.db import get_engine, make_engine
from data_vent.state.materializations import record_materialization
from data_vent.state.migrate import current_revision, head_revision, upgrade
from data_vent.state.models import Asset, Materialization, SourceObservation
from data_vent.state.observations import latest_observations, record_observations
from data_vent.state.specs import sync_specs
from tests.lease_worker import increment
from tests.polling import poll_until

ROOT = Path(__file__).parent.parent
T0 = datetime(2024, 1, 1)
T1 = datetime(2024, 5, 1)
A = Asset.__table__
M = Materialization.__table__
O = SourceObservation.__table__  # noqa: E741

TABLES = {
    "asset",
    "asset_dep",
    "source_observation",
    "materialization",
    "ooi_request",
    "lease",
    "alembic_version",
}


def test_get_engine_upgrades_a_fresh_db(db_url: str) -> None:
    assert current_revision(make_engine(db_url)) is None  # empty
    engine = get_engine(db_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert head_revision() is not None
    assert current_revision(engine) == head_revision()


def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision())
    assert upgrade(engine) == (head_revision(), head_revision())
    assert upgrade(make_engine(db_url)) == (head_revision(), head_revision())
    assert current_revision(engine) == head_revision()
    # the engine cache upgrades once and keeps working on an upgraded DB
    assert current_revision(get_engine(db_url)) == head_revision()


def _obs_rows(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(O).order_by(O.c.id)))


def test_discontinued_observation_keeps_the_last_reported_range(db_url: str) -> None:
    from data_vent.state.observations import latest_observations
    from data_vent.state.snapshot import read_snapshot

    engine = get_engine(db_url)
    sync_specs(engine, {"s1": AssetSpec("s1", "src", observable=True)})
    listed = Observation("s1", T0, T1, 10)
    record_observations(engine, [listed])
    gone = Observation("s1", None, None, None, discontinued=True)
    (stored,) = record_observations(engine, [gone])
    assert stored == Observation("s1", T0, T1, 10, discontinued=True)
    assert record_observations(engine, [gone]) == []  # still gone: nothing new
    assert latest_observations(engine)["s1"] == stored
    assert read_snapshot(engine).observations["s1"].discontinued
    assert record_observations(engine, [listed]) == [listed]  # listed again
    assert not read_snapshot(engine).observations["s1"].discontinued
    assert [r.discontinued for r in _obs_rows(engine)] == [False, True, False]


def test_record_observations_writes_only_changes(db_url: str) -> None:
    engine = get_engine(db_url)
    sync_specs(engine, {k: AssetSpec(k, "src", observable=True) for k in ("s1", "s2")})
    first = [Observation("s1", T0, T1, 10), Observation("s2", T0, T1, 20)]
    assert record_observations(engine, first) == first
    assert record_observations(engine, first) == []  # nothing moved
    assert len(_obs_rows(engine)) == 2

    moved = [
        Observation("s1", T0, T1, 11),  # count
        Observation("s2", T0, T1, 20),  # unchanged
    ]
    assert record_observations(engine, moved) == [moved[0]]
    for change in (
        Observation("s1", T0, T1 + timedelta(hours=1), 11),  # end
        Observation("s1", T0 - timedelta(days=1), T1 + timedelta(hours=1), 11),  # begin
    ):
        assert record_observations(engine, [change]) == [change]
    rows = _obs_rows(engine)
    assert len(rows) == 5
    assert [(r.source_key, r.count) for r in rows] == [
        ("s1", 10),
        ("s2", 20),
        ("s1", 11),
        ("s1", 11),
        ("s1", 11),
    ]
    assert latest_observations(engine) == {
        "s1": Observation("s1", T0 - timedelta(days=1), T1 + timedelta(hours=1), 11),
        "s2": Observation("s2", T0, T1, 20),
    }
    with engine.connect() as conn:
        ptr = dict(conn.execute(select(A.c.key, A.c.latest_observation_id)).all())
    assert ptr == {"s1": rows[-1].id, "s2": rows[1].id}
    # the same observation twice in one batch: one row
    dup = Observation("s2", T0, T1, 21)
    assert record_observations(engine, [dup, dup]) == [dup]
    assert len(_obs_rows(engine)) == 6
    assert record_observations(engine, []) == []


def _pointers(engine, key: str) -> tuple[int | None, int | None]:
    with engine.connect() as conn:
        r = conn.execute(
            select(A.c.last_success_id, A.c.last_attempt_id).where(A.c.key == key)
        ).one()
    return r.last_success_id, r.last_attempt_id


def test_record_materialization_moves_pointers(db_url: str) -> None:
    engine = get_engine(db_url)
    sync_specs(engine, {"x": AssetSpec("x", "k")})
    assert _pointers(engine, "x") == (None, None)

    def rec(status: Outcome, **kw) -> int:
        attempt = MaterializationRecord("x", "r", Action.FULL, [Reason("missing", {"at": T0})])
        return record_materialization(engine, attempt.finish(status, **kw))

    m1 = rec(
        "success",
        data_version="v1",
        time_max=T1,
        rows=5,
        input_versions={"s": {"end_time": T1}},
    )
    assert _pointers(engine, "x") == (m1, m1)
    m2 = rec("failed", error="boom")
    assert _pointers(engine, "x") == (m1, m2)
    m3 = rec("skipped", error="upstream failed: s")  # never tried: pointers stay
    assert _pointers(engine, "x") == (m1, m2)
    m4 = rec("waiting")
    assert _pointers(engine, "x") == (m1, m4)
    m5 = rec("success", data_version="v2")
    assert _pointers(engine, "x") == (m5, m5)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(M))}
    assert set(rows) == {m1, m2, m3, m4, m5}
    assert rows[m1].reasons == [{"code": "missing", "values": {"at": T0.isoformat()}}]
    assert rows[m1].input_versions == {"s": {"end_time": str(T1)}}
    assert (rows[m1].data_version, rows[m1].time_max, rows[m1].rows) == ("v1", T1, 5)
    assert rows[m2].error == "boom" and rows[m3].status == "skipped"


# ---- concurrency ------------------------------------------------------------------------


def _counter(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(select(A.c.code_version).where(A.c.key == "counter")).scalar_one()


def test_threads_lose_no_update(db_url: str) -> None:
    """8 threads x 50 read-modify-write transactions on one row: no update lost.

    On SQLite this holds only because every transaction begins IMMEDIATE (state/db.py).
    """
    engine = get_engine(db_url)
    sync_specs(engine, {"counter": AssetSpec("counter", "k", code_version="0")})
    threads_n, per = 8, 50
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(per):
                increment(engine, "counter")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert _counter(engine) == str(threads_n * per)


@pytest.mark.slow  # worker subprocesses
def test_two_processes_lose_no_update_on_sqlite(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = get_engine(db_url)
    sync_specs(engine, {"counter": AssetSpec("counter", "k", code_version="0")})
    per, go = 150, tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.lease_worker",
                "counter",
                db_url,
                "counter",
                str(per),
                str(r),
                str(go),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    try:
        poll_until(lambda: all(r.exists() for r in ready), 30, what="both workers ready")
        go.write_text("go")
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], results
    assert _counter(engine) == str(2 * per)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(A)).scalar() == 1


@pytest.mark.parametrize("n", [1, 3])
def test_sync_specs_edges(db_url: str, n: int) -> None:
    """Dependency edges follow the specs (rewritten only where they differ)."""
    from data_vent.state.models import AssetDep

    engine = get_engine(db_url)
    d = AssetDep.__table__
    ups = [AssetSpec(f"u{i}", "k") for i in range(n)]
    specs = {s.key: s for s in ups} | {"x": AssetSpec("x", "k", tuple(s.key for s in ups))}
    sync_specs(engine, specs)
    with engine.connect() as conn:
        edges = set(conn.execute(select(d.c.asset_key, d.c.dep_key)).all())
    assert edges == {("x", s.key) for s in ups}
    specs["x"] = AssetSpec("x", "k", ("u0",))
    rep = sync_specs(engine, specs)
    with engine.connect() as conn:
        edges = set(conn.execute(select(d.c.asset_key, d.c.dep_key)).all())
    assert edges == {("x", "u0")}
    assert rep.changed == ([] if n == 1 else ["x"])

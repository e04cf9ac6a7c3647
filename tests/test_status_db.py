"""Harvest status from the state DB alone (issue 13), end to end.

A real harvest (Prefect, the OOI simulator on loopback) with a config folder leaves a failure,
a request OOI has not finished, sources that moved on since (harvest lag) while OOI itself is
days behind the wall clock (source lag), a source OOI then failed to report on, and a
stream OOI has since discontinued. Then, in a
fresh environment with only a read-only database URL -- no config folder, no home, a
SELECT-only PostgreSQL role or a SQLite file opened read-only -- ``status``, ``status
--json``, ``history``, ``why`` and ``graph`` say what they said before, write nothing, and
the ``stream_status`` view read by a plain SQL client agrees with ``status --json`` row by
row.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from data_vent.core.timeutil import utcnow
from data_vent.demo import DEMO_CONFIGS
from data_vent.simulator import Simulator, stream_from_table
from data_vent.state.status import STREAM_STATUS_COLUMNS
from tests.dbstate import dv, fingerprint, select_only_role, sqlite_file
from tests.test_e2e import demo_tables

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

TIME_COLUMNS = {n for n, t in STREAM_STATUS_COLUMNS if t.__name__ == "DateTime"}
LAG_SLACK = 600  # seconds between reading the view and running the command, on a busy host
REQUEST_WAIT = 6.0  # seconds a run waits for an OOI request; the stuck stream waits it out


def _when(value):
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def view_rows(
    url: str, ro_url: str, query: str = "SELECT * FROM stream_status ORDER BY key"
) -> list[dict]:
    """``query`` (the view) as a SQL client runs it: the driver, no data-vent code."""
    path = sqlite_file(url)
    if path is not None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cur = conn.execute(query)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            conn.close()
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(ro_url)
    with psycopg.connect(
        f"host={u.host} port={u.port} user={u.username} dbname={u.database}"
    ) as conn:
        cur = conn.execute(query)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()] if names else []


def same_row(view: dict, shown: dict) -> None:
    assert list(view) == [n for n, _ in STREAM_STATUS_COLUMNS]
    for name, value in view.items():
        got = shown[name]
        if name in TIME_COLUMNS:
            assert _when(value) == _when(got), (view["key"], name, value, got)
        elif name == "source_lag_seconds" and value is not None:
            assert abs(int(value) - got) <= LAG_SLACK, (view["key"], value, got)
        elif isinstance(value, float) or isinstance(got, float):
            assert float(value) == float(got), (view["key"], name, value, got)
        else:
            assert value == got, (view["key"], name, value, got)


def without_clock(doc: dict) -> dict:
    """A status document without what moves with the wall clock (checked apart)."""
    out = {**doc, "generated_at": None}
    out["assets"] = [{**r, "source_lag_seconds": None} for r in doc["assets"]]
    return out


@dataclass
class Harvested:
    """The state a harvest left: which stream failed, which waits on OOI, which lag, whose
    source could not be observed, which OOI no longer lists."""

    db_url: str
    failing: str
    stuck: str
    moving: list[str]
    blind: str
    gone: str
    request: str


COMMANDS = [
    ("status",),
    ("status", "--json"),
    ("history", "{moving}"),
    ("history", "{failing}", "--json"),
    ("why", "{failing}"),
    ("why", "{stuck}"),
    ("why", "{gone}"),
    ("graph", "--format", "mermaid"),
    ("assets", "--json"),
]


def harvest(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harvested:
    """A daily harvest of five streams (one fails, one waits on OOI), then OOI moves on,
    fails to answer for one and drops one from its table of contents."""
    from data_vent.flows import daily_harvest, run_flow
    from data_vent.run.workspace import Workspace
    from data_vent.settings import get_settings
    from data_vent.state.db import dispose_all

    tables = demo_tables()[:5]
    cfg = tmp_path / "configs"
    cfg.mkdir()
    for t in tables:
        (cfg / f"{t}.yaml").write_text((DEMO_CONFIGS / f"{t}.yaml").read_text())
    for key, value in {
        "DATA_VENT_CONFIG_DIR": str(cfg),
        "DATA_VENT_DB_URL": db_url,
        "DATA_VENT_CHUNK_TARGET_BYTES": "1048576",
        "DATA_VENT_OOI_POLL_INTERVAL": "0.1",
        "DATA_VENT_OOI_REQUEST_WAIT": "1.0",
        "DATA_VENT_OOI_RETRIES": "1",
        "DATA_VENT_OOI_BACKOFF": "0.01",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
    }.items():
        monkeypatch.setenv(key, value)
    # OOI is 2.5 days behind the wall clock by the time the status is read; 10-min samples,
    # so every lag is a whole number of samples and its text stable for ~20 minutes.
    start = (utcnow() - timedelta(days=3, minutes=20)).replace(second=0, microsecond=0)
    sim = Simulator(
        [stream_from_table(t, start, interval=600.0) for t in tables],
        ready_delay=0.2,
        start=start,
        workdir=tmp_path / "sim",
    )
    monkeypatch.setenv("DATA_VENT_OOI_URL", sim.start())
    scene = Harvested(db_url, tables[0], tables[1], tables[2:3], tables[3], tables[4], "")
    try:
        sim.set_fault(scene.failing, "request_failed")
        sim.set_fault(scene.stuck, "never_ready")
        run = run_flow(daily_harvest)
        out = {k: o["status"] for k, o in run["outcomes"].items()}
        assert (out[scene.failing], out[scene.stuck]) == ("failed", "waiting"), out
        healthy = [*scene.moving, scene.blind, scene.gone]
        assert {t: out[t] for t in healthy} == dict.fromkeys(healthy, "success")
        sim.advance(12 * 3600)  # OOI moves on; nobody harvests it yet
        sim.remove_from_toc(scene.gone)
        sim.set_fault(scene.blind, "http_500")
        ws = Workspace.load(get_settings())
        ws.sync()
        ws.observe()
        with sim.lock:
            (scene.request,) = [
                r.uuid for r in sim.requests.values() if r.table == scene.stuck
            ]
    finally:
        sim.stop()
    dispose_all()
    return scene


def run_commands(scene: Harvested, **kw) -> dict[tuple[str, ...], str]:
    names = {
        "moving": scene.moving[0],
        "failing": scene.failing,
        "stuck": scene.stuck,
        "gone": scene.gone,
    }
    out = {}
    for args in COMMANDS:
        res = dv(*(a.format(**names) for a in args), **kw)
        assert res.returncode == 0, (args, res.stderr)
        out[args] = res.stdout
    return out


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_status_from_the_db_alone_with_read_only_credentials(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from data_vent.state.db import dispose_all

    scene = harvest(db_url, tmp_path, monkeypatch)
    # the harvest's own environment: the config folder, the home, the writer's URL
    before = run_commands(scene)
    db_before = fingerprint(db_url)

    # -- a laptop: only a read-only DB URL ------------------------------------------------
    path = sqlite_file(db_url)
    with ExitStack() as stack:
        stack.callback(dispose_all)
        if path is not None:
            path.chmod(0o444)
            stack.callback(path.chmod, 0o644)
            ro_url = f"sqlite:///file:{path}?mode=ro&uri=true"
        else:
            ro_url = stack.enter_context(select_only_role(db_url))
            with pytest.raises(Exception, match="permission denied"):
                view_rows(db_url, ro_url, "UPDATE asset SET active = false")
        laptop = tmp_path / "laptop"
        laptop.mkdir()
        env = {"PATH": os.environ["PATH"], "DATA_VENT_DB_URL": ro_url}
        after = run_commands(scene, env=env, cwd=laptop)
        assert list(laptop.iterdir()) == []  # no home, no DB, no store created
        assert fingerprint(db_url) == db_before  # byte for byte (SQLite), row for row

        for args in COMMANDS:
            if args != ("status", "--json"):
                assert after[args] == before[args], args
        doc = json.loads(after[("status", "--json")])
        doc_before = json.loads(before[("status", "--json")])
        assert without_clock(doc) == without_clock(doc_before)
        for a, b in zip(doc["assets"], doc_before["assets"], strict=True):
            if b["source_lag_seconds"] is not None:
                assert 0 <= a["source_lag_seconds"] - b["source_lag_seconds"] <= LAG_SLACK

        check_view_agrees(scene, ro_url, doc)


def check_view_agrees(scene: Harvested, ro_url: str, doc: dict) -> None:
    """The view, read by a SQL client, is what ``status --json`` shows; the scene shows."""
    from data_vent.run.workspace import Workspace
    from data_vent.settings import Settings

    rows = view_rows(scene.db_url, ro_url)
    assert [r["key"] for r in rows] == [r["key"] for r in doc["assets"]]
    for view, shown in zip(rows, doc["assets"], strict=True):
        same_row(view, shown)

    by_key = {r["key"]: r for r in doc["assets"]}
    f = by_key[scene.failing]
    assert (f["last_attempt_status"], f["freshness"], f["status"]) == (
        "failed",
        "UNKNOWN",
        "failed",
    )
    assert f["last_error"] and "fail" in f["last_error"].lower()
    s = by_key[scene.stuck]
    assert (s["request_id"], s["request_status"], s["freshness"]) == (
        scene.request,
        "pending",
        "UNKNOWN",
    )
    assert s["last_attempt_status"] == "waiting" and "waiting" in s["statuses"]
    for t in scene.moving:
        m = by_key[t]
        assert (m["harvest_lag_seconds"], m["freshness"]) == (12 * 3600, "WARN"), m
        assert m["source_lag_seconds"] > 2 * 86400 and m["stale"]
        assert {r["code"] for r in m["reasons"]} == {"source_advanced"}
    b = by_key[scene.blind]
    assert (b["freshness"], b["status"], b["harvest_lag_seconds"]) == (
        "UNKNOWN",
        "unknown",
        None,
    )
    assert "500" in b["observe_error"] and b["observe_failed_at"]
    g = by_key[scene.gone]
    assert (g["freshness"], g["status"], g["stale"]) == ("DISCONTINUED", "discontinued", False)
    assert g["harvest_lag_seconds"] == 0 and "discontinued" in g["note"]
    assert by_key["catalog"]["freshness"] is None  # no source of its own

    # ... and the planner measures freshness as the view does
    plan = Workspace.from_state_db(Settings(db_url=ro_url)).plan(check_outputs=False)
    for r in rows:
        fr = plan.freshness.get(r["key"])
        assert (fr.state if fr else None) == r["freshness"], r["key"]

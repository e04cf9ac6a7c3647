"""Prefect, as an operator meets it: asset events from Prefect's own asset lineage (a fan-in
over 100 still valid, URLs where each asset is), the flow-run id with every materialization,
a dry run's plan as a table artifact, and the one-line hint about the ephemeral server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import pytest
import yaml

from tests.kinds import write_sources
from tests.polling import poll_until
from tests.processes import seeded_prefect_home

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ROOT = Path(__file__).parent.parent
SRC, FILE = "tests.kinds:FileSource", "tests.kinds:FileAsset"
WIDE = 120  # inputs of one asset: more than Prefect relates in one event


@pytest.fixture
def wide_home(isolated_env: Path, tmp_path: Path, monkeypatch) -> Path:
    """WIDE sources -> WIDE assets -> one ``catalog``-like asset reading them all."""
    cfg = tmp_path / "configs"
    cfg.mkdir()
    assets = [{"key": f"src/s{i}", "kind": SRC, "observable": True} for i in range(WIDE)]
    assets += [{"key": f"s{i}", "kind": FILE, "deps": [f"src/s{i}"]} for i in range(WIDE)]
    assets += [
        {"key": "wide", "kind": FILE, "deps": [f"s{i}" for i in range(WIDE)]},
        {"key": "after", "kind": FILE, "deps": ["s0", "s1"]},
    ]
    (cfg / "graph.yaml").write_text(yaml.safe_dump({"assets": assets}))
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
    day = ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 10)
    write_sources(isolated_env, {f"src/s{i}": day for i in range(WIDE)})
    return isolated_env


async def _events(prefix: str, since, ids: list[str]) -> list:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    async with get_client() as client:
        page = await client.read_events(
            filter=EventFilter(
                event=EventNameFilter(prefix=[prefix]),
                occurred=EventOccurredFilter(since=since),
                resource=EventResourceFilter(id=ids),
            ),
            limit=50,
        )
        return list(page.events)


def test_fan_in_over_100_emits_a_valid_event_and_failures_say_failed(wide_home: Path):
    from prefect.events.worker import EventsWorker

    from data_vent.core.timeutil import utcnow
    from data_vent.flows import daily_harvest, run_flow
    from data_vent.settings import get_settings

    (wide_home / "fail").mkdir()
    (wide_home / "fail" / "after").write_text("")
    since = utcnow().replace(tzinfo=UTC) - timedelta(seconds=5)
    result = run_flow(daily_harvest)
    assert result["outcomes"]["wide"]["status"] == "success"
    assert result["outcomes"]["after"]["status"] == "failed"
    EventsWorker.drain_all()
    storage = get_settings().resolved_storage()
    wide = f"file://{storage}/wide.json"
    after = f"file://{storage}/after.json"

    def seen() -> dict:
        evs = asyncio.run(_events("prefect.asset.material", since, [wide, after]))
        got = {e.resource.id: e for e in evs}
        return got if {wide, after} <= set(got) else {}

    events = poll_until(seen, 60, every=0.3, what="asset events persisted")
    ev = events[wide]
    assert ev.event == "prefect.asset.materialization.succeeded"
    related = {r.id: r.role for r in ev.related}
    assert len(ev.related) <= 100
    assert related[f"file://{storage}"] == "asset"  # the root that holds its 120 inputs
    assert related["data-vent"] == "asset-materialized-by"
    assert events[after].event == "prefect.asset.materialization.failed"
    assert {r.id for r in events[after].related} >= {
        f"file://{storage}/s0.json",
        f"file://{storage}/s1.json",
    }
    for key in ("s7", "wide"):  # the URL names a file that is there
        assert Path(f"{storage}/{key}.json").exists()


def test_flow_run_id_recorded_and_shown_in_history(wide_home: Path):
    from typer.testing import CliRunner

    from data_vent.cli import app
    from data_vent.flows import materialize, run_flow

    result = run_flow(materialize, selection="s3")
    assert result["ok"] and result["flow_run_id"]
    runner = CliRunner()
    rows = runner.invoke(app, ["history", "s3", "--json"])
    assert rows.exit_code == 0, rows.output
    import json

    (row,) = json.loads(rows.stdout)
    assert row["flow_run_id"] == result["flow_run_id"]
    assert row["run_id"] == result["run_id"]
    table = runner.invoke(app, ["history", "s3"], env={"COLUMNS": "100"})
    assert result["flow_run_id"] in table.stdout


def test_dry_run_publishes_the_plan_as_a_table_artifact(wide_home: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from data_vent.flows import materialize, run_flow

    result = run_flow(materialize, selection="s1+", dry_run=True)
    assert {r["key"] for r in result["plan"]} == {"s1", "wide", "after"}

    async def artifacts() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[result["flow_run_id"]])
                )
            )

    (art,) = poll_until(lambda: asyncio.run(artifacts()), 30, what="plan artifact")
    assert art.type == "table" and art.key == "data-vent-plan"
    rows = art.data if isinstance(art.data, list) else __import__("json").loads(art.data)
    assert {r["asset"] for r in rows} == {"s1", "wide", "after"}
    assert {r["action"] for r in rows} == {"full"}
    assert not (wide_home / "stores").exists() or not any((wide_home / "stores").iterdir())


def test_cli_hints_at_the_ephemeral_server_only_when_it_starts_one(
    wide_home: Path, prefect_db_template: Path
):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    served = subprocess.run(
        [sys.executable, "-m", "data_vent", "materialize", "s5"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    assert "hint:" not in served.stderr
    env.pop("PREFECT_API_URL")
    home = seeded_prefect_home(wide_home / "prefect-home", prefect_db_template)
    env["PREFECT_HOME"] = str(home)
    alone = subprocess.run(
        [sys.executable, "-m", "data_vent", "materialize", "s6"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    hints = [ln for ln in alone.stderr.splitlines() if ln.startswith("hint:")]
    assert len(hints) == 1 and "prefect server start" in hints[0], alone.stderr


def test_sources_are_named_by_their_ooi_url(tmp_path: Path):
    from data_vent.assets.config import load_specs
    from data_vent.assets.kinds import get_kind
    from data_vent.settings import Settings

    cfg = tmp_path / "c"
    cfg.mkdir()
    (cfg / "ctd.yaml").write_text(
        "instrument: CE04OSPS-SF01B-2A-CTDPFA107\n"
        "stream: {method: streamed, name: ctdpf_sbe43_sample}\n"
    )
    specs = load_specs(cfg)
    settings = Settings(storage=str(tmp_path / "stores"), ooi_token="TOKEN-SECRET-1")
    src = specs["ooi/CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"]
    url = get_kind(src.kind).location(src, settings)
    assert url == (
        "https://ooinet.oceanobservatories.org/api/m2m/12576/sensor/inv/"
        "CE04OSPS/SF01B/2A-CTDPFA107/streamed/ctdpf_sbe43_sample"
    )
    store = specs["CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"]
    assert get_kind(store.kind).location(store, settings) == (
        (tmp_path / "stores" / store.key).as_uri()
    )
    avail = specs[f"{store.key}/availability"]
    assert (
        get_kind(avail.kind)
        .location(avail, settings)
        .endswith(f"/stores/_derived/{store.key}/availability.json")
    )

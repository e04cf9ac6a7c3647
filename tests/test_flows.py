"""The Prefect flows on a real local Prefect server, over test-registered asset kinds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.kinds import DAY1, three_levels, write_sources
from tests.polling import poll_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def graph_home(isolated_env: Path, tmp_path: Path, monkeypatch, db_url: str) -> Path:
    cfg = tmp_path / "configs"
    three_levels(cfg)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    write_sources(isolated_env, DAY1)
    return isolated_env


def materialized(home: Path) -> list[str]:
    log = home / "materialized.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [line.split()[0] for line in lines]


def test_daily_flow_materializes_three_levels_then_nothing(graph_home: Path):
    from data_vent.flows import daily_harvest, run_flow

    first = run_flow(daily_harvest)
    assert first["ok"], first
    assert {k: o["status"] for k, o in first["outcomes"].items()} == {
        "a": "success",
        "b": "success",
        "ab": "success",
        "top": "success",
    }
    gens = {row["key"]: row["generation"] for row in first["plan"]}
    assert gens["a"] == gens["b"] == 0 and gens["ab"] == 1 and gens["top"] == 2
    assert all(row["action"] == "full" or row["key"] in ("ab", "top") for row in first["plan"])
    order = materialized(graph_home)
    assert order.index("ab") > max(order.index("a"), order.index("b"))
    assert order.index("top") > order.index("ab")

    second = run_flow(daily_harvest)
    assert second["plan"] == [] and second["outcomes"] == {}
    assert materialized(graph_home) == []


def test_changed_root_observation_replans_exactly_its_descendants(graph_home: Path):
    from data_vent.flows import daily_harvest, run_flow

    assert run_flow(daily_harvest)["ok"]
    materialized(graph_home)
    write_sources(
        graph_home,
        {
            "src/a": ("2024-01-01T00:00:00", "2024-01-03T00:00:00", 150),
            "src/b": ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 50),
        },
    )
    third = run_flow(daily_harvest)
    planned = {row["key"]: row for row in third["plan"]}
    assert set(planned) == {"a", "ab", "top"}
    assert planned["a"]["action"] == "append"
    a_reasons = {r["code"]: r["values"] for r in planned["a"]["reasons"]}
    assert a_reasons["source_advanced"]["source_end"] == "2024-01-03T00:00:00"
    assert {r["code"] for r in planned["ab"]["reasons"]} == {"upstream_planned"}
    assert sorted(materialized(graph_home)) == ["a", "ab", "top"]


def test_failed_asset_skips_downstream_and_others_go_on(graph_home: Path):
    from data_vent.flows import daily_harvest, run_flow
    from data_vent.settings import get_settings
    from data_vent.state.db import get_engine
    from data_vent.state.materializations import history

    (graph_home / "fail").mkdir()
    (graph_home / "fail" / "a").write_text("")
    result = run_flow(daily_harvest)
    status = {k: o["status"] for k, o in result["outcomes"].items()}
    assert status == {"a": "failed", "b": "success", "ab": "skipped", "top": "skipped"}
    assert not result["ok"]
    assert "asked to fail a" in result["outcomes"]["a"]["error"]

    async def final_state():
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return (await client.read_flow_run(result["flow_run_id"])).state

    state = asyncio.run(final_state())
    assert state.is_failed() and "3 assets failed" in state.message  # a, ab, top
    assert result["outcomes"]["ab"]["error"] == "upstream failed: a"
    engine = get_engine(get_settings().resolved_db_url())
    assert [h["status"] for h in history(engine, "ab")] == ["skipped"]

    (graph_home / "fail" / "a").unlink()
    retry = run_flow(daily_harvest)
    planned = {row["key"]: row for row in retry["plan"]}
    assert set(planned) == {"a", "ab", "top"}
    assert "last_failed" in {r["code"] for r in planned["a"]["reasons"]}
    assert retry["ok"]


def test_materialize_selection_force_and_run_report(graph_home: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.events.worker import EventsWorker

    from data_vent.flows import daily_harvest, materialize, run_flow

    assert run_flow(daily_harvest)["ok"]
    materialized(graph_home)
    nothing = run_flow(materialize, selection="ab")
    assert nothing["plan"] == []
    forced = run_flow(materialize, selection="ab+", force=True)
    assert {row["key"] for row in forced["plan"]} == {"ab", "top"}
    assert sorted(materialized(graph_home)) == ["ab", "top"]

    async def task_run_names() -> set[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[forced["flow_run_id"]]))
            )
            return {r.name for r in runs}

    async def read_artifacts() -> list:
        async with get_client() as client:
            return await client.read_artifacts()

    # The server records task runs from events, after the flow has returned.
    EventsWorker.drain_all()
    poll_until(
        lambda: {"ab", "top"} <= asyncio.run(task_run_names()), 30, what="task runs recorded"
    )
    artifacts = asyncio.run(read_artifacts())
    reports = [a for a in artifacts if a.key == "data-vent-run-report"]
    assert reports, "run report artifact not published"
    assert any("`top`" in str(a.data) for a in reports)


def test_dry_run_changes_nothing(graph_home: Path):
    from data_vent.flows import materialize, run_flow

    result = run_flow(materialize, selection="+top", dry_run=True)
    assert {row["key"] for row in result["plan"]} == {"a", "b", "ab", "top"}
    assert materialized(graph_home) == []
    assert not (graph_home / "stores").exists() or not any((graph_home / "stores").iterdir())
    assert json.dumps(result)  # serializable as a Prefect result


def test_materializations_emit_prefect_asset_events(graph_home: Path):
    """Prefect's own lineage sees the stores: asset events keyed by the store URL."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
    from prefect.events.worker import EventsWorker

    from data_vent.core.timeutil import utcnow
    from data_vent.flows import daily_harvest, run_flow
    from data_vent.settings import get_settings

    started = utcnow()
    assert run_flow(daily_harvest)["ok"]
    EventsWorker.drain_all()
    storage = get_settings().resolved_storage()
    want = {f"file://{storage}/{k}.json" for k in ("a", "b", "ab", "top")}

    async def read() -> list:
        from datetime import UTC, timedelta

        async with get_client() as client:
            page = await client.read_events(
                filter=EventFilter(
                    event=EventNameFilter(prefix=["prefect.asset.materialization."]),
                    occurred=EventOccurredFilter(
                        since=started.replace(tzinfo=UTC) - timedelta(seconds=5)
                    ),
                ),
                limit=50,
            )
            return page.events

    def seen_all() -> dict[str, object]:
        seen = {e.resource.id: e for e in asyncio.run(read())}
        return seen if want <= set(seen) else {}

    # The server persists events asynchronously.
    seen = poll_until(seen_all, 30, every=0.2, what="asset events persisted")
    top = seen[f"file://{storage}/top.json"]
    assert top.event == "prefect.asset.materialization.succeeded"
    assert f"file://{storage}/ab.json" in {r.id for r in top.related}
    assert top.payload["rows"] is None or isinstance(top.payload["rows"], int)

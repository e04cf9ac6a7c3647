"""Prefect flows: the daily freshness-driven harvest and targeted materialization.

Thin: they sync specs, observe sources, ask the planner, and run the plan generation by
generation, one Prefect task per asset (named by its key), concurrent inside a generation.
Everything they call is plain code in ``runner``/``workspace`` that runs without Prefect.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from data_vent.core.plan import PlanItem
from data_vent.core.vocab import Outcome
from data_vent.graph.planner import Plan, ancestors_of
from data_vent.run import runner
from data_vent.run.workspace import Workspace
from data_vent.settings import Settings, get_settings
from data_vent.views.report import not_planned_rows, plan_rows, run_markdown

_WORKSPACES: dict[str, Workspace] = {}
_SETTINGS: Settings | None = None
"""The settings ``run_flow`` was given (never a flow parameter: they hold secrets)."""


def _settings() -> Settings:
    return _SETTINGS or get_settings()


def _workspace(run_id: str) -> Workspace:
    ws = _WORKSPACES.get(run_id)
    if ws is None:  # a task in another process: load its own
        ws = _WORKSPACES[run_id] = Workspace.load(_settings())
    return ws


@task(name="materialize-asset", task_run_name="{key}", cache_policy=NO_CACHE)
def materialize_asset_task(
    key: str,
    action: str,
    reasons: list[dict[str, Any]],
    run_id: str,
    basis: int | None = None,
) -> dict[str, Any]:
    ws = _workspace(run_id)
    item = PlanItem(key, action, runner.reason_objects(reasons), basis)
    out = runner.materialize_asset(item, ws.specs, ws.settings, ws.engine, run_id)
    _emit_asset_event(ws, out)
    return out.to_json()


@task(name="repair-stores", cache_policy=NO_CACHE)
def repair_task(run_id: str, keys: list[str] | None = None) -> dict[str, Any]:
    """Before planning: finish or undo what killed writers left (each under its lease)."""
    ws = _workspace(run_id)
    return {k: o.to_json() for k, o in ws.repair(run_id, keys).items()}


@task(name="observe-sources", cache_policy=NO_CACHE)
def observe_task(run_id: str, keys: list[str] | None = None) -> dict[str, Any]:
    ws = _workspace(run_id)
    changed, total = ws.observe(keys)
    return {"observed": total, "changed": [o.source_key for o in changed]}


def _asset_url(ws: Workspace, key: str) -> str:
    url = f"{ws.settings.resolved_storage()}/{key}"
    return url if "://" in url else f"file://{url}"


def _emit_asset_event(ws: Workspace, out: runner.AssetOutcome) -> None:
    """Prefect asset events keyed by the store URL, in the shape Prefect's own ``@materialize``
    emits, so Prefect's lineage view shows the graph too (nothing depends on Cloud)."""
    if out.status not in (Outcome.SUCCESS, Outcome.FAILED):
        return
    try:
        from prefect.events import emit_event

        spec = ws.specs[out.key]
        upstream = [_asset_url(ws, d) for d in spec.deps]
        for url in upstream:
            emit_event(event="prefect.asset.referenced", resource={"prefect.resource.id": url})
        status = "succeeded" if out.status == Outcome.SUCCESS else "failed"
        emit_event(
            event=f"prefect.asset.materialization.{status}",
            resource={
                "prefect.resource.id": _asset_url(ws, out.key),
                "prefect.resource.name": out.key,
            },
            related=[
                {"prefect.resource.id": u, "prefect.resource.role": "asset"} for u in upstream
            ]
            + [
                {
                    "prefect.resource.id": "data-vent",
                    "prefect.resource.role": "asset-materialized-by",
                }
            ],
            payload={"rows": out.rows, "time_max": out.time_max, "action": out.action},
        )
    except Exception:  # lineage events are a courtesy; never fail a harvest on them
        get_run_logger().debug("could not emit the asset event of %s", out.key)


def _execute(ws: Workspace, plan: Plan, run_id: str) -> dict[str, runner.AssetOutcome]:
    def run_batch(items: list[PlanItem]) -> list[runner.AssetOutcome]:
        futures = [
            materialize_asset_task.submit(
                it.key, it.action, [r.to_json() for r in it.reasons], run_id, it.basis
            )
            for it in items
        ]
        return [runner.AssetOutcome(**f.result()) for f in futures]

    return ws.execute(plan, run_id, run_batch)


def _finish(ws: Workspace, plan: Plan, outcomes: dict, run_id: str, title: str) -> dict:
    md = run_markdown(title, plan, outcomes, run_id)
    try:
        create_markdown_artifact(md, key="data-vent-run-report", description=title)
    except Exception:
        get_run_logger().warning("could not publish the run report artifact")
    failed = [k for k, o in outcomes.items() if runner.is_failure(o)]
    from prefect.runtime import flow_run

    return {
        "run_id": run_id,
        "flow_run_id": str(flow_run.id),
        "plan": plan_rows(plan),
        "not_planned": not_planned_rows(plan),
        "outcomes": {k: o.to_json() for k, o in outcomes.items()},
        "ok": not failed,
        "failed": failed,
    }


def _final(result: dict[str, Any]) -> dict[str, Any] | State:
    """A run with failed assets ends Failed in Prefect (the UI and alerts see it), while the
    other assets' work stands and the result still carries every outcome."""
    if result["ok"]:
        return result
    shown = ", ".join(result["failed"][:5]) + (" …" if len(result["failed"]) > 5 else "")
    return Failed(message=f"{len(result['failed'])} assets failed: {shown}", data=result)


@flow(name="daily-harvest", log_prints=True)
def daily_harvest() -> dict[str, Any]:
    """Sync specs -> observe every source -> plan -> materialize what is stale."""
    logger = get_run_logger()
    run_id = runner.new_run_id()
    ws = _WORKSPACES[run_id] = Workspace.load(_settings())
    try:
        sync = ws.sync()
        logger.info("specs: %s", sync.summary())
        repaired = repair_task(run_id)
        observed = observe_task(run_id)
        logger.info(
            "observed %s sources, %s changed", observed["observed"], len(observed["changed"])
        )
        plan = ws.plan()
        runner.notify("plan", plan)
        logger.info("plan: %s assets in %s generations", len(plan), len(plan.generations))
        outcomes = _execute(ws, plan, run_id)
        result = _finish(ws, plan, outcomes, run_id, "daily harvest")
        result["observed"] = observed
        result["repaired"] = repaired
        return _final(result)
    finally:
        _WORKSPACES.pop(run_id, None)


@flow(name="materialize", log_prints=True)
def materialize(
    selection: str,
    force: bool = False,
    refresh: bool = False,
    dry_run: bool = False,
    include_upstream: bool = True,
) -> dict[str, Any]:
    """Rematerialize the selected assets (and their stale ancestors) if stale, or if forced."""
    run_id = runner.new_run_id()
    ws = _WORKSPACES[run_id] = Workspace.load(_settings())
    try:
        ws.sync()
        selected = ws.select(selection)
        sources = sorted(ws.sources_of(selected))
        repaired: dict[str, Any] = {}
        if not dry_run:
            scope = sorted(selected | ancestors_of(ws.graph, selected))
            repaired = repair_task(run_id, scope)
        if sources and not dry_run:
            observe_task(run_id, sources)
        plan = ws.plan(
            selection, force=force, refresh=refresh, include_upstream=include_upstream
        )
        runner.notify("plan", plan)
        if dry_run:
            return {
                "run_id": run_id,
                "plan": plan_rows(plan),
                "outcomes": {},
                "ok": True,
                "failed": [],
                "dry_run": True,
            }
        outcomes = _execute(ws, plan, run_id)
        result = _finish(ws, plan, outcomes, run_id, f"materialize {selection}")
        result["repaired"] = repaired
        return _final(result)
    finally:
        _WORKSPACES.pop(run_id, None)


def run_flow(fn, settings: Settings | None = None, **params) -> dict[str, Any]:
    """Call a flow in this process under ``settings`` (default: the environment's), with
    the configured concurrency (thread pool by default)."""
    global _SETTINGS
    settings = settings or get_settings()
    bounded = fn.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=settings.concurrency)
    )
    previous, _SETTINGS = _SETTINGS, settings
    try:
        state = bounded(**params, return_state=True)
    finally:
        _SETTINGS = previous
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # the flow itself broke (bad config, ...)
        raise result
    return result

"""Prefect flows: the daily freshness-driven harvest and targeted materialization.

Thin: they sync specs, observe sources, ask the planner, and run the plan generation by
generation, one Prefect task per asset (named by its key), concurrent inside a generation.
Everything they call is plain code in ``runner``/``workspace`` that runs without Prefect.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.assets import Asset, AssetProperties, add_asset_metadata
from prefect.cache_policies import NO_CACHE
from prefect.context import AssetContext
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import MaterializingTask

from data_vent.assets.kinds import as_url, get_kind
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


MAX_RELATED = 100
"""Prefect refuses an event relating more than this many resources (server setting
``PREFECT_EVENTS_MAXIMUM_RELATED_RESOURCES``, 100 by default)."""


def _materialize(
    key: str,
    action: str,
    reasons: list[dict[str, Any]],
    run_id: str,
    flow_run_id: str | None = None,
    basis: int | None = None,
) -> dict[str, Any] | State:
    """One asset under its lease. Prefect emits its asset event from the task's end state:
    succeeded with the rows and coverage, failed with the error, and none at all when
    nothing was materialized (waiting on OOI, held by another run)."""
    ws = _workspace(run_id)
    item = PlanItem(key, action, runner.reason_objects(reasons), basis)
    out = runner.materialize_asset(item, ws.specs, ws.settings, ws.engine, run_id, flow_run_id)
    ctx = AssetContext.get()
    if (
        ctx is not None
        and len(ctx.upstream_assets | ctx.direct_asset_dependencies) >= MAX_RELATED
    ):
        # Prefect also infers upstream assets from the task runs this one follows; over a
        # wide fan-in that alone exceeds the limit: keep the declared deps (the root).
        ctx.upstream_assets = set()
    if ctx is not None and ctx.downstream_assets:
        if out.status == Outcome.SUCCESS:
            for asset in ctx.downstream_assets:
                add_asset_metadata(
                    asset,
                    {"rows": out.rows, "time_max": out.time_max, "action": str(out.action)},
                )
        elif out.status != Outcome.FAILED:
            ctx.downstream_assets = set()  # not a materialization: no event
    if out.status == Outcome.FAILED:
        return Failed(message=out.error or "failed", data=out.to_json())
    return out.to_json()


materialize_asset_task = MaterializingTask(
    fn=_materialize,
    assets=[],
    materialized_by="data-vent",
    name="materialize-asset",
    task_run_name="{key}",
    cache_policy=NO_CACHE,
)
"""One task per asset; ``_task_for`` names the assets it materializes and reads."""


def _prefect_asset(ws: Workspace, key: str) -> Asset | None:
    """The Prefect asset of ``key``: keyed by where it really is (None if it has no place)."""
    spec = ws.specs[key]
    url = get_kind(spec.kind).location(spec, ws.settings)
    if url is None:
        return None
    try:
        return Asset(key=url, properties=AssetProperties(name=key))
    except ValueError:  # a path Prefect refuses as an asset key (a space, a '%')
        return None


def _task_for(ws: Workspace, key: str) -> MaterializingTask:
    """The task of one asset: it materializes the asset at its URL and reads its inputs'.

    A fan-in wider than Prefect allows (the catalog over more than 99 stores) reads the
    storage root instead, one asset that holds them all, so its event stays valid.
    """
    here = _prefect_asset(ws, key)
    if here is None:
        return materialize_asset_task
    deps = [a for d in ws.specs[key].deps if (a := _prefect_asset(ws, d)) is not None]
    if len(deps) > MAX_RELATED - 1:  # one related resource is the materialized-by tool
        root = as_url(ws.settings.resolved_storage())
        deps = [
            Asset(
                key=root,
                properties=AssetProperties(
                    name="data-vent storage root",
                    description=f"the {len(deps)} inputs of {key} are stored under it",
                ),
            )
        ]
    return materialize_asset_task.with_options(assets=[here], asset_deps=deps)


@task(name="repair-stores", cache_policy=NO_CACHE)
def repair_task(run_id: str, keys: list[str] | None = None) -> dict[str, Any]:
    """Before planning: finish or undo what killed writers left (each under its lease)."""
    ws = _workspace(run_id)
    return {k: o.to_json() for k, o in ws.repair(run_id, keys).items()}


@task(name="observe-sources", cache_policy=NO_CACHE)
def observe_task(run_id: str, keys: list[str] | None = None) -> dict[str, Any]:
    ws = _workspace(run_id)
    seen = ws.observe(keys)
    return {
        "observed": seen.total,
        "changed": [o.source_key for o in seen.changed],
        "failed": sorted(f.source_key for f in seen.failures),
        "errors": seen.messages(),
    }


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def _execute(ws: Workspace, plan: Plan, run_id: str) -> dict[str, runner.AssetOutcome]:
    flow_run_id = _flow_run_id()

    def run_batch(items: list[PlanItem]) -> list[runner.AssetOutcome]:
        futures = [
            _task_for(ws, it.key).submit(
                it.key,
                it.action,
                [r.to_json() for r in it.reasons],
                run_id,
                flow_run_id,
                it.basis,
            )
            for it in items
        ]
        return [runner.AssetOutcome(**f.result(raise_on_failure=False)) for f in futures]

    return ws.execute(plan, run_id, run_batch, flow_run_id=flow_run_id)


def _finish(
    ws: Workspace,
    plan: Plan,
    outcomes: dict,
    run_id: str,
    title: str,
    observed: dict[str, Any] | None = None,
) -> dict:
    """The run's result; sources that could not be observed make it not ok (their assets'
    freshness is unknown: a run never reports green for what it could not see)."""
    md = run_markdown(title, plan, outcomes, run_id)
    try:
        create_markdown_artifact(md, key="data-vent-run-report", description=title)
    except Exception:
        get_run_logger().warning("could not publish the run report artifact")
    failed = [k for k, o in outcomes.items() if runner.is_failure(o)]
    return {
        "run_id": run_id,
        "flow_run_id": _flow_run_id(),
        "plan": plan_rows(plan),
        "not_planned": not_planned_rows(plan),
        "outcomes": {k: o.to_json() for k, o in outcomes.items()},
        "ok": not failed and not (observed or {}).get("failed"),
        "failed": failed,
        "observed": observed,
    }


def _publish_plan(plan: Plan, selection: str) -> None:
    """A dry run's plan as a table artifact (and a line in the flow's log)."""
    logger = get_run_logger()
    logger.info(
        "dry run of %r: %s assets would run in %s generations",
        selection,
        len(plan),
        len(plan.generations),
    )
    rows = [
        {"generation": g, "asset": it.key, "action": str(it.action), "reasons": it.describe()}
        for g, gen in enumerate(plan.generations)
        for it in gen
    ]
    try:
        create_table_artifact(
            rows or [{"generation": "-", "asset": "-", "action": "-", "reasons": "-"}],
            key="data-vent-plan",
            description=f"dry run of `{selection}`: {len(plan)} assets would run"
            + ("" if rows else " (nothing to do: every selected asset is fresh)"),
        )
    except Exception:
        logger.warning("could not publish the plan artifact")


def _final(result: dict[str, Any]) -> dict[str, Any] | State:
    """A run with failed assets ends Failed in Prefect (the UI and alerts see it), while the
    other assets' work stands and the result still carries every outcome."""
    if result["ok"]:
        return result
    shown = ", ".join(result["failed"][:5]) + (" …" if len(result["failed"]) > 5 else "")
    unseen = len((result.get("observed") or {}).get("failed", []))
    message = f"{len(result['failed'])} assets failed: {shown}" if result["failed"] else ""
    if unseen:
        message = "; ".join(filter(None, [message, f"{unseen} sources not observed"]))
    return Failed(message=message, data=result)


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
        result = _finish(ws, plan, outcomes, run_id, "daily harvest", observed)
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
        named = ws.select_anchored(selection).anchors  # what the run may take inputs of
        sources = sorted(ws.sources_of(named))
        repaired: dict[str, Any] = {}
        if not dry_run:  # repaired before planning: a half-published store is not `missing`
            scope = ws.select(selection) | set(named) | ancestors_of(ws.graph, set(named))
            repaired = repair_task(run_id, sorted(scope))
        observed = observe_task(run_id, sources) if sources and not dry_run else None
        plan = ws.plan(
            selection, force=force, refresh=refresh, include_upstream=include_upstream
        )
        runner.notify("plan", plan)
        if dry_run:
            _publish_plan(plan, selection)
            return {
                "run_id": run_id,
                "flow_run_id": _flow_run_id(),
                "plan": plan_rows(plan),
                "outcomes": {},
                "ok": True,
                "failed": [],
                "dry_run": True,
            }
        outcomes = _execute(ws, plan, run_id)
        result = _finish(ws, plan, outcomes, run_id, f"materialize {selection}", observed)
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

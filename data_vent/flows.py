"""Prefect flows: the daily freshness-driven harvest and targeted materialization.

Thin: they sync specs, observe sources, ask the planner, and run the plan: one Prefect task
per asset (named by its key), each submitted as soon as its planned inputs are done, on the
configured task runner (threads, or Dask); the daily harvest can fan its plan out over child
runs of the ``materialize`` deployment. Everything they call is plain code in
``runner``/``workspace``/``schedule`` that runs without Prefect.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.assets import Asset, AssetProperties, add_asset_metadata
from prefect.cache_policies import NO_CACHE
from prefect.context import AssetContext
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import MaterializingTask

from data_vent.assets.kinds import as_url, get_kind
from data_vent.core.errors import ConfigError
from data_vent.core.plan import PlanItem
from data_vent.core.vocab import Outcome
from data_vent.graph.planner import Plan, ancestors_of
from data_vent.run import runner
from data_vent.run.fanout import parse_fan_out, selection_of, split_plan
from data_vent.run.workspace import Workspace
from data_vent.settings import Settings, get_settings
from data_vent.state.runs import record_run, run_reports
from data_vent.views.report import (
    children_markdown,
    not_planned_rows,
    plan_rows,
    run_markdown,
)

_WORKSPACES: dict[str, Workspace] = {}
_SETTINGS: Settings | None = None
"""The settings ``run_flow`` was given (never a flow parameter: they hold secrets)."""


def _settings() -> Settings:
    return _SETTINGS or get_settings()


TASK_RUNNERS = ("thread", "dask")


def task_runner_for(settings: Settings) -> TaskRunner:
    """The task runner ``settings`` ask for: a thread pool of ``concurrency`` in this
    process, or a dask.distributed cluster (``dask_address``; else a local cluster of
    ``dask_workers`` processes, one thread each, that inherit these settings)."""
    kind = settings.task_runner.strip().lower()
    if kind == "thread":
        return ThreadPoolTaskRunner(max_workers=settings.concurrency)
    if kind != "dask":
        raise ConfigError(
            f"unknown task runner {settings.task_runner!r}; set DATA_VENT_TASK_RUNNER to "
            f"one of {', '.join(TASK_RUNNERS)}"
        )
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError(
            "DATA_VENT_TASK_RUNNER=dask needs prefect-dask: pip install 'data-vent[dask]'"
        ) from None
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.dask_workers or settings.concurrency,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            "env": settings.to_env(),  # the CLI's options reach the workers too
        }
    )


def _default_task_runner() -> TaskRunner:
    """At import (a deployment's flow run): the runner its worker's environment asks for."""
    try:
        return task_runner_for(get_settings())
    except Exception as exc:  # a bad setting fails the run in run_flow, with its message
        logging.getLogger("data_vent").warning("task runner: %s; using threads", exc)
        return ThreadPoolTaskRunner(max_workers=4)


# The flows reach the module's state only through these functions: a flow or task shipped
# to a Dask worker is pickled by value, and must not drag the open workspaces along.
def _open_workspace(run_id: str, read_only: bool = False) -> Workspace:
    ws = _WORKSPACES[run_id] = Workspace.load(_settings(), read_only=read_only)
    return ws


def _close_workspace(run_id: str) -> None:
    _WORKSPACES.pop(run_id, None)


def _workspace(run_id: str) -> Workspace:
    ws = _WORKSPACES.get(run_id)
    if ws is None:  # a task in another process: load its own
        ws = _open_workspace(run_id)
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


def _execute(
    ws: Workspace,
    plan: Plan,
    run_id: str,
    items: list[PlanItem] | None = None,
    prior: dict[str, runner.AssetOutcome] | None = None,
) -> dict[str, runner.AssetOutcome]:
    """One Prefect task per asset, submitted the moment its planned inputs are done."""
    flow_run_id = _flow_run_id()

    def start(item: PlanItem, done) -> None:
        future = _task_for(ws, item.key).submit(
            item.key,
            item.action,
            [r.to_json() for r in item.reasons],
            run_id,
            flow_run_id,
            item.basis,
        )
        future.add_done_callback(lambda f: done(lambda: _outcome_of(item, f)))

    return ws.execute(plan, run_id, start, items=items, prior=prior, flow_run_id=flow_run_id)


def _outcome_of(item: PlanItem, future) -> runner.AssetOutcome:
    """The task's outcome; a task that crashed (worker lost, ...) is a failed asset."""
    try:
        return runner.AssetOutcome(**future.result(raise_on_failure=False))
    except Exception as exc:
        return runner.AssetOutcome(
            item.key,
            Outcome.FAILED,
            item.action,
            [r.to_json() for r in item.reasons],
            error=f"task crashed: {runner.one_line(exc)}",
        )


def _fan_out(
    ws: Workspace, plan: Plan, run_id: str, mode: str | int
) -> tuple[dict[str, runner.AssetOutcome], list[dict[str, Any]]]:
    """Launch the plan's batches as child runs of the ``materialize`` deployment, wait for
    them, take their outcomes from their run reports, then run the fan-in rest here.

    Each child re-plans its batch and re-checks every asset under its lease, so a retried
    or duplicated child does no work twice. A child that ended without a report (crashed,
    cancelled, timed out) fails its assets."""
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    keys = [it.key for gen in plan.generations for it in gen]
    groups = {k: ws.specs[k].group for k in keys}
    split = split_plan(keys, ws.graph, groups, mode)
    settings = ws.settings
    launched = []
    for i, batch in enumerate(split.batches, 1):
        child_id = f"{run_id}-{i}"
        flow_run = run_deployment(
            name=settings.fan_out_deployment,
            parameters={
                "selection": selection_of(batch),
                "include_upstream": False,
                "observe": False,
                "run_id": child_id,
                "parent_run_id": run_id,
            },
            flow_run_name=f"{run_id} batch {i}/{len(split.batches)}",
            timeout=0,  # launch all, then wait
            tags=["data-vent", "fan-out"],
        )
        launched.append((child_id, batch, flow_run))
    logger.info("fanned out %s assets over %s child runs", len(keys), len(launched))
    states = _wait_for_children(
        {child_id: flow_run for child_id, _, flow_run in launched}, settings.fan_out_timeout
    )
    reports = run_reports(ws.engine, [c for c, _, _ in launched])
    outcomes: dict[str, runner.AssetOutcome] = {}
    children = []
    for child_id, batch, flow_run in launched:
        state, name = states[child_id]
        report = reports.get(child_id)
        got = (report or {}).get("outcomes") or {}
        for key in batch:
            if key in got:
                outcomes[key] = runner.AssetOutcome(**got[key])
            elif report is None:  # the child never finished: its work is not done
                it = plan.item(key)
                outcomes[key] = runner.AssetOutcome(
                    key,
                    Outcome.FAILED,
                    it.action if it else "",
                    error=f"child run {child_id} ended {state} without a report",
                )
        counts = Counter(str(outcomes[k].status) for k in batch if k in outcomes)
        children.append(
            {
                "run_id": child_id,
                "flow_run_id": str(flow_run.id),
                "flow_run_name": name,
                "state": state,
                "keys": batch,
                "counts": dict(counts),
                "ok": bool(report and report["ok"]),
                "lost": report is None,
            }
        )
    rest = [plan.item(k) for k in split.rest]
    if rest:
        outcomes.update(_execute(ws, plan, run_id, items=rest, prior=outcomes))
    return {k: outcomes[k] for k in keys if k in outcomes}, children


def _wait_for_children(flow_runs: dict[str, Any], timeout: float) -> dict[str, tuple]:
    """Poll the child flow runs until each is final or ``timeout`` passes: child run id ->
    (final state type, or why it is not known; flow run name)."""
    import time

    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    states: dict[str, tuple] = {}
    with get_client(sync_client=True) as client:
        while len(states) < len(flow_runs):
            for child_id, flow_run in flow_runs.items():
                if child_id in states:
                    continue
                try:
                    fr = client.read_flow_run(flow_run.id)
                except Exception as exc:  # the API hiccuped: ask again next round
                    get_run_logger().warning("child %s: %s", child_id, runner.one_line(exc))
                    continue
                if fr.state is not None and fr.state.is_final():
                    states[child_id] = (fr.state.type.value, fr.name)
            if len(states) < len(flow_runs):
                if time.monotonic() > deadline:
                    for child_id, flow_run in flow_runs.items():
                        states.setdefault(child_id, ("not finished in time", flow_run.name))
                    break
                time.sleep(2)  # the children take minutes; the API need not be hammered
    return states


def _finish(
    ws: Workspace,
    plan: Plan,
    outcomes: dict,
    run_id: str,
    title: str,
    children: list[dict[str, Any]] | None = None,
    parent_run_id: str | None = None,
    observed: dict[str, Any] | None = None,
) -> dict:
    """The run's result; sources that could not be observed make it not ok (their assets'
    freshness is unknown: a run never reports green for what it could not see). A fan-out's
    parent lists its ``children``; every run leaves its report in the state DB."""
    md = run_markdown(title, plan, outcomes, run_id)
    if children is not None:
        md += children_markdown(children)
    try:
        create_markdown_artifact(md, key="data-vent-run-report", description=title)
    except Exception:
        get_run_logger().warning("could not publish the run report artifact")
    failed = [k for k, o in outcomes.items() if runner.is_failure(o)]
    failed += [f"child run {c['run_id']} ({c['state']})" for c in children or () if c["lost"]]
    result = {
        "run_id": run_id,
        "flow_run_id": _flow_run_id(),
        "plan": plan_rows(plan),
        "not_planned": not_planned_rows(plan),
        "outcomes": {k: o.to_json() for k, o in outcomes.items()},
        "ok": not failed and not (observed or {}).get("failed"),
        "failed": failed,
        "observed": observed,
    }
    if children is not None:
        result["children"] = children
    record_run(
        ws.engine,
        run_id,
        result["outcomes"],
        ok=result["ok"],
        title=title,
        parent_run_id=parent_run_id,
        flow_run_id=result["flow_run_id"],
    )
    return result


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


@flow(name="daily-harvest", log_prints=True, task_runner=_default_task_runner())
def daily_harvest(prune: bool = False) -> dict[str, Any]:
    """Sync specs -> observe every source -> plan -> materialize what is stale.

    ``prune``: let the sync deactivate more than half of the active assets.
    """
    logger = get_run_logger()
    run_id = runner.new_run_id()
    ws = _open_workspace(run_id)
    try:
        sync = ws.sync(prune)
        logger.info("specs: %s", sync.summary())
        repaired = repair_task(run_id)
        observed = observe_task(run_id)
        logger.info(
            "observed %s sources, %s changed", observed["observed"], len(observed["changed"])
        )
        plan = ws.plan()
        runner.notify("plan", plan)
        logger.info("plan: %s assets in %s generations", len(plan), len(plan.generations))
        mode = parse_fan_out(ws.settings.fan_out)
        children = None
        if mode is not None and len(plan):
            outcomes, children = _fan_out(ws, plan, run_id, mode)
        else:
            outcomes = _execute(ws, plan, run_id)
        result = _finish(
            ws, plan, outcomes, run_id, "daily harvest", children, observed=observed
        )
        result["repaired"] = repaired
        return _final(result)
    finally:
        _close_workspace(run_id)


@flow(name="materialize", log_prints=True, task_runner=_default_task_runner())
def materialize(
    selection: str,
    force: bool = False,
    refresh: bool = False,
    dry_run: bool = False,
    include_upstream: bool = True,
    observe: bool = True,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    prune: bool = False,
) -> dict[str, Any]:
    """Rematerialize the selected assets (and their stale ancestors) if stale, or if forced.

    A fan-out's child run gets its ``run_id`` and ``parent_run_id`` from the parent, and
    ``observe=False`` (the parent has just observed every source). A dry run writes
    nothing, not even the specs."""
    run_id = run_id or runner.new_run_id()
    ws = _open_workspace(run_id, read_only=dry_run)
    try:
        if not dry_run:
            ws.sync(prune)
        named = ws.select_anchored(selection).anchors  # what the run may take inputs of
        sources = sorted(ws.sources_of(named)) if observe else []
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
        title = f"materialize {selection}" if len(selection) <= 200 else "materialize (batch)"
        result = _finish(
            ws, plan, outcomes, run_id, title, parent_run_id=parent_run_id, observed=observed
        )
        result["repaired"] = repaired
        return _final(result)
    finally:
        _close_workspace(run_id)


def run_flow(fn, settings: Settings | None = None, **params) -> dict[str, Any]:
    """Call a flow in this process under ``settings`` (default: the environment's), on
    the task runner they ask for (a thread pool of ``concurrency`` by default)."""
    global _SETTINGS
    settings = settings or get_settings()
    bounded = fn.with_options(task_runner=task_runner_for(settings))
    previous, _SETTINGS = _SETTINGS, settings
    try:
        state = bounded(**params, return_state=True)
    finally:
        _SETTINGS = previous
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):  # the flow itself broke (bad config, ...)
        raise result
    return result

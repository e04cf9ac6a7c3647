"""The commands: each parses its options, calls the workspace/runner, and renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from data_vent.cli import render
from data_vent.cli.app import (
    AsJson,
    ConfigDir,
    Prune,
    Selection,
    app,
    console,
    db_app,
    ephemeral_hint,
    err,
    error_line,
    notes,
    read_workspace,
    settings_for,
    workspace,
)
from data_vent.core.errors import BadInput
from data_vent.core.spec import AssetSpec
from data_vent.core.vocab import Outcome
from data_vent.settings import Settings

GRAPH_FORMATS = ("mermaid", "dot", "html")


def asset_row(spec: AssetSpec) -> dict[str, Any]:
    """An asset definition as `assets --json` lists it."""
    policy = spec.freshness
    return {
        "key": spec.key,
        "kind": spec.kind,
        "group": spec.group,
        "deps": list(spec.deps),
        "tags": spec.tags,
        "code_version": spec.code_version,
        "config_hash": spec.config_hash,
        "freshness": None
        if policy is None
        else {
            "warn_seconds": policy.warn.total_seconds() if policy.warn else None,
            "fail_seconds": policy.fail.total_seconds() if policy.fail else None,
        },
    }


@app.command()
def assets(selection: Selection = None, config_dir: ConfigDir = None, as_json: AsJson = False):
    """List asset definitions (key, kind, group, deps) as the last harvest recorded them."""
    ws = read_workspace(config_dir)
    keys = ws.select(selection) if selection else set(ws.specs)
    rows = [asset_row(ws.specs[k]) for k in sorted(keys)]
    render.print_json(rows) if as_json else render.assets_table(rows)
    notes(ws)


@app.command()
def plan(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    force: Annotated[bool, typer.Option(help="Plan selected assets even if fresh.")] = False,
    refresh: Annotated[
        bool, typer.Option(help="Plan a full rebuild of the selection.")
    ] = False,
    no_upstream: Annotated[bool, typer.Option(help="Do not take in stale ancestors.")] = False,
    as_json: AsJson = False,
):
    """The dry run: what a run would materialize, with the action and reasons (values) of each.

    Plans the config folder against the state DB, writing nothing; observe sources first
    (`data-vent observe`) for fresh news.
    """
    from data_vent.views.report import plan_rows

    ws = workspace(config_dir, read_only=True)
    p = ws.plan(selection, force=force, refresh=refresh, include_upstream=not no_upstream)
    render.print_json(plan_rows(p)) if as_json else render.plan_table(p)
    notes(ws)


@app.command()
def materialize(
    selection: Annotated[str, typer.Argument(help="Asset selection (see `plan --help`).")],
    config_dir: ConfigDir = None,
    force: Annotated[bool, typer.Option(help="Materialize even if fresh.")] = False,
    refresh: Annotated[bool, typer.Option(help="Rebuild the selected stores whole.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan, change nothing.")] = False,
    no_upstream: Annotated[bool, typer.Option(help="Do not take in stale ancestors.")] = False,
    prune: Prune = False,
):
    """Rematerialize the selected assets that are stale (all of them with --force)."""
    ws = workspace(config_dir, read_only=dry_run)
    ws.select(selection)  # bad selection: exit 2 before Prefect starts
    if dry_run:
        render.plan_table(
            ws.plan(selection, force=force, refresh=refresh, include_upstream=not no_upstream)
        )
        notes(ws)
        return
    ws.check_sync(prune)  # a sync it would refuse: exit 2 before Prefect starts
    check_storage(ws.settings)
    result = _run_with_progress(
        "materialize",
        ws.settings,
        selection=selection,
        force=force,
        refresh=refresh,
        include_upstream=not no_upstream,
        prune=prune,
    )
    raise typer.Exit(0 if result["ok"] else 1)


@app.command()
def harvest(config_dir: ConfigDir = None, prune: Prune = False):
    """Run the daily freshness-driven harvest once (observe, plan, materialize the stale)."""
    ws = workspace(config_dir)  # bad config: exit 2 before Prefect starts
    ws.check_sync(prune)  # and a sync it would refuse
    check_storage(ws.settings)
    result = _run_with_progress("daily_harvest", ws.settings, prune=prune)
    raise typer.Exit(0 if result["ok"] else 1)


def _repairs(ws: Any, keys: set[str] | None) -> dict[str, str]:
    """Stores a killed writer left (``status``'s ``needs_repair``): from the state DB (leases
    past expiry), and from the stores' journals where this machine can read the storage."""
    if ws.engine is None:
        return {}
    try:
        return ws.pending_repairs(keys)
    except Exception as exc:  # the state DB alone answers; the storage is a courtesy
        err.print(f"note: stores not checked for repair: {exc}", highlight=False)
        return ws.pending_repairs(keys, check_storage=False)


def check_storage(settings: Settings) -> None:
    """A writing command's storage root must be writable: exit 2 before anything starts."""
    from data_vent.run.preflight import check_storage as check

    check(settings)


def _run_with_progress(flow_name: str, settings: Settings, **params: Any) -> dict[str, Any]:
    """Run a flow with a progress bar; then the summary (stdout) and one line on stderr per
    failed asset and per source that could not be observed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from data_vent import flows
    from data_vent.run import runner

    ephemeral_hint()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a pipe or a log file gets no bar (nor its newline)
    ) as progress:
        bar = progress.add_task("planning", total=None)

        def listen(event: str, payload: Any) -> None:
            if event == "plan":
                progress.update(bar, total=len(payload), description="materializing")
            elif event == "asset_done":
                progress.advance(bar)

        runner.add_listener(listen)
        try:
            result = flows.run_flow(getattr(flows, flow_name), settings=settings, **params)
        finally:
            runner.remove_listener(listen)
    render.run_summary(result)
    for key, out in result["outcomes"].items():  # the failures; what they held up is in
        if out["status"] == Outcome.FAILED:  # the summary ("skipped: upstream failed")
            error_line(f"{key} failed: {out['error'] or 'no message'}")
    for message in (result.get("observed") or {}).get("errors", []):
        error_line(f"could not observe OOI: {message}")
    return result


@app.command()
def status(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    stale: Annotated[bool, typer.Option("--stale", help="Only stale assets.")] = False,
    as_json: AsJson = False,
):
    """Harvest status from the state DB: last success, coverage, lags, freshness, reasons.

    The rows are the `stream_status` view's (README, "The state database"); `--json` follows
    data_vent/schemas/status-v1.json.
    """
    from data_vent.views.status import status_document, status_rows

    ws = read_workspace(config_dir)
    snap = ws.snapshot()
    p = ws.plan(snapshot=snap, check_outputs=False)
    keys = ws.select(selection, snap) if selection else None
    rows = status_rows(ws, p, snap, keys, repairs=_repairs(ws, keys))
    if stale:
        rows = [r for r in rows if r["stale"]]
    if as_json:
        render.print_json(status_document(rows, ws.config_changes, p.now))
    else:
        render.status_table(rows)
    notes(ws)


@app.command()
def why(
    asset: Annotated[str, typer.Argument(help="Asset key.")], config_dir: ConfigDir = None
):
    """Why an asset is (or is not) stale and planned, down to the root cause (state DB)."""
    from data_vent.views.status import explain

    ws = read_workspace(config_dir)
    if asset not in ws.specs:
        ws.select(asset)  # raises with suggestions
    render.lines(explain(ws, ws.plan(check_outputs=False), asset))
    notes(ws)


@app.command()
def history(
    asset: Annotated[str, typer.Argument(help="Asset key.")],
    config_dir: ConfigDir = None,
    limit: Annotated[int, typer.Option(help="How many attempts.")] = 20,
    as_json: AsJson = False,
):
    """Past materializations of an asset with their provenance, newest first."""
    from data_vent.state.materializations import history as attempts

    ws = read_workspace(config_dir)
    rows = attempts(ws.engine, asset, limit) if ws.engine is not None else []
    if not rows and asset not in ws.specs:
        ws.select(asset)  # raises with suggestions
    render.print_json(rows) if as_json else render.history_table(asset, rows)
    notes(ws)


@app.command()
def observe(selection: Selection = None, config_dir: ConfigDir = None, prune: Prune = False):
    """Ask OOI (metadata/times, one call per instrument) what moved; record the changes."""
    ws = workspace(config_dir)
    ws.sync(prune)
    keys = ws.sources_of(ws.select(selection)) if selection else None
    seen = ws.observe(keys)
    render.observe_table(seen.changed, seen.total)
    for message in seen.messages():
        error_line(f"could not observe OOI: {message}")
    raise typer.Exit(1 if seen.failures else 0)


@db_app.command("upgrade")
def db_upgrade():
    """Create or upgrade the state DB schema (alembic) to the latest revision."""
    from data_vent.state.db import make_engine
    from data_vent.state.migrate import upgrade

    before, after = upgrade(make_engine(settings_for(None).resolved_db_url()))
    console.print(f"state DB at revision {after} (was {before or 'empty'})")


@app.command()
def graph(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="mermaid, dot or html.")
    ] = "mermaid",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to a file.")
    ] = None,
):
    """The lineage graph (mermaid, dot, or a self-contained HTML page coloured by status)."""
    from data_vent.views import lineage
    from data_vent.views.status import status_map, status_rows

    if fmt not in GRAPH_FORMATS:
        raise BadInput(f"unknown --format {fmt!r}: use mermaid, dot or html")
    ws = read_workspace(config_dir)
    snap = ws.snapshot()
    p = ws.plan(snapshot=snap, check_outputs=False)
    keys = ws.select(selection, snap) if selection else set(ws.specs)
    sub = ws.graph.subgraph(keys)
    colours = status_map(ws, p, snap, keys)
    if fmt == "mermaid":
        text = lineage.to_mermaid(sub, colours)
    elif fmt == "dot":
        text = lineage.to_dot(sub, colours)
    else:
        from data_vent.views.fleet import daily_rows, fleet_png

        stores = sorted(k for k in keys if f"{k}/availability" in ws.specs)
        try:
            picture = fleet_png(daily_rows(stores, ws.settings))
        except Exception as exc:  # the state DB alone answers; the storage is a courtesy
            err.print(f"note: no availability picture: cannot read the storage ({exc})")
            picture = None
        text = lineage.to_html(
            sub,
            colours,
            status_rows(ws, p, snap, keys),
            groups={k: ws.specs[k].group for k in keys},
            fleet_png=picture,
        )
    if output:
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        render.write_text(text)
    notes(ws)


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="Where the stores and the state DB go.")] = Path(
        ".data-vent/demo"
    ),
    days: Annotated[int, typer.Option(help="Simulated days to harvest.")] = 2,
):
    """Harvest the 31 demo streams (7 replay real OOI files) for two simulated days."""
    from data_vent.demo import run_demo
    from data_vent.run.workspace import Workspace
    from data_vent.views.status import status_rows

    result = run_demo(home, days=days, console=console)
    ws = Workspace.from_state_db(result["settings"])
    snap = ws.snapshot()
    p = ws.plan(snapshot=snap, check_outputs=False)
    render.stream_table([r for r in status_rows(ws, p, snap) if r["kind"] == "ooi_stream"])
    raise typer.Exit(0 if all(run["ok"] for run in result["runs"]) else 1)


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8090,
    streams: Annotated[
        Path | None,
        typer.Option(
            "--streams",
            help="Folder of harvest config YAMLs whose streams it serves "
            "(default: the 31 demo streams).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Bind address; loopback only unless --allow-remote.")
    ] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback bind.")] = False,
    ready_delay: Annotated[
        float, typer.Option(help="Seconds until requests are ready.")
    ] = 3.0,
    clock: Annotated[
        str | None,
        typer.Option(
            help="Simulated UTC time to start at, e.g. 2024-01-01T00:00 (default: now)."
        ),
    ] = None,
):
    """Serve the bundled OOI M2M simulator (same paths as OOINet) until interrupted."""
    from data_vent.core.timeutil import parse_ooi_time
    from data_vent.demo import DEMO_CONFIGS
    from data_vent.simulator import serve_forever

    if streams is not None and not streams.is_dir():
        raise BadInput(f"--streams {streams}: not a folder of harvest config YAMLs")
    try:
        start = parse_ooi_time(clock) if clock else None
    except ValueError:
        raise BadInput(
            f"--clock {clock!r} is not an ISO time (e.g. 2024-01-01T00:00Z)"
        ) from None
    try:
        serve_forever(
            port,
            streams or DEMO_CONFIGS,
            host,
            start=start,
            ready_delay=ready_delay,
            allow_remote=allow_remote,
        )
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot bind {host}:{port}: {exc.strerror}; try --port 0") from None


@app.command()
def repair(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    as_json: AsJson = False,
):
    """Finish or undo the writes killed writers left (each store under its lease).

    A store whose lease a live writer holds is left to it. Every run does this before it
    plans; this command does it now, for the selected assets (all by default).
    """
    from data_vent.run.runner import new_run_id

    ws = workspace(config_dir)
    keys = ws.select(selection) if selection else None
    ws.sync()
    outcomes = ws.repair(new_run_id(), keys)
    rows = {k: o.to_json() for k, o in outcomes.items()}
    render.print_json(rows) if as_json else render.repair_table(rows)
    raise typer.Exit(1 if any(o["status"] == "failed" for o in rows.values()) else 0)


@app.command()
def ingest(
    asset: Annotated[str, typer.Argument(help="Stream store key (the OOI table name).")],
    files: Annotated[list[Path], typer.Argument(help="OOI NetCDF files to ingest.")],
    config_dir: ConfigDir = None,
    rebuild: Annotated[bool, typer.Option(help="Replace the store with these files.")] = False,
):
    """Ingest local OOI NetCDF files into an asset's store, with the harvest's append rules."""
    from data_vent import ncio
    from data_vent.run import runner
    from data_vent.run.ingest import ingest as ingest_into

    def told(event: str, payload: Any) -> None:
        if event == "lease_wait":
            err.print(
                f"{payload['key']} is being written by {payload['holder']}; waiting for it "
                f"(up to DATA_VENT_LEASE_WAIT seconds)",
                highlight=False,
            )

    ws = workspace(config_dir)
    for f in files:
        if not f.is_file():
            raise BadInput(f"{f}: no such file; pass OOI NetCDF files")
        why = ncio.problem(f)
        if why is not None:
            raise BadInput(f"{f}: {why}; pass the OOI NetCDF files of {asset}")
    check_storage(ws.settings)
    runner.add_listener(told)
    try:
        outcome = ingest_into(ws, asset, files, rebuild)
    finally:
        runner.remove_listener(told)
    console.print(
        f"{asset}: {outcome.rows_added} rows added, {outcome.rows_total} in all, "
        f"{outcome.time_min} … {outcome.time_max}"
    )
    for rule in outcome.rules_applied:
        console.print(f"  rule {rule.get('rule')}: {rule}", highlight=False)

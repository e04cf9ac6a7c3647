"""The ``data-vent`` command line (typer + rich).

Exit codes: 0 all ok, 1 an asset failed, 2 bad input (config, selection, URL, file).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from data_vent.errors import BadInput, DataVentError
from data_vent.report import fmt_coverage, fmt_reasons

app = typer.Typer(
    help="data-vent: harvest OOI streams into Zarr stores as an asset graph on Prefect 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="State database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigDir = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        "-c",
        help="Folder of harvest config YAMLs (default: $DATA_VENT_CONFIG_DIR).",
        show_default=False,
    ),
]
Selection = Annotated[
    str | None,
    typer.Argument(
        help="Asset selection, e.g. CE04OSPS-SF01B-2A-CTDPFA107-streamed-"
        'ctdpf_sbe43_sample, key:"RS03*", +catalog, tag:site=CE04OSPS, '
        'status:stale, "group:RS01SBPS and not reason:missing".'
    ),
]


def _apply(config_dir: Path | None) -> None:
    if config_dir is not None:
        os.environ["DATA_VENT_CONFIG_DIR"] = str(config_dir)


def _workspace(config_dir: Path | None):
    _apply(config_dir)
    from data_vent.settings import get_settings
    from data_vent.workspace import Workspace

    return Workspace.load(get_settings())


def _reasons_text(reasons: list[Any]) -> str:
    return "; ".join(r.describe() for r in reasons) or "-"


def _prefect_quiet() -> None:
    """Offline-friendly Prefect defaults for CLI runs (the caller's env wins)."""
    defaults = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)


@app.command()
def assets(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
):
    """List asset definitions (key, kind, group, deps)."""
    ws = _workspace(config_dir)
    keys = ws.select(selection) if selection else set(ws.specs)
    rows = [
        {
            "key": k,
            "kind": ws.specs[k].kind,
            "group": ws.specs[k].group,
            "deps": list(ws.specs[k].deps),
            "tags": ws.specs[k].tags,
        }
        for k in sorted(keys)
    ]
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    t = Table("asset", "kind", "group", "deps", title=f"{len(rows)} assets")
    for r in rows:
        deps = ", ".join(r["deps"]) if len(r["deps"]) < 4 else f"{len(r['deps'])} assets"
        t.add_row(r["key"], r["kind"], r["group"] or "-", deps or "-")
    console.print(t)


def _print_plan(plan) -> None:
    if not len(plan):
        console.print("[green]Nothing to do:[/green] every selected asset is fresh.")
    else:
        t = Table(
            "gen",
            "asset",
            "action",
            "reasons",
            title=f"plan: {len(plan)} assets in {len(plan.generations)} generations",
        )
        for g, gen in enumerate(plan.generations):
            for it in gen:
                t.add_row(str(g), it.key, it.action, _reasons_text(it.reasons))
        console.print(t)


@app.command()
def plan(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    force: Annotated[bool, typer.Option(help="Plan selected assets even if fresh.")] = False,
    refresh: Annotated[
        bool, typer.Option(help="Plan a full rebuild of the selection.")
    ] = False,
    no_upstream: Annotated[bool, typer.Option(help="Do not take in stale ancestors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
):
    """The dry run: what a run would materialize, with the action and reasons (values) of each.

    Reads the state DB only; observe sources first (`data-vent observe`) for fresh news.
    """
    ws = _workspace(config_dir)
    ws.sync()
    p = ws.plan(selection, force=force, refresh=refresh, include_upstream=not no_upstream)
    if as_json:
        from data_vent.report import plan_rows

        print(json.dumps(plan_rows(p), indent=1, default=str))
        return
    _print_plan(p)


@app.command()
def materialize(
    selection: Annotated[str, typer.Argument(help="Asset selection (see `plan --help`).")],
    config_dir: ConfigDir = None,
    force: Annotated[bool, typer.Option(help="Materialize even if fresh.")] = False,
    refresh: Annotated[bool, typer.Option(help="Rebuild the selected stores whole.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan, change nothing.")] = False,
    no_upstream: Annotated[bool, typer.Option(help="Do not take in stale ancestors.")] = False,
):
    """Rematerialize the selected assets that are stale (all of them with --force)."""
    ws = _workspace(config_dir)
    ws.select(selection)  # bad selection: exit 2 before Prefect starts
    if dry_run:
        ws.sync()
        _print_plan(
            ws.plan(selection, force=force, refresh=refresh, include_upstream=not no_upstream)
        )
        return
    result = _run_with_progress(
        "materialize",
        selection=selection,
        force=force,
        refresh=refresh,
        include_upstream=not no_upstream,
    )
    raise typer.Exit(0 if result["ok"] else 1)


@app.command()
def harvest(config_dir: ConfigDir = None):
    """Run the daily freshness-driven harvest once (observe, plan, materialize the stale)."""
    _workspace(config_dir)
    result = _run_with_progress("daily_harvest")
    raise typer.Exit(0 if result["ok"] else 1)


def _run_with_progress(flow_name: str, **params) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from data_vent import flows, runner

    _prefect_quiet()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        bar = progress.add_task("planning", total=None)

        def listen(event: str, payload: Any) -> None:
            if event == "plan":
                progress.update(bar, total=len(payload), description="materializing")
            elif event == "asset_done":
                progress.advance(bar)

        runner.add_listener(listen)
        try:
            result = flows.run_flow(getattr(flows, flow_name), **params)
        finally:
            runner.remove_listener(listen)
    _print_summary(result)
    return result


def _print_summary(result: dict[str, Any]) -> None:
    outcomes = result["outcomes"]
    if not outcomes:
        console.print("[green]Nothing to do:[/green] every selected asset is fresh.")
        return
    t = Table(
        "asset",
        "action",
        "status",
        "rows",
        "last time",
        "s",
        "error",
        title=f"run {result['run_id']}",
    )
    colors = {"success": "green", "failed": "red", "skipped": "yellow", "waiting": "cyan"}
    for key, o in outcomes.items():
        c = colors.get(o["status"], "white")
        t.add_row(
            key,
            o["action"],
            f"[{c}]{o['status']}[/{c}]",
            str(o["rows"]) if o["rows"] is not None else "-",
            o["time_max"] or "-",
            f"{o['seconds']:.1f}",
            o["error"] or "",
        )
    console.print(t)
    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


@app.command()
def status(
    selection: Selection = None,
    config_dir: ConfigDir = None,
    stale: Annotated[bool, typer.Option("--stale", help="Only stale assets.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
):
    """Harvest status: last success, time coverage, rows, lags, freshness and reasons."""
    from data_vent.status import status_rows

    ws = _workspace(config_dir)
    ws.sync()
    snap = ws.snapshot()
    p = ws.plan(snapshot=snap)
    keys = ws.select(selection, snap) if selection else None
    rows = status_rows(ws, p, snap, keys)
    if stale:
        rows = [r for r in rows if r["stale"]]
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return
    t = Table(
        "asset",
        "last success",
        "coverage",
        "rows",
        "harvest lag",
        "source lag",
        "fresh",
        "reasons",
        title=f"{len(rows)} assets",
    )
    colors = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "UNKNOWN": "dim"}
    for r in rows:
        cov, reasons = fmt_coverage(r), fmt_reasons(r)
        c = colors.get(r["freshness"], "white")
        t.add_row(
            r["key"],
            (r["last_success"] or "never")[:16],
            cov,
            str(r["rows"]) if r["rows"] is not None else "-",
            r["harvest_lag"],
            r["source_lag"],
            f"[{c}]{r['freshness']}[/{c}]",
            reasons,
        )
    console.print(t)


@app.command()
def why(
    asset: Annotated[str, typer.Argument(help="Asset key.")], config_dir: ConfigDir = None
):
    """Why an asset is (or is not) planned, down to the root cause."""
    from data_vent.status import explain

    ws = _workspace(config_dir)
    if asset not in ws.specs:
        ws.select(asset)  # raises with suggestions
    ws.sync()
    for line in explain(ws, ws.plan(), asset):
        console.print(line, highlight=False)


@app.command()
def history(
    asset: Annotated[str, typer.Argument(help="Asset key.")],
    config_dir: ConfigDir = None,
    limit: Annotated[int, typer.Option(help="How many attempts.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
):
    """Past materializations of an asset with their provenance, newest first."""
    from data_vent.status import history as hist

    ws = _workspace(config_dir)
    if asset not in ws.specs:
        ws.select(asset)
    rows = hist(ws.engine, asset, limit)
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return
    t = Table(
        "id",
        "run",
        "started",
        "status",
        "action",
        "rows",
        "last time",
        "reasons/error",
        title=asset,
    )
    for r in rows:
        why_ = r["error"] or "; ".join(x["code"] for x in r["reasons"])
        t.add_row(
            str(r["id"]),
            r["run_id"],
            (r["started_at"] or "")[:19],
            r["status"],
            r["action"],
            str(r["rows"]) if r["rows"] is not None else "-",
            (r["time_max"] or "-")[:19],
            why_,
        )
    console.print(t)


@app.command()
def observe(selection: Selection = None, config_dir: ConfigDir = None):
    """Ask OOI (metadata/times, one call per instrument) what moved; record the changes."""
    ws = _workspace(config_dir)
    ws.sync()
    keys = None
    if selection:
        sel = ws.select(selection)
        keys = ws.sources_of(sel)
    changed, total = ws.observe(keys)
    t = Table("source", "begin", "end", "count", title=f"{len(changed)} of {total} moved")
    for o in changed:
        t.add_row(o.source_key, str(o.begin_time), str(o.end_time), str(o.count))
    console.print(t)


@db_app.command("upgrade")
def db_upgrade():
    """Create or upgrade the state DB schema (alembic) to the latest revision."""
    from data_vent.settings import get_settings
    from data_vent.state.db import make_engine
    from data_vent.state.migrate import upgrade

    settings = get_settings()
    before, after = upgrade(make_engine(settings.resolved_db_url()))
    console.print(f"state DB at revision {after} (was {before or 'empty'})")


def main() -> None:
    """Entry point: one-line errors and exit codes instead of tracebacks."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except DataVentError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except (typer.BadParameter, typer.Abort) as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # last resort: still one line
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("DATA_VENT_DEBUG"):
            raise
        from data_vent.runner import one_line, redact
        from data_vent.settings import get_settings

        err.print(
            f"[red]error:[/red] {redact(one_line(exc), get_settings())} "
            "(set DATA_VENT_DEBUG=1 for the traceback)",
            highlight=False,
        )
        sys.exit(1)


__all__ = ["app", "main", "BadInput"]


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
    from data_vent import lineage
    from data_vent.status import status_rows

    if fmt not in ("mermaid", "dot", "html"):
        raise BadInput(f"unknown --format {fmt!r}: use mermaid, dot or html")
    ws = _workspace(config_dir)
    ws.sync()
    snap = ws.snapshot()
    p = ws.plan(snapshot=snap)
    keys = ws.select(selection, snap) if selection else set(ws.specs)
    sub = ws.graph.subgraph(keys)
    rows = status_rows(ws, p, snap, keys)
    by_key = {r["key"]: r for r in rows}
    status_map = {k: lineage.node_status(k, by_key, ws.specs[k].observable) for k in keys}
    if fmt == "mermaid":
        text = lineage.to_mermaid(sub, status_map)
    elif fmt == "dot":
        text = lineage.to_dot(sub, status_map)
    else:
        text = lineage.to_html(sub, status_map, rows)
    if output:
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="Where the stores and the state DB go.")] = Path(
        ".data-vent/demo"
    ),
    days: Annotated[int, typer.Option(help="Simulated days to harvest.")] = 2,
):
    """Harvest 25 real RCA streams from the bundled OOI simulator for two simulated days."""
    from data_vent.demo import run_demo
    from data_vent.status import status_rows
    from data_vent.workspace import Workspace

    _prefect_quiet()
    result = run_demo(home, days=days, console=console)
    from data_vent.settings import get_settings

    ws = Workspace.load(get_settings())
    snap = ws.snapshot()
    p = ws.plan(snapshot=snap)
    rows = [r for r in status_rows(ws, p, snap) if r["kind"] == "ooi_stream"]
    t = Table("stream", "coverage", "rows", "harvest lag", "fresh", title="stream stores")
    for r in rows:
        t.add_row(
            r["key"],
            fmt_coverage(r),
            str(r["rows"]),
            r["harvest_lag"],
            r["freshness"],
        )
    console.print(t)
    ok = all(run["ok"] for run in result["runs"])
    raise typer.Exit(0 if ok else 1)


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8090,
    streams: Annotated[
        Path | None,
        typer.Option(
            "--streams",
            help="Folder of harvest config YAMLs whose streams it serves "
            "(default: the 25 demo streams).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Bind address; loopback only unless --allow-remote.")
    ] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback bind.")] = False,
    ready_delay: Annotated[
        float, typer.Option(help="Seconds until requests are ready.")
    ] = 3.0,
):
    """Serve the bundled OOI M2M simulator (same paths as OOINet) until interrupted."""
    from data_vent.demo import DEMO_CONFIGS
    from data_vent.ooi.simulator import serve_forever

    if streams is not None and not streams.is_dir():
        raise BadInput(f"--streams {streams}: not a folder of harvest config YAMLs")
    try:
        serve_forever(
            port,
            streams or DEMO_CONFIGS,
            host,
            ready_delay=ready_delay,
            allow_remote=allow_remote,
        )
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot bind {host}:{port}: {exc.strerror}; try --port 0") from None


@app.command()
def ingest(
    asset: Annotated[str, typer.Argument(help="Stream store key (the OOI table name).")],
    files: Annotated[list[Path], typer.Argument(help="OOI NetCDF files to ingest.")],
    config_dir: ConfigDir = None,
    rebuild: Annotated[bool, typer.Option(help="Replace the store with these files.")] = False,
):
    """Ingest local OOI NetCDF files into an asset's store, with the harvest's append rules."""
    from data_vent.runner import new_run_id
    from data_vent.state import repo
    from data_vent.store import ingest_files
    from data_vent.timeutil import utcnow

    ws = _workspace(config_dir)
    if asset not in ws.specs:
        ws.select(asset)
    spec = ws.specs[asset]
    if spec.kind != "ooi_stream":
        raise BadInput(f"{asset} is a {spec.kind} asset; ingest takes a stream store")
    for f in files:
        if not f.is_file():
            raise BadInput(f"{f}: no such file")
    ws.sync()
    started = utcnow()
    url = f"{ws.settings.resolved_storage()}/{asset}"
    outcome = ingest_files(
        url,
        [str(f) for f in files],
        ws.settings.storage_options(),
        mode="rebuild" if rebuild else "append",
        chunk_target_bytes=ws.settings.chunk_target_bytes,
        table=asset,
    )
    if outcome.needs_rebuild:
        raise BadInput(
            f"{asset}: these files need a rebuild ({outcome.rebuild_reason}); "
            "pass --rebuild with every file of the stream"
        )
    repo.record_materialization(
        ws.engine,
        asset_key=asset,
        run_id=new_run_id(),
        status="success",
        action="rebuild" if rebuild else "append",
        reasons=[],
        started_at=started,
        code_version=spec.code_version,
        config_hash=spec.config_hash,
        data_version=outcome.data_version,
        time_min=outcome.time_min,
        time_max=outcome.time_max,
        rows=outcome.rows_total,
        details={
            "ingest": [f.name for f in files],
            "rows_added": outcome.rows_added,
            "rules_applied": outcome.rules_applied,
        },
    )
    console.print(
        f"{asset}: {outcome.rows_added} rows added, {outcome.rows_total} in all, "
        f"{outcome.time_min} … {outcome.time_max}"
    )
    for rule in outcome.rules_applied:
        console.print(f"  rule {rule.get('rule')}: {rule}", highlight=False)

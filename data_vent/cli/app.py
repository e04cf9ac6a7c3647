"""The typer application, its shared options, the settings it builds, and ``main``: the one
place an error becomes an exit code and one line on stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from data_vent.cli.quiet import route_logs
from data_vent.settings import Settings, get_settings

app = typer.Typer(
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
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]
Prune = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Let the sync deactivate more than half of the active assets "
        "(their configs are really gone).",
    ),
]


def settings_for(config_dir: Path | None) -> Settings:
    """The run's settings: the environment's, with the command line's options on top."""
    return get_settings(config_dir=config_dir)


def workspace(config_dir: Path | None, *, read_only: bool = False):
    """The workspace of a command that works from the config folder (specs, graph, state
    DB); ``read_only`` (``plan``, dry runs): nothing is synced, migrated or written."""
    from data_vent.run.workspace import Workspace

    return Workspace.load(settings_for(config_dir), read_only=read_only)


def read_workspace(config_dir: Path | None):
    """The workspace of a read-only command: the state DB alone (the specs its last sync
    recorded), read-only; a config folder, when set, is compared with it, never synced."""
    from data_vent.run.workspace import Workspace

    return Workspace.from_state_db(settings_for(config_dir))


def notes(ws) -> None:
    """What a reader should know about the answer, on stderr after it (an error stays the
    only line): no state DB yet, or a config folder that differs from the DB."""
    from data_vent.views.status import changes_note

    if ws.engine is None:
        text = "note: no state DB yet (nothing harvested): every asset is missing"
    elif not ws.specs:
        text = "note: the state DB records no assets yet: run `data-vent harvest`"
    else:
        text = changes_note(ws.config_changes)
    if text:
        err.print(text, highlight=False)


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's and data-vent's logs.")
    ] = False,
) -> None:
    """data-vent: harvest OOI streams into Zarr stores as an asset graph on Prefect 3."""
    route_logs(verbose)


def error_line(message: str) -> None:
    """One line on stderr (secrets masked): how every error and failure is shown."""
    from data_vent.cli.errors import flat

    err.print(f"[red]error:[/red] {_redacted(flat(message))}", highlight=False)


def _redacted(text: str) -> str:
    from data_vent.run.runner import redact

    try:
        return redact(text, get_settings())
    except Exception:  # the settings themselves are bad: their values are not in `text`
        return text


def _safe_settings() -> Settings | None:
    try:
        return get_settings()
    except Exception:
        return None


_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
"""click's usage errors, as the click that typer uses spells them (typer vendors one)."""


EPHEMERAL_HINT = (
    "hint: no PREFECT_API_URL, so Prefect starts a temporary server for this run (the slow "
    "part); run `prefect server start` once and export "
    "PREFECT_API_URL=http://127.0.0.1:4200/api (README: Deploying with Prefect)"
)


def ephemeral_hint() -> None:
    """One line on stderr when the run has to start Prefect's ephemeral server."""
    from prefect.settings import get_current_settings

    current = get_current_settings()
    if not current.api.url and current.server.ephemeral.enabled:
        err.print(EPHEMERAL_HINT, highlight=False, markup=False, soft_wrap=True)


def main() -> None:
    """Entry point: one-line errors and exit codes instead of tracebacks."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _CLICK_ERROR as exc:  # usage errors: click's message, on one line
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        error_line(f"{where}{exc.format_message()}{hint}")
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        from data_vent.cli.errors import classify

        if os.environ.get("DATA_VENT_DEBUG"):
            raise
        shown = classify(exc, _safe_settings)
        error_line(str(shown))
        sys.exit(shown.exit_code)

"""The typer application, its shared options, the settings it builds, and ``main``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from data_vent.core.errors import DataVentError
from data_vent.settings import Settings, get_settings

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
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]


def settings_for(config_dir: Path | None) -> Settings:
    """The run's settings: the environment's, with the command line's options on top."""
    return get_settings(config_dir=config_dir)


def workspace(config_dir: Path | None):
    """The workspace of the command (specs, graph, state DB) under its settings."""
    from data_vent.run.workspace import Workspace

    return Workspace.load(settings_for(config_dir))


def prefect_quiet() -> None:
    """Offline-friendly Prefect defaults for CLI runs (the caller's env wins)."""
    defaults = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)


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
        from data_vent.run.runner import one_line, redact

        err.print(
            f"[red]error:[/red] {redact(one_line(exc), get_settings())} "
            "(set DATA_VENT_DEBUG=1 for the traceback)",
            highlight=False,
        )
        sys.exit(1)

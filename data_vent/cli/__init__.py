"""The ``data-vent`` command line (typer + rich): ``app`` holds the commands, ``main`` runs it.

Exit codes: 0 all ok, 1 an asset failed, 2 bad input (config, selection, URL, file).
"""

from data_vent.cli import commands as _commands  # noqa: F401  (registers the commands)
from data_vent.cli.app import app, main

__all__ = ["app", "main"]

"""The ``data-vent`` command line (typer + rich): ``app`` holds the commands, ``main`` runs it.

Exit codes: 0 all ok, 1 an asset failed or a service did not answer, 2 bad input (config,
selection, setting, URL, file, refused credentials).
"""

from data_vent.cli.quiet import apply_prefect_env

apply_prefect_env()  # before anything below can import Prefect: it reads them on import

from data_vent.cli import commands as _commands  # noqa: E402,F401  (registers the commands)
from data_vent.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]

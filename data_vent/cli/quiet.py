"""What the command line lets through besides its own output: Prefect's settings and logs.

Prefect reads its settings when it is imported and configures logging then, so they are put
in the environment before anything can import it (``data_vent.cli`` calls
``apply_prefect_env`` first thing): the ephemeral API server gets 120 s to start (its 20 s
default fails on a loaded host), logs stay local and at WARNING, no analytics. The caller's
own values win.

By default the CLI speaks for itself (a summary, one line per failed asset, one line per
error) and every log line (Prefect's run chatter and tracebacks, urllib3's retry warnings,
data-vent's own) is kept off the terminal; ``-v`` lets them through at INFO.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}
CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"
"""Prefect's console handler (logging.yml ``handlers.console.level``)."""
_OURS = "_DATA_VENT_QUIET"
"""Marks the console level as set by us (so ``-v`` may lift it, not a caller's own)."""


def apply_prefect_env(environ: MutableMapping[str, str] | None = None) -> None:
    """Prefect's settings for a CLI run, before Prefect is imported; the caller's env wins."""
    env = os.environ if environ is None else environ
    for key, value in PREFECT_DEFAULTS.items():
        env.setdefault(key, value)
    if CONSOLE_LEVEL not in env:
        env[CONSOLE_LEVEL] = "CRITICAL"
        env[_OURS] = "1"


def route_logs(verbose: bool) -> None:
    """Quiet (default): no log line reaches the terminal. Verbose: Prefect's logs and
    data-vent's at INFO, on stderr."""
    ours = logging.getLogger("data_vent")
    root = logging.getLogger()
    if not verbose:
        if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
            root.addHandler(logging.NullHandler())  # no "last resort" printing either
        logging.captureWarnings(True)  # library warnings are log records too: kept off
        ours.propagate = True
        return
    os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
    if os.environ.pop(_OURS, None):
        os.environ[CONSOLE_LEVEL] = "NOTSET"
    if "prefect.logging.configuration" in sys.modules:  # already set up: redo it
        from prefect.logging.configuration import setup_logging

        setup_logging(incremental=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    )
    ours.handlers = [handler]
    ours.setLevel(logging.INFO)
    ours.propagate = False
    root.setLevel(logging.INFO)

"""Issue 8, defect 5: Prefect settings arrive before Prefect is imported, and a run speaks
in one line per failed asset plus the summary.

The CLI used to set the ephemeral-server startup timeout and the log level after Prefect
was imported: the 20 s default applied (harvests failed on a loaded host) and Prefect's INFO
lines and task tracebacks flooded every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kinds import DAY1, three_levels, write_sources
from tests.reliability.harness import ROOT, run_process

PROBE = """
import json, sys
assert "prefect" not in sys.modules
import data_vent.cli  # what the console script imports first
from prefect.settings import get_current_settings
s = get_current_settings()
print(json.dumps({
    "startup_timeout": s.server.ephemeral.startup_timeout_seconds,
    "log_level": s.logging.level,
    "to_api": s.logging.to_api.enabled,
    "analytics": s.server.analytics_enabled,
}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    clean.pop("DO_NOT_TRACK", None)
    res = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        timeout=120,
        check=True,
    )
    return json.loads(res.stdout)


@pytest.mark.slow  # a subprocess
def test_prefect_sees_the_cli_settings_from_the_first_import():
    assert _probe() == {
        "startup_timeout": 120,
        "log_level": "WARNING",
        "to_api": False,
        "analytics": False,
    }


@pytest.mark.slow  # a subprocess
def test_the_callers_prefect_settings_win():
    seen = _probe(
        PREFECT_LOGGING_LEVEL="ERROR", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300"
    )
    assert seen["log_level"] == "ERROR" and seen["startup_timeout"] == 300


@pytest.fixture
def failing_graph(isolated_env: Path, tmp_path: Path) -> dict[str, str]:
    """src -> a, b; (a, b) -> ab -> top; b fails."""
    cfg = tmp_path / "configs"
    three_levels(cfg)
    write_sources(isolated_env, DAY1)
    (isolated_env / "fail").mkdir()
    (isolated_env / "fail" / "b").write_text("")
    return {"DATA_VENT_HOME": str(isolated_env), "DATA_VENT_CONFIG_DIR": str(cfg)}


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_run_shows_one_line_per_failed_asset_and_the_summary(failing_graph: dict):
    res = run_process(["materialize", "*"], {**failing_graph})
    assert res.code == 1
    assert res.err_lines == [res.err_lines[0]] and res.err_lines[0].startswith(
        "error: b failed: "
    ), res.err
    assert "asked to fail b" in res.err_lines[0]
    for noise in ("INFO", "Traceback", "Flow run", "Task run", "WARNING"):
        assert noise not in res.err + res.out, noise
    assert "1 failed" in res.out and "success" in res.out  # the summary, on stdout


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_verbose_shows_prefects_logs(failing_graph: dict):
    res = run_process(["-v", "materialize", "*"], {**failing_graph})
    assert res.code == 1
    assert "Flow run" in res.err and "INFO" in res.err

"""The README's "Deploying with Prefect" commands, run exactly as printed: a real
``prefect server start``, a process work pool and worker, ``prefect deploy --all`` from the
repository root, and ``prefect deployment run`` of ``materialize`` (a real run harvesting the
RS03 streams from the OOI simulator on loopback, then a dry run that publishes its plan).

Lines ending in ``&`` are started as background processes (from Python, so they can be
stopped); ``export`` lines set the environment of the lines after them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import xarray as xr

from data_vent.core.timeutil import utcnow
from data_vent.demo import DEMO_CONFIGS
from data_vent.simulator import Simulator
from tests.polling import poll_until
from tests.processes import (
    BIN,
    ROOT,
    healthy,
    prefect_env,
    run_in_repo,
    seeded_prefect_home,
    stop,
)

pytestmark = pytest.mark.slow  # a Prefect server, a worker, flow runs in subprocesses


def readme_commands() -> list[str]:
    """The first bash block of the README's Prefect section, comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Deploying with Prefect", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the README's Prefect section"
    lines = [re.sub(r"\s+#\s.*$", "", ln).rstrip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_readme_prefect_commands_as_printed(tmp_path: Path, prefect_db_template: Path):
    commands = readme_commands()
    assert any("deployment run materialize/materialize" in c for c in commands)
    if not port_free(4200):
        reason = "127.0.0.1:4200 is taken: the README's server cannot start here"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    home = tmp_path / "home"
    env = prefect_env(
        seeded_prefect_home(tmp_path / "prefect-home", prefect_db_template),
        drop=("DATA_VENT_",),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PREFECT_WORKER_QUERY_SECONDS="1",
        DATA_VENT_HOME=str(home),
        DATA_VENT_CONFIG_DIR=str(DEMO_CONFIGS),
        DATA_VENT_OOI_POLL_INTERVAL="0.1",
        DATA_VENT_CHUNK_TARGET_BYTES="1048576",
        OOI_USERNAME="sim-user",
        OOI_TOKEN="sim-token",
    )
    start = (utcnow() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    sim = Simulator(DEMO_CONFIGS, ready_delay=0.2, start=start, workdir=tmp_path / "sim")
    env["DATA_VENT_OOI_URL"] = sim.start()
    background: list[subprocess.Popen] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    outputs: dict[str, subprocess.CompletedProcess] = {}
    try:
        for i, line in enumerate(commands):
            if m := re.fullmatch(r"export (\w+)=(\S+)", line):
                env[m.group(1)] = m.group(2)
                continue
            if line.endswith("&"):
                out = (logs / f"{i}.log").open("wb")
                background.append(
                    subprocess.Popen(
                        ["bash", "-c", f"exec {line[:-1].strip()}"],
                        env=env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                if "server start" in line:
                    poll_until(
                        lambda: healthy("http://127.0.0.1:4200/api"),
                        90,
                        every=0.3,
                        what="prefect server on 127.0.0.1:4200",
                    )
                continue
            res = run_in_repo(["bash", "-c", line], env, timeout=600)
            assert res.returncode == 0, f"{line}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            outputs[line] = res
    finally:
        for proc in reversed(background):
            stop(proc, grace=15)
        sim.stop()

    # the real run harvested the RS03 streams; the dry run planned and changed nothing
    runs = [c for c in commands if "deployment run" in c]
    assert "Completed" in outputs[runs[0]].stdout, outputs[runs[0]].stdout[-2000:]
    rs03 = sorted(p.name for p in (home / "stores").glob("RS03*"))
    expected = sorted(p.stem for p in DEMO_CONFIGS.glob("RS03*.yaml"))  # 7, one real-file
    assert rs03 == expected and len(rs03) >= 6, rs03
    with xr.open_zarr(home / "stores" / rs03[0]) as ds:
        assert ds.sizes["time"] > 0
    assert (home / "stores" / "_derived" / rs03[0] / "availability.png").exists()


def test_readme_run_lines_parse_as_prefect_reads_them():
    """Prefect reads ``-p`` values as JSON first: the printed selection must survive that."""
    from prefect.cli._utilities import load_json_key_values

    from data_vent.graph.selection import parse

    for line in readme_commands():
        if "deployment run" not in line:
            continue
        params = re.findall(r"-p (\S+)", line)
        parsed = load_json_key_values([p.strip("'").replace("'", "") for p in params], "p")
        parse(parsed["selection"])
        assert parsed.get("dry_run", False) in (True, False)

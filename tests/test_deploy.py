"""``prefect.yaml`` deploys: a real ``prefect server start`` on loopback, a process work pool,
``prefect deploy --all`` from the repository root, then the deployments read back by API."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow  # a real `prefect server start` and `prefect deploy`

REPO = Path(__file__).resolve().parents[1]
POOL = "data-vent-process"
BIN = Path(sys.executable).parent


def prefect_exe() -> str:
    exe = BIN / "prefect"
    return str(exe) if exe.exists() else (shutil.which("prefect") or "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (we started it in its own session), then KILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Prefect server on a free loopback port, with its own PREFECT_HOME."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_CLI_PROMPT="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
    )
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            prefect_exe(),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
            "--no-services",
            "--analytics-off",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine needs it
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (tmp_path / "server.log").read_text(errors="replace")[-2000:]
                reason = f"prefect server did not start on 127.0.0.1:{port}: {tail}"
                if os.environ.get("CI", "").lower() == "true":
                    pytest.fail(reason)  # in CI a missing server is a failure, not a skip
                print(f"\n[test_deploy] skipped: {reason}")
                pytest.skip(reason)
            time.sleep(0.2)  # poll interval, bounded by the deadline above
        yield api, env
    finally:
        stop(proc)
        log.close()


def prefect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [prefect_exe(), "--no-prompt", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, f"prefect {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res


async def read_deployments(api: str) -> dict:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api) as client:
        return {
            name: await client.read_deployment_by_name(name)
            for name in ("daily-harvest/daily-harvest", "materialize/materialize")
        }


def test_prefect_yaml_deploys_both_flows_on_a_process_pool(prefect_api, tmp_path: Path):
    api, env = prefect_api
    prefect(env, "work-pool", "create", POOL, "--type", "process")
    before = set(os.listdir(REPO))
    prefect(env, "deploy", "--all")
    assert set(os.listdir(REPO)) <= before | {".prefect"}

    deps = asyncio.run(read_deployments(api))
    daily, mat = deps["daily-harvest/daily-harvest"], deps["materialize/materialize"]

    assert daily.entrypoint == "data_vent/flows.py:daily_harvest"
    assert daily.work_pool_name == POOL
    (sched,) = daily.schedules
    assert sched.active
    assert sched.schedule.cron == "0 6 * * *"
    assert sched.schedule.timezone == "America/Los_Angeles"
    assert daily.parameters == {}
    assert daily.global_concurrency_limit is not None
    assert daily.global_concurrency_limit.limit == 1  # two daily runs never overlap

    assert mat.entrypoint == "data_vent/flows.py:materialize"
    assert mat.work_pool_name == POOL
    assert mat.schedules == []
    assert mat.parameters == {
        "selection": "status:stale",
        "force": False,
        "refresh": False,
        "dry_run": False,
    }
    props = mat.parameter_openapi_schema["properties"]
    assert {"selection", "force", "refresh", "dry_run", "include_upstream"} <= set(props)
    assert mat.parameter_openapi_schema["required"] == ["selection"]

    for d in (daily, mat):  # a process worker runs the flows from this checkout
        (step,) = d.pull_steps
        directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
        assert Path(directory).resolve() == REPO

    pools = httpx.post(f"{api}/work_pools/filter", json={}, timeout=10).json()
    assert {p["name"]: p["type"] for p in pools}[POOL] == "process"

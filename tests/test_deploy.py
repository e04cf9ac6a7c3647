"""``prefect.yaml`` deploys: a real ``prefect server start`` on loopback, a process work pool,
``prefect deploy --all`` from the repository root, then the deployments read back by API."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import (
    ROOT,
    free_port,
    prefect_env,
    prefect_exe,
    run_in_repo,
    seeded_prefect_home,
    start_prefect_server,
    stop,
    wait_healthy,
)

pytestmark = pytest.mark.slow  # a real `prefect server start` and `prefect deploy`

POOL = "data-vent-process"


@pytest.fixture
def prefect_api(
    tmp_path: Path, prefect_db_template: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Prefect server on a free loopback port, with its own PREFECT_HOME."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = prefect_env(
        seeded_prefect_home(tmp_path / "prefect-home", prefect_db_template),
        PREFECT_API_URL=api,
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_API_PORT=str(port),
    )
    log = (tmp_path / "server.log").open("wb")
    proc = start_prefect_server(port, env, log)
    try:
        # 120 s: a loaded 2-core machine needs it
        if not wait_healthy(api, proc, timeout=120, every=0.2):
            tail = (tmp_path / "server.log").read_text(errors="replace")[-2000:]
            reason = f"prefect server did not start on 127.0.0.1:{port}: {tail}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(reason)  # in CI a missing server is a failure, not a skip
            print(f"\n[test_deploy] skipped: {reason}")
            pytest.skip(reason)
        yield api, env
    finally:
        stop(proc)
        log.close()


def prefect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    res = run_in_repo([prefect_exe(), "--no-prompt", *args], env, timeout=120)
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
    before = set(os.listdir(ROOT))
    prefect(env, "deploy", "--all")
    assert set(os.listdir(ROOT)) <= before | {".prefect"}

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
        assert Path(directory).resolve() == ROOT

    pools = httpx.post(f"{api}/work_pools/filter", json={}, timeout=10).json()
    assert {p["name"]: p["type"] for p in pools}[POOL] == "process"

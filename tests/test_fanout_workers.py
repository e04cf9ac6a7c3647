"""Fan-out across workers: a real ``prefect server``, two process workers on one pool,
PostgreSQL, a moto S3 server and the OOI simulator. ``prefect deployment run
daily-harvest/daily-harvest`` fans the plan out over child runs of ``materialize``."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import s3fs
import xarray as xr
from sqlalchemy import select

from data_vent.simulator import Simulator
from data_vent.state.db import get_engine
from data_vent.state.models import Asset, Materialization, RunReport
from tests.processes import ROOT, prefect_exe, stop
from tests.store_fixtures import s3_bucket, s3_server  # noqa: F401 - fixtures
from tests.test_deploy import POOL, prefect, prefect_api  # noqa: F401

pytestmark = pytest.mark.slow

DEMO = ROOT / "data_vent" / "demo_configs"
M, A, R = Materialization.__table__, Asset.__table__, RunReport.__table__


async def parent_report(api: str) -> tuple[str, str]:
    """(state, report markdown) of the daily-harvest flow run."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        DeploymentFilter,
        DeploymentFilterId,
    )

    async with PrefectClient(api) as client:
        dep = await client.read_deployment_by_name("daily-harvest/daily-harvest")
        (run,) = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
        )
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    return run.state.type.value, "\n".join(str(a.data) for a in arts)


def test_daily_harvest_fans_out_over_two_workers(
    prefect_api,  # noqa: F811
    s3_bucket,  # noqa: F811
    pg_url: str,
    tmp_path: Path,
) -> None:
    api, prefect_env = prefect_api
    bucket, s3_opts = s3_bucket
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in sorted(DEMO.glob("*.yaml"))[:4]:
        (configs / path.name).write_text(path.read_text())
    get_engine(pg_url)  # migrated once, before the workers start
    prefect(prefect_env, "work-pool", "create", POOL, "--type", "process")
    prefect(prefect_env, "deploy", "--all")
    workers = []
    with Simulator(configs, ready_delay=0.2, workdir=tmp_path / "sim") as sim:
        env = {
            **prefect_env,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "DATA_VENT_DB_URL": pg_url,
            "DATA_VENT_STORAGE": f"{bucket}/harvest",
            "DATA_VENT_S3_KEY": s3_opts["key"],
            "DATA_VENT_S3_SECRET": s3_opts["secret"],
            "DATA_VENT_S3_ENDPOINT_URL": s3_opts["client_kwargs"]["endpoint_url"],
            "DATA_VENT_CONFIG_DIR": str(configs),
            "DATA_VENT_OOI_URL": sim.base_url,
            "DATA_VENT_OOI_POLL_INTERVAL": "0.1",
            "DATA_VENT_CHUNK_TARGET_BYTES": "1048576",
            "DATA_VENT_FAN_OUT": "2",  # a stream store and its availability per child
        }
        try:
            for name in ("wA", "wB"):
                log = (tmp_path / f"{name}.log").open("wb")
                workers.append(
                    subprocess.Popen(
                        [prefect_exe(), "worker", "start", "--pool", POOL, "--limit", "2"]
                        + ["--name", name],
                        env={**env, "DATA_VENT_HOME": str(tmp_path / name)}
                        | {"DATA_VENT_WORKER_NAME": name},
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
            run = subprocess.run(
                [prefect_exe(), "deployment", "run", "daily-harvest/daily-harvest", "--watch"]
                + ["--watch-timeout", "400"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=450,
            )
        finally:
            for w in workers:
                stop(w)
        if run.returncode != 0:  # shown in full by pytest under "Captured stdout"
            print(run.stdout, run.stderr)
            for n in ("wA", "wB"):
                print(f"--- worker {n}\n", (tmp_path / f"{n}.log").read_text(errors="replace"))
        assert run.returncode == 0, "the daily-harvest run failed (its logs are above)"
        expected = {t: s.summary(sim.now_ntp)["count"] for t, s in sim.streams.items()}

    engine = get_engine(pg_url)
    with engine.connect() as conn:
        assets = [r.key for r in conn.execute(select(A.c.key).where(~A.c.observable))]
        rows = conn.execute(select(M.c.asset_key, M.c.status, M.c.worker, M.c.run_id)).all()
        reports = {r.run_id: r for r in conn.execute(select(R))}
    successes = [r for r in rows if r.status == "success"]
    assert Counter(r.asset_key for r in successes) == Counter(assets)  # each exactly once
    assert {r.worker.split(":")[0] for r in successes if r.asset_key != "catalog"} == {
        "wA",
        "wB",
    }  # both workers did work
    (parent,) = [r for r in reports.values() if r.parent_run_id is None]
    children = sorted(r.run_id for r in reports.values() if r.parent_run_id == parent.run_id)
    assert len(children) == 4 and all(reports[c].ok for c in children) and parent.ok
    # the parent's report lists every child and its outcome
    state, report = asyncio.run(parent_report(api))
    assert state == "COMPLETED"
    for child in children:
        line = next(x for x in report.splitlines() if f"`{child}`" in x)
        assert "COMPLETED" in line and "2 success" in line
    # the stores in the bucket are complete
    fs = s3fs.S3FileSystem(**s3_opts)
    for table, count in expected.items():
        with xr.open_zarr(
            fs.get_mapper(f"{bucket}/harvest/{table}"), consolidated=True, decode_times=False
        ) as ds:
            assert ds.sizes["time"] == count, table

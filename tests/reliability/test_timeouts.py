"""Issue 8, defect 9: every S3 and HTTP call has a deadline from the settings.

Under load a store test hung past pytest's 300 s timeout inside zarr -> s3fs. Each test
here points data-vent at a loopback server that accepts connections and never answers, and
checks that the call fails in bounded time with one line, instead of waiting forever.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from data_vent.core.plan import PlanItem
from data_vent.core.records import Reason
from data_vent.core.vocab import Action, Outcome, ReasonCode
from data_vent.run.runner import materialize_asset
from data_vent.run.workspace import Workspace
from data_vent.settings import Settings, get_settings
from tests.reliability.harness import run_main

DATA = Path(__file__).resolve().parents[1] / "data"
CTD = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
VELPT = "CP01CNSM-MFD35-04-VELPTA000-recovered_host-velpt_ab_dcl_instrument_recovered"
VELPT_FILE = DATA / "netcdf" / "stream_engine_output" / f"{VELPT}__se0.8.5.nc"
BOUND = 60.0
"""Seconds a hung call may take with 1 s timeouts and no retries (s3fs adds 5 tries)."""


@pytest.fixture
def hung() -> Iterator[str]:
    """http://127.0.0.1:PORT of a server that accepts (the backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(32)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    cfg = tmp_path / "configs"
    cfg.mkdir()
    shutil.copy(DATA / "configs" / f"{CTD}.yaml", cfg)
    (cfg / f"{VELPT}.yaml").write_text(
        "instrument: CP01CNSM-MFD35-04-VELPTA000\n"
        "stream: {method: recovered_host, name: velpt_ab_dcl_instrument_recovered}\n"
    )
    return cfg


def s3_env(home: Path, cfg: Path, endpoint: str) -> dict[str, str]:
    return {
        "DATA_VENT_HOME": str(home),
        "DATA_VENT_CONFIG_DIR": str(cfg),
        "DATA_VENT_STORAGE": "s3://ooi-data/stores",
        "DATA_VENT_S3_ENDPOINT_URL": endpoint,
        "DATA_VENT_S3_KEY": "key",
        "DATA_VENT_S3_SECRET": "secret-of-s3",
        "DATA_VENT_S3_CONNECT_TIMEOUT": "1",
        "DATA_VENT_S3_READ_TIMEOUT": "1",
        "DATA_VENT_S3_RETRIES": "0",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def test_s3_calls_carry_the_timeouts_of_the_settings():
    settings = Settings(
        storage="s3://bucket/prefix",
        s3_connect_timeout=3,
        s3_read_timeout=7,
        s3_retries=2,
        s3_key="k",
        s3_secret="s",
    )
    fs, _ = fsspec.core.url_to_fs("s3://bucket/prefix/x", **settings.storage_options())
    assert fs.config_kwargs["connect_timeout"] == 3
    assert fs.config_kwargs["read_timeout"] == 7
    assert fs.config_kwargs["retries"]["max_attempts"] == 3


@pytest.mark.slow  # waits on timeouts
def test_a_hung_s3_endpoint_fails_a_writing_command_with_one_line(
    hung: str, configs: Path, isolated_env: Path, capfd, monkeypatch
):
    env = s3_env(isolated_env, configs, hung)
    t0 = time.monotonic()
    res = run_main(["ingest", VELPT, str(VELPT_FILE)], env, capfd, monkeypatch)
    took = time.monotonic() - t0
    assert res.code == 1, res.err
    line = res.one_error_line()
    assert "does not answer" in line and "DATA_VENT_S3_ENDPOINT_URL" in line
    assert "secret-of-s3" not in res.err
    assert took < BOUND


@pytest.mark.slow  # waits on timeouts
def test_a_hung_s3_endpoint_fails_the_asset_not_the_run(
    hung: str, configs: Path, isolated_env: Path, monkeypatch
):
    """Inside a run, the store write times out: the asset fails with a one-line error and
    the runner moves on, in bounded time."""
    for key, value in s3_env(isolated_env, configs, hung).items():
        monkeypatch.setenv(key, value)
    ws = Workspace.load(get_settings())
    ws.sync()
    item = PlanItem(CTD, Action.FULL, [Reason(ReasonCode.MISSING)])
    t0 = time.monotonic()
    out = materialize_asset(item, ws.specs, ws.settings, ws.engine, "run-hung-s3")
    took = time.monotonic() - t0
    assert out.status == Outcome.FAILED
    assert out.error and "\n" not in out.error and "secret-of-s3" not in out.error
    assert took < BOUND


@pytest.mark.slow  # waits on timeouts
def test_a_hung_ooi_endpoint_fails_with_one_line(
    hung: str, configs: Path, isolated_env: Path, capfd, monkeypatch
):
    env = {
        "DATA_VENT_HOME": str(isolated_env),
        "DATA_VENT_CONFIG_DIR": str(configs),
        "DATA_VENT_OOI_URL": f"{hung}/api/m2m",
        "DATA_VENT_OOI_CONNECT_TIMEOUT": "1",
        "DATA_VENT_OOI_READ_TIMEOUT": "1",
        "DATA_VENT_OOI_RETRIES": "1",
        "DATA_VENT_OOI_BACKOFF": "0",
    }
    t0 = time.monotonic()
    res = run_main(["observe"], env, capfd, monkeypatch)
    took = time.monotonic() - t0
    assert res.code == 1, res.err
    line = res.one_error_line()
    assert "timed out" in line and "DATA_VENT_OOI" in line
    assert took < 20

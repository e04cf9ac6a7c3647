"""The `data-vent` command line: plan, materialize, status, why, history, ingest, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from data_vent.cli import app
from data_vent.ncio import load_dataset
from tests.kinds import DAY1, three_levels, write_sources
from tests.processes import run_cli

NETCDF = Path(__file__).parent / "data" / "netcdf" / "stream_engine_output"
GLIDER = "CE05MOAS-GL319-05-CTDGVM000-recovered_host-ctdgv_m_glider_instrument_recovered"


def dv(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a fresh process (on the session's Prefect API)."""
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    return run_cli(*args, **({"PREFECT_API_URL": api} if api else {}))


@pytest.fixture
def graph_env(isolated_env: Path, tmp_path: Path, monkeypatch) -> Path:
    cfg = tmp_path / "configs"
    three_levels(cfg)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(cfg))
    write_sources(isolated_env, DAY1)
    return isolated_env


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_materialize_status_why_history(graph_env: Path):
    runner = CliRunner()
    plan = runner.invoke(app, ["plan", "--json"])
    assert plan.exit_code == 0, plan.output
    assert {r["key"]: r["action"] for r in json.loads(plan.stdout)} == {
        "a": "full",
        "b": "full",
        "ab": "full",
        "top": "full",
    }

    res = dv("materialize", "+top")
    assert res.returncode == 0, res.stderr
    assert "4 success" in res.stdout

    status = runner.invoke(app, ["status", "--json"])
    rows = {r["key"]: r for r in json.loads(status.stdout)["assets"]}
    assert rows["a"]["store_rows"] == 100 and rows["a"]["freshness"] == "PASS"
    assert rows["a"]["store_end"] == "2024-01-02T00:00:00" and not rows["top"]["stale"]
    stale = json.loads(runner.invoke(app, ["status", "--stale", "--json"]).stdout)
    assert stale["assets"] == []

    write_sources(
        graph_env,
        {
            "src/a": ("2024-01-01T00:00:00", "2024-01-03T00:00:00", 150),
            "src/b": ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 50),
        },
    )
    runner.invoke(app, ["observe"])
    why = runner.invoke(app, ["why", "top"])
    assert why.exit_code == 0
    text = " ".join(why.stdout.split())
    assert "top: planned, action rematerialize" in text
    assert "because source_advanced" in text and "source_end=2024-01-03" in text
    assert "because upstream_planned" in text
    assert "b: not planned" not in text  # b is not on the path to the root cause
    stale = json.loads(runner.invoke(app, ["status", "--stale", "--json"]).stdout)["assets"]
    reasons = {r["key"]: {x["code"] for x in r["reasons"]} for r in stale}
    assert reasons == {
        "a": {"source_advanced"},
        "ab": {"upstream_planned"},
        "top": {"upstream_planned"},
    }
    again = dv("materialize", "status:stale+")
    assert again.returncode == 0, again.stderr
    assert "3 success" in again.stdout

    hist = json.loads(runner.invoke(app, ["history", "a", "--json"]).stdout)
    assert [h["action"] for h in hist] == ["append", "full"]
    assert hist[0]["reasons"][0]["code"] == "source_advanced"
    assert hist[0]["input_versions"]["src/a"]["count"] == 150


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_failed_asset_exit_1(graph_env: Path):
    (graph_env / "fail").mkdir()
    (graph_env / "fail" / "b").write_text("")
    res = dv("materialize", "*")
    assert res.returncode == 1
    assert "asked to fail b" in res.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["plan", "a and ("], "at position 7"),
        (["plan", "nosuch"], "unknown asset key 'nosuch'"),
        (["materialize", "status:bogus"], "status"),
        (["why", "nosuch"], "unknown asset key"),
        (["graph", "--format", "png"], "unknown --format 'png'"),
    ],
)
@pytest.mark.slow  # CLI subprocesses
@pytest.mark.slow  # CLI subprocesses
def test_bad_input_exit_2_one_line(graph_env: Path, args: list[str], expected: str):
    res = dv(*args)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert expected in lines[0]
    assert "Traceback" not in res.stderr


@pytest.mark.slow  # CLI subprocesses
def test_ingest_backfills_a_store_and_records_it(
    isolated_env: Path, tmp_path: Path, stream_config, monkeypatch
):
    stream_config(GLIDER)
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", "1048576")
    files = [str(NETCDF / f"deployment{d}_{GLIDER}.nc") for d in ("0003", "0006")]
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", GLIDER, *files])
    assert res.exit_code == 0, res.output
    expected = sum(load_dataset(f).sizes["obs"] for f in files)
    store = xr.open_zarr(isolated_env / "stores" / GLIDER, consolidated=True)
    assert store.sizes["time"] == expected
    hist = json.loads(runner.invoke(app, ["history", GLIDER, "--json"]).stdout)
    assert hist[0]["rows"] == expected and hist[0]["details"]["ingest"] == [
        Path(f).name for f in files
    ]
    # again: nothing is duplicated
    assert runner.invoke(app, ["ingest", GLIDER, files[1]]).exit_code == 0
    assert xr.open_zarr(isolated_env / "stores" / GLIDER).sizes["time"] == expected
    # bad input: a missing file, a non-store asset
    missing = dv("ingest", GLIDER, str(tmp_path / "nope.nc"))
    assert missing.returncode == 2 and "nope.nc: no such file" in missing.stderr
    wrong = dv("ingest", f"ooi/{GLIDER}", files[0])
    assert wrong.returncode == 2 and "takes a stream store" in wrong.stderr

"""What a Pangeo reader gets: catalogs that open with the current intake (and intake 0.7), a
STAC catalog that validates, and an availability picture per stream that shows its gaps.

Real parts: stores harvested from the OOI simulator on loopback, a moto S3 server through
s3fs, intake 2 and (in a subprocess) intake 0.7, pystac's validator on the core schemas.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import s3fs
import xarray as xr
import yaml

from data_vent.run import runner
from data_vent.run.workspace import Workspace
from data_vent.settings import get_settings
from tests import store_fixtures as F

pytest_plugins = [F.__name__]
pytestmark = pytest.mark.slow  # the OOI simulator, moto, subprocesses

ROOT = Path(__file__).parent.parent
NETCDF = Path(__file__).parent / "data" / "netcdf" / "stream_engine_output"
TABLES = F.SIM_TABLES
GLIDER = "CE05MOAS-GL319-05-CTDGVM000-recovered_host-ctdgv_m_glider_instrument_recovered"
INTAKE_07 = ["intake==0.7.0", "intake-xarray==0.7.0", "entrypoints", "appdirs"]


@pytest.fixture(scope="session")
def intake07(tmp_path_factory) -> Path:
    """intake 0.7 and intake-xarray 0.7 installed aside (pip --target), on this venv's
    xarray, zarr, dask and fsspec; cached in the venv between sessions."""
    target = Path(sys.prefix) / "intake07"
    if not (target / "intake" / "__init__.py").exists():
        res = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
             str(target), *INTAKE_07],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if res.returncode != 0:
            reason = f"cannot install intake 0.7 from the package index: {res.stderr[-500:]}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return target


def test_local_catalogs_open_in_intake_2_and_0_7_after_a_move(
    isolated_env: Path, tmp_path: Path, monkeypatch, intake07: Path
):
    import intake

    expected = F.harvest_sim_tables(tmp_path, monkeypatch)
    stores = isolated_env / "stores"
    text = (stores / "catalog.yaml").read_text()
    assert str(stores) not in text  # relative to the catalog, not absolute
    moved = tmp_path / "moved" / "elsewhere"
    shutil.copytree(stores, moved)
    shutil.rmtree(stores)

    cat = intake.open_catalog(str(moved / "catalog.yaml"))
    assert sorted(cat) == sorted(TABLES)
    for t in TABLES:
        ds = cat[t].to_dask()
        assert ds.sizes["time"] == expected[t].size
        raw = xr.open_zarr(moved / t, decode_times=False)
        np.testing.assert_array_equal(raw["time"].values, expected[t])
    meta = yaml.safe_load((moved / "catalog.yaml").read_text())["sources"][TABLES[0]][
        "metadata"
    ]
    assert meta["time_coverage_end"] is not None and meta["rows"] == expected[TABLES[0]].size

    script = (
        "import json, sys, intake\n"
        "cat = intake.open_catalog(sys.argv[1])\n"
        "print(json.dumps([intake.__version__, "
        "{k: int(cat[k].to_dask().sizes['time']) for k in cat}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(intake07)}
    res = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, str(moved / "catalog.yaml")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    version, sizes = json.loads(res.stdout.splitlines()[-1])
    assert version.startswith("0.7")
    assert sizes == {t: int(expected[t].size) for t in TABLES}


def test_stac_catalog_validates_and_opens(isolated_env: Path, tmp_path: Path, monkeypatch):
    import pystac
    from pystac.validation import validate_dict

    expected = F.harvest_sim_tables(tmp_path, monkeypatch)
    root = isolated_env / "stores" / "stac"
    cat = pystac.Catalog.from_file(str(root / "catalog.json"))
    collections = {c.id: c for c in cat.get_children()}
    assert set(collections) == {"CE04OSPS", "RS03AXPS"}  # one per site
    items = {i.id: i for i in cat.get_items(recursive=True)}
    assert set(items) == set(TABLES)
    for path in root.rglob("*.json"):  # the core schemas pystac ships (no network)
        data = json.loads(path.read_text())
        data["stac_extensions"] = []
        validate_dict(data)
    for t in TABLES:
        item = items[t]
        assert item.collection_id == t.split("-")[0]
        start = datetime.fromisoformat(item.properties["start_datetime"].replace("Z", ""))
        with xr.open_zarr(isolated_env / "stores" / t) as ds:
            assert np.datetime64(start) == ds["time"].values[0]
            for name, var in ds.data_vars.items():  # every variable, with its units
                props = item.properties["cube:variables"][name]
                assert props["dimensions"] == list(var.dims)
                if "units" in var.attrs:
                    assert props["unit"] == var.attrs["units"]
        asset = item.assets["data"]
        assert asset.media_type == "application/vnd+zarr" and asset.roles == ["data"]
        assert not Path(asset.href).is_absolute() or "://" in asset.href
        assert set(item.stac_extensions) == {
            "https://stac-extensions.github.io/datacube/v2.2.0/schema.json",
            "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json",
        }
        kwargs = dict(asset.extra_fields["xarray:open_kwargs"])
        assert kwargs.pop("engine") == "zarr"  # a Zarr store, not NetCDF: open_zarr
        opened = xr.open_zarr(asset.get_absolute_href(), **kwargs)
        assert opened.sizes["time"] == expected[t].size
        ext = collections[t.split("-")[0]].extent.temporal.intervals[0]
        assert ext[0] is not None and ext[1] is not None


def test_s3_catalogs_carry_endpoint_and_no_secret(
    isolated_env: Path, tmp_path: Path, monkeypatch, s3_bucket
):
    import intake
    import pystac

    root, opts = s3_bucket
    key, secret = "AKIA-READER-KEY-123", "READER-SECRET-456"
    endpoint = opts["client_kwargs"]["endpoint_url"]
    monkeypatch.setenv("DATA_VENT_STORAGE", root)
    monkeypatch.setenv("DATA_VENT_S3_KEY", key)
    monkeypatch.setenv("DATA_VENT_S3_SECRET", secret)
    monkeypatch.setenv("DATA_VENT_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("DATA_VENT_CATALOG_ANON", "false")  # a private bucket
    s3fs.S3FileSystem.clear_instance_cache()
    expected = F.harvest_sim_tables(tmp_path, monkeypatch)

    fs = s3fs.S3FileSystem(**opts)
    text = fs.cat(f"{root}/catalog.yaml").decode()
    doc = yaml.safe_load(text)
    args = doc["sources"][TABLES[0]]["args"]
    assert args["urlpath"] == f"{root}/{TABLES[0]}"
    assert args["storage_options"] == {
        "anon": False,
        "client_kwargs": {"endpoint_url": endpoint},
    }
    stac_texts = [fs.cat(p).decode() for p in fs.find(f"{root}/stac") if p.endswith(".json")]
    for blob in [text, *stac_texts]:
        assert key not in blob and secret not in blob

    # a reader with the catalog and credentials of their own: intake 2 over the endpoint
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "reader-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "reader-secret")
    s3fs.S3FileSystem.clear_instance_cache()
    local = tmp_path / "catalog.yaml"
    local.write_text(text)
    cat = intake.open_catalog(str(local))
    for t in TABLES:
        assert cat[t].to_dask().sizes["time"] == expected[t].size
    item = pystac.Item.from_dict(
        json.loads(fs.cat(f"{root}/stac/RS03AXPS/{TABLES[1]}/{TABLES[1]}.json"))
    )
    asset = item.assets["data"]
    assert asset.href == f"{root}/{TABLES[1]}"
    assert asset.extra_fields["xarray:storage_options"]["client_kwargs"] == {
        "endpoint_url": endpoint
    }


def test_availability_picture_shows_the_gap(isolated_env: Path, stream_config):
    """Two glider deployments months apart: the picture marks the days without data."""
    from data_vent.run.ingest import ingest

    stream_config(GLIDER)
    files = [NETCDF / f"deployment{d}_{GLIDER}.nc" for d in ("0003", "0006")]
    ws = Workspace.load(get_settings())
    ws.sync()
    ingest(ws, GLIDER, files, False)
    outcomes = ws.execute(ws.plan(f"{GLIDER}/availability"), runner.new_run_id())
    assert outcomes[f"{GLIDER}/availability"].status == "success"

    derived = isolated_env / "stores" / "_derived" / GLIDER
    daily = json.loads((derived / "availability.json").read_text())["daily"]
    days = sorted(daily)
    span = (datetime.fromisoformat(days[-1]) - datetime.fromisoformat(days[0])).days + 1
    assert span > len(days)  # there is a gap between the deployments
    png = (derived / "availability.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    img = imread(str(derived / "availability.png"))[..., :3]
    red = np.all(np.abs(img - np.array([0xC6, 0x28, 0x28]) / 255) < 0.05, axis=-1)
    blue = np.all(np.abs(img - np.array([0x15, 0x65, 0xC0]) / 255) < 0.05, axis=-1)
    assert red.sum() > 20 and blue.sum() > 20  # the gap marks and the data bars

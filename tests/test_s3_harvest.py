"""A harvest whose storage root is S3 (a moto server on loopback, reached through s3fs):
stream stores, availability and the catalog land in the bucket and open with plain xarray;
the S3 keys never reach the state DB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import s3fs
import xarray as xr
import yaml

from tests import store_fixtures as F

pytest_plugins = [F.__name__]

TABLES = F.SIM_TABLES


@pytest.mark.slow  # a moto S3 server
def test_daily_harvest_into_s3(isolated_env: Path, tmp_path: Path, monkeypatch, s3_bucket):
    root, opts = s3_bucket
    key, secret = "AKIA-S3-KEY-123", "S3-SECRET-VALUE-456"
    monkeypatch.setenv("DATA_VENT_STORAGE", root)
    monkeypatch.setenv("DATA_VENT_S3_KEY", key)
    monkeypatch.setenv("DATA_VENT_S3_SECRET", secret)
    monkeypatch.setenv("DATA_VENT_S3_ENDPOINT_URL", opts["client_kwargs"]["endpoint_url"])
    # moto accepts any credentials: the harvest must use the ones from settings
    opts = {**opts, "key": key, "secret": secret}
    s3fs.S3FileSystem.clear_instance_cache()
    expected = F.harvest_sim_tables(tmp_path, monkeypatch)

    fs = s3fs.S3FileSystem(**opts)
    for t in TABLES:
        ds = xr.open_zarr(f"{root}/{t}", storage_options=opts, consolidated=True)
        assert ds.sizes["time"] == expected[t].size
        raw = xr.open_zarr(f"{root}/{t}", storage_options=opts, decode_times=False)
        assert raw["time"].attrs["units"].startswith("seconds since 1900-01-01")
        np.testing.assert_array_equal(raw["time"].values, expected[t])
        avail = json.loads(fs.cat(f"{root}/_derived/{t}/availability.json"))
        assert sum(avail["daily"].values()) == expected[t].size
    catalog = yaml.safe_load(fs.cat(f"{root}/catalog.yaml"))
    assert set(catalog["sources"]) == set(TABLES)
    src = catalog["sources"][TABLES[0]]
    assert src["driver"] == "zarr" and src["args"]["urlpath"] == f"{root}/{TABLES[0]}"
    assert src["args"]["storage_options"] == {  # what a reader needs, never our keys
        "anon": True,
        "client_kwargs": {"endpoint_url": opts["client_kwargs"]["endpoint_url"]},
    }
    for f in isolated_env.glob("state.db*"):
        data = f.read_bytes()
        assert key.encode() not in data and secret.encode() not in data
    assert secret not in fs.cat(f"{root}/catalog.yaml").decode()

"""The same stores on S3 (moto server on loopback, through s3fs)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_vent.store import StreamStore
from data_vent.store.commit import JOURNAL, write_journal

try:
    from tests import store_fixtures as F
except ImportError:
    import store_fixtures as F

pytest_plugins = [F.__name__]


@pytest.mark.slow  # a moto S3 server
def test_append_rebuild_and_plain_reader_on_s3(s3_bucket, tmp_path):
    root, opts = s3_bucket
    url = f"{root}/CE05MOAS-GL319-05-CTDGVM000-recovered_host-ctdgv_m_glider_instrument"
    store = StreamStore(url, opts, chunk_target_bytes=1 << 16)
    assert not store.exists()
    assert store.append_files([F.GLIDER_CTD[0]]).rows_added == 1001
    out = store.append_files([F.GLIDER_CTD[1]])
    assert out.rows_total == 6804 and store.info().rows == 6804
    ds = xr.open_zarr(url, storage_options=opts, consolidated=True)
    assert ds.sizes["time"] == 6804 and np.all(np.diff(ds["time"].values).astype(int) > 0)
    local = str(tmp_path / "local")
    StreamStore(local, chunk_target_bytes=1 << 16).append_files(F.GLIDER_CTD[:2])
    xr.testing.assert_identical(
        ds.load().drop_attrs(), xr.open_zarr(local).load().drop_attrs()
    )

    # a crashed append (journal + an uncommitted array + a chunk beyond the end) repairs
    write_journal(store.loc, {"op": "append", "base_rows": 6804})
    store.loc.fs.pipe_file(f"{store.loc.path('time')}/999", b"junk")
    store.loc.fs.pipe_file(f"{store.loc.path('ghost')}/.zarray", b"{}")
    assert store.repair() is True
    keys = store.loc.list_keys()
    assert JOURNAL not in keys and "time/999" not in keys
    assert not any(k.startswith("ghost/") for k in keys)
    assert store.repair() is False

    # rebuild beside, publish; old keys the new version lacks are gone
    rebuilt = store.rebuild_from_files([F.GLIDER_CTD[0]])
    assert rebuilt.rows_total == 1001
    keys = store.loc.list_keys()
    assert not any(k.startswith("glider_gps_position-m_lat/") for k in keys)
    assert not store.loc.fs.exists(store.loc.root + ".staging")
    ds = xr.open_zarr(url, storage_options=opts, consolidated=True)
    assert ds.sizes["time"] == 1001 and "glider_gps_position-m_lat" not in ds

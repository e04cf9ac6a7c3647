"""Append rules on real files: boundaries, duplicates, schema drift, rebuild."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

from data_vent.ncio import load_dataset, save_dataset
from data_vent.store import AppendConflict, StreamStore

try:
    from tests import store_fixtures as F
except ImportError:
    import store_fixtures as F

pytest_plugins = [F.__name__]


def rules(outcome) -> set[str]:
    return {r["rule"] for r in outcome.rules_applied}


def load(url) -> xr.Dataset:
    return xr.open_zarr(
        url, consolidated=True, mask_and_scale=False, decode_times=False
    ).load()


def assert_consistent(url) -> xr.Dataset:
    ds = load(url)
    t = ds["time"].values
    assert np.all(np.diff(t) > 0) and not np.isnan(t).any()
    for v in ds.data_vars.values():
        if "time" in v.dims:
            assert v.sizes["time"] == t.size
    return ds


def test_glider_ctd_three_se_versions_in_order(tmp_path):
    url = str(tmp_path / "ctd")
    store = StreamStore(url, chunk_target_bytes=1 << 16)
    outs = [store.append_files([p]) for p in F.GLIDER_CTD]
    assert [o.rows_added for o in outs] == [1001, 5803, 10399]
    assert {"new_variable", "missing_variable", "cast_to_store_dtype"} <= rules(outs[1])
    assert "new_variable_filled" in rules(outs[2])
    ds = assert_consistent(url)
    assert ds.sizes["time"] == 17203
    # the 2016 file's deployment was int64: later int32 files cast into it exactly
    assert ds["deployment"].dtype == np.int64
    # a variable that appears later reads as fill for the earlier rows
    assert np.isnan(ds["glider_gps_position-interp_lat"].values[:6804]).all()
    # the same stream built in one batch is identical
    batch = StreamStore(str(tmp_path / "batch"), chunk_target_bytes=1 << 16)
    assert batch.append_files(F.GLIDER_CTD[::-1]).rows_added == 17203
    xr.testing.assert_identical(ds.drop_attrs(), load(str(tmp_path / "batch")).drop_attrs())
    info = store.info()
    assert info.rows == 17203 and info.time_min < info.time_max and info.version
    assert outs[2].data_version and outs[2].data_version != outs[1].data_version


def test_glider_ctd_reverse_order_needs_rebuild(tmp_path):
    url = str(tmp_path / "ctd")
    store = StreamStore(url, chunk_target_bytes=1 << 16)
    assert store.append_files([F.GLIDER_CTD[2]]).rows_added == 10399
    before = store.info()
    older = store.append_files([F.GLIDER_CTD[1]])
    assert older.needs_rebuild and "before the store end" in older.rebuild_reason
    assert older.rows_added == 0 and "older_than_store_end" in rules(older)
    widen = store.append_files([F.GLIDER_CTD[0]])
    assert (
        widen.needs_rebuild and "deployment widens from int32 to int64" in widen.rebuild_reason
    )
    assert store.info() == before  # nothing committed, nothing left behind
    assert not any(".staging" in p.name for p in tmp_path.iterdir())
    rebuilt = store.rebuild_from_files(F.GLIDER_CTD[::-1])
    assert rebuilt.rows_total == 17203 and rebuilt.version > before.version
    xr.testing.assert_identical(
        assert_consistent(url).drop_attrs(),
        load(_build(tmp_path / "ref", F.GLIDER_CTD)).drop_attrs(),
    )
    assert not any("staging" in p.name for p in tmp_path.iterdir())


def _build(path, files, target=1 << 16):
    StreamStore(str(path), chunk_target_bytes=target).append_files(files)
    return str(path)


def test_overlap_trimmed_and_rerun_is_noop(tmp_path):
    a = F.subset(F.CTDPFJ, tmp_path / "a.nc", slice(0, 3000))
    b = F.subset(F.CTDPFJ, tmp_path / "b.nc", slice(2000, 5840))
    url = str(tmp_path / "s")
    store = StreamStore(url, chunk_target_bytes=1 << 12)
    assert store.append_files([a]).rows_added == 3000
    out = store.append_files([b])
    assert out.rows_added == 2840 and out.rows_total == 5840
    assert {
        "rule": "overlap_identical_dropped",
        "variable": "time",
        "count": 1000,
        "file": "b.nc",
    } in out.rules_applied
    again = store.append_files([a, b])
    assert again.rows_added == 0 and not again.committed and again.version == out.version
    full = _build(tmp_path / "full", [F.CTDPFJ])
    xr.testing.assert_identical(assert_consistent(url).drop_attrs(), load(full).drop_attrs())


def test_conflicting_duplicate_is_an_error(tmp_path):
    a = F.subset(F.CTDPFJ, tmp_path / "a.nc", slice(0, 3000))
    b = F.subset(F.CTDPFJ, tmp_path / "b.nc", slice(2000, 4000))
    ds = load_dataset(b, decode_cf=False)
    ds["pressure"].values[10] += 1
    save_dataset(ds, tmp_path / "b2.nc")
    store = StreamStore(str(tmp_path / "s"), chunk_target_bytes=1 << 12)
    store.append_files([a])
    before = store.info()
    with pytest.raises(AppendConflict, match="pressure"):
        store.append_files([tmp_path / "b2.nc"])
    assert store.info() == before


def test_unsorted_and_duplicated_rows_inside_a_file(tmp_path):
    idx = np.r_[np.arange(100, 200)[::-1], np.arange(0, 100), np.arange(50, 60)]
    f = F.subset(F.CTDPFJ, tmp_path / "messy.nc", idx)
    out = StreamStore(str(tmp_path / "s"), chunk_target_bytes=1 << 12).append_files([f])
    assert out.rows_added == 200
    assert {"sorted_within_file", "duplicate_in_file_dropped"} <= rules(out)
    got = assert_consistent(str(tmp_path / "s"))
    ref = load(
        _build(tmp_path / "ref", [F.subset(F.CTDPFJ, tmp_path / "r.nc", slice(0, 200))])
    )
    xr.testing.assert_identical(got.drop_attrs(), ref.drop_attrs())


def test_growing_wavelength_dimension(tmp_path):
    small_early = F.subset(F.NUTNRJ, tmp_path / "e.nc", slice(0, 20), wavelength=slice(0, 200))
    late = F.subset(F.NUTNRJ, tmp_path / "l.nc", slice(20, 53))
    url = str(tmp_path / "s")
    store = StreamStore(url, chunk_target_bytes=1 << 16)
    store.append_files([small_early])
    out = store.append_files([late])
    assert out.needs_rebuild and "wavelength" in out.rebuild_reason
    rebuilt = store.rebuild_from_files([small_early, late])
    assert rebuilt.rows_total == 53 and "dimension_padded" in rules(rebuilt)
    ds = assert_consistent(url)
    assert ds.sizes["wavelength"] == 256
    np.testing.assert_array_equal(ds["wavelength"].values, np.arange(256))
    # the padded part of the early rows holds the fill value, the rest is the source
    spec = ds["spectral_channels"]
    fill = spec.attrs["_FillValue"]
    assert (spec.values[:20, 200:] == fill).all()
    src = load_dataset(F.NUTNRJ, decode_cf=False)["spectral_channels"].values
    np.testing.assert_array_equal(spec.values[:20, :200], src[:20, :200])
    np.testing.assert_array_equal(spec.values[20:], src[20:])
    # a smaller dimension after a larger one is padded on append
    more = F.subset(F.NUTNRJ, tmp_path / "m.nc", slice(0, 1), wavelength=slice(0, 100))
    ds2 = load_dataset(more, decode_cf=False)
    ds2["time"].values[:] = ds["time"].values[-1] + 10
    save_dataset(ds2, tmp_path / "m2.nc")
    out = store.append_files([tmp_path / "m2.nc"])
    assert out.rows_added == 1 and "dimension_padded" in rules(out)


def test_missing_variable_in_integer_without_fill(tmp_path):
    a = F.subset(F.CTDPFJ, tmp_path / "a.nc", slice(0, 100))
    b = F.subset(F.CTDPFJ, tmp_path / "b.nc", slice(100, 200), drop=["deployment"])
    url = str(tmp_path / "s")
    store = StreamStore(url, chunk_target_bytes=1 << 12)
    store.append_files([a])
    out = store.append_files([b])
    assert {"missing_variable", "absent_rows_masked"} <= rules(out)
    g = zarr.open_consolidated(url, mode="r", zarr_format=2)
    dep, absent = g["deployment"], g["deployment_absent"]
    assert dep.dtype == np.int32 and dep.fill_value is None  # no fill: no float for readers
    assert (dep[:100] == 1).all() and not absent[:100].any() and absent[100:].all()


def test_ingest_files_entry(tmp_path):
    from data_vent.store import ingest_files

    out = ingest_files(str(tmp_path / "s"), [F.CTDPFJ], chunk_target_bytes=1 << 14)
    assert out.rows_added == 5840 and out.to_json()["data_version"]
    out = ingest_files(
        str(tmp_path / "s"), [F.CTDPFJ], mode="rebuild", chunk_target_bytes=1 << 14
    )
    assert out.rows_total == 5840 and out.mode == "rebuild"

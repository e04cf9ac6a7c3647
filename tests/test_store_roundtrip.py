"""Every real OOI file converts; every numeric variable and time round-trip exactly."""

from __future__ import annotations

from fractions import Fraction

import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

from data_vent.ncio import load_dataset, netcdf4_file
from data_vent.store import NormalizedFile, StreamStore
from data_vent.store.normalize import (
    DROPPED_STRINGS,
    STR_DTYPE,
    epoch_offset_seconds,
    strings_from_raw,
)

try:  # tests/ as a package or as a rootdir-inserted folder
    from tests import store_fixtures as F
except ImportError:
    import store_fixtures as F

NC_FILES = F.NC_FILES
pytest_plugins = [F.__name__]


def _expected_numeric(var: netCDF4.Variable) -> np.ndarray:
    """Raw file values, with an epoch other than 1900 shifted exactly (Fraction, per value)."""
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[:])
    units = getattr(var, "units", "")
    if raw.dtype.kind != "f" or not units.lower().startswith("seconds since"):
        return raw
    offset = epoch_offset_seconds(units.split("since", 1)[1])
    if offset == 0:
        return raw
    fill = getattr(var, "_FillValue", None)
    out = raw.copy()
    for i, v in np.ndenumerate(raw):
        if np.isnan(v) or (fill is not None and v == fill):
            continue
        out[i] = float(Fraction(float(v)) + offset)
    return out


@pytest.mark.parametrize("path", NC_FILES, ids=lambda p: p.name[:60])
def test_file_round_trips(path, tmp_path):
    url = str(tmp_path / "store")
    outcome = StreamStore(url, chunk_target_bytes=1 << 14).append_files([path])
    assert outcome.committed and outcome.rows_added > 0
    group = zarr.open_consolidated(url, mode="r", zarr_format=2)
    with netcdf4_file(path) as src:
        src.set_auto_chartostring(False)
        rec = "obs" if "obs" in src.dimensions else "time"
        checked = 0
        for name, var in src.variables.items():
            if name == rec and rec == "obs":
                assert name not in group
                continue
            if var.dtype == str or np.dtype(var.dtype).kind == "S":
                if rec in var.dimensions and name not in DROPPED_STRINGS:
                    assert name in group, f"string {name} lost"
                continue
            assert name in group, f"numeric variable {name} was dropped"
            stored = group[name][...]
            expected = _expected_numeric(var)
            assert stored.dtype == expected.dtype, name
            assert stored.shape == expected.shape, name
            np.testing.assert_array_equal(stored, expected, err_msg=name)
            checked += 1
    assert checked > 0
    # the store reads for a plain consumer, time decoded from float64 seconds since 1900
    ds = xr.open_zarr(url, consolidated=True)
    assert "time" in ds.dims and ds.sizes["time"] == outcome.rows_total
    assert group["time"].dtype == np.float64
    assert group["time"].attrs["units"].startswith("seconds since 1900-01-01")
    # the source's coordinates, as plain xarray opens the source file (obs swapped out)
    assert set(ds.coords) == set(load_dataset(path).coords) - {"obs"}
    assert group["time"].compressors[0].get_config()["cname"] == "zstd"
    assert group["time"].compressors[0].get_config()["shuffle"] == 2


@pytest.mark.parametrize("path", NC_FILES, ids=lambda p: p.name[:60])
def test_strings_and_report(path):
    with NormalizedFile(path) as nf:
        ds = nf.dataset()
        for name, reason in nf.report.dropped.items():
            assert name in ("obs", *DROPPED_STRINGS) or "string" in reason, (name, reason)
        for name, spec in nf.specs.items():
            if spec.is_string:
                assert ds[name].dtype == object
                assert all(isinstance(v, str) for v in ds[name].values)
                assert ds[name].attrs.get("_FillValue", "") == ""  # not b"e"


def test_chars_become_strings(tmp_path):
    path = next(p for p in NC_FILES if "VELPTA000-telemetered" in p.name)
    url = str(tmp_path / "s")
    StreamStore(url).append_files([path])
    ds = xr.open_zarr(url, consolidated=True)
    src = load_dataset(path)
    assert list(ds["date_time_string"].values) == [
        v.decode() if isinstance(v, bytes) else v for v in src["date_time_string"].values
    ]
    assert "id" not in ds and "provenance" not in ds
    # integer variables survive at their own dtype for a plain consumer
    raw = xr.open_zarr(url, consolidated=True, mask_and_scale=False)
    assert raw["pressure_mbar"].dtype == np.int32 and raw["status"].dtype == np.uint8


@pytest.mark.parametrize(
    ("name", "coords"),
    [
        ("CE02SHSM-SBD11-04-VELPTA000", {"time", "lat", "lon"}),
        ("CE02SHSP-SP001-08-CTDPFJ000", {"time", "pressure"}),
        (
            "deployment0006_CE05MOAS-GL319-00",
            {"time", "m_gps_lat", "m_gps_lon", "sci_water_pressure_dbar"},
        ),
    ],
)
def test_coordinates_stay_coordinates(tmp_path, name, coords):
    """lat, lon, pressure: coordinates in the source (for plain xarray) and in the store."""
    path = next(p for p in NC_FILES if name in p.name)
    url = str(tmp_path / "s")
    StreamStore(url).append_files([path])
    ds = xr.open_zarr(url, consolidated=True)
    assert set(ds.coords) == coords == set(load_dataset(path).coords) - {"obs"}
    assert all(ds[c].dims == ("time",) for c in coords)
    with NormalizedFile(path) as nf:  # the in-memory view agrees
        assert set(nf.dataset().coords) == coords


def test_coordinates_across_an_append(tmp_path):
    url = str(tmp_path / "ctd")
    store = StreamStore(url, chunk_target_bytes=1 << 14)
    store.append_files([F.GLIDER_CTD[0]])
    assert set(xr.open_zarr(url, consolidated=True).coords) == {"time"}
    store.append_files([F.GLIDER_CTD[1]])  # SE 1.10 declares the CTD pressure a coordinate
    ds = xr.open_zarr(url, consolidated=True)
    assert set(ds.coords) == {"time", "sci_water_pressure_dbar"}
    assert set(ds.coords) == set(load_dataset(F.GLIDER_CTD[1]).coords) - {"obs"}


def test_lazy_open_reads_pieces(tmp_path):
    path = next(p for p in NC_FILES if "CTDPFJ" in p.name)
    with NormalizedFile(path) as nf:
        piece = nf.read("pressure", slice(10, 20))
        assert piece.shape == (10,) and piece.dtype == np.float32
        picked = nf.read("pressure", np.array([5, 3, 3, 100]))
        full = nf.read("pressure")
        np.testing.assert_array_equal(picked, full[[5, 3, 3, 100]])


def test_char_arrays_become_strings_in_one_cast():
    """Vectorized (issue 11.6): ASCII rows in one cast to StringDType, others decoded."""
    raw = np.array(
        [b"2016-01-01T00:00:00", b"caf\xc3\xa9", b"caf\xe9", b"a\x00b", b""], dtype="S19"
    )
    out = strings_from_raw(raw.view("S1").reshape(5, 19), 19)
    assert out.dtype == STR_DTYPE  # no per-row Python objects
    assert list(out) == ["2016-01-01T00:00:00", "café", "café", "a\x00b", ""]
    big = np.full(1_000_000, b"2016-01-01T00:00:00", dtype="S19").view("S1").reshape(-1, 19)
    assert strings_from_raw(big, 19).dtype == STR_DTYPE

"""Metadata across files of one stream: newer attributes win and are recorded (issue 11.4);
integer variables a file lacks keep their dtype for readers (issue 11.5).

Real files (tests/data/netcdf, see ORIGIN.md): the CE05MOAS-GL319 glider PAR stream of
Stream Engine 1.0.0 (deployment 3, 2016) and 1.10.0 (deployment 6), whose variable
attributes differ (``int_ctd_pressure`` gains ``units: dbar``, ``sci_bsipar_temp`` goes from
``deg_C`` to ``ºC``), and cuts of the CE02SHSP CTDPF-J file.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from data_vent.ncio import load_dataset, save_dataset
from data_vent.store import StreamStore

try:
    from tests import store_fixtures as F
except ImportError:
    import store_fixtures as F

pytest_plugins = [F.__name__]

_PAR = "CE05MOAS-GL319-01-PARADM000-recovered_host-parad_m_glider_recovered.nc"
PAR_OLD, PAR_NEW = (F.SE / f"deployment{d}_{_PAR}" for d in ("0003", "0006"))


def by_rule(outcome, rule: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in outcome.rules_applied:
        if r["rule"] == rule:
            out.setdefault(r["variable"], []).append(r)
    return out


def zattrs(url, name: str) -> dict:
    meta = json.loads((url / ".zmetadata").read_text())["metadata"]
    return meta[f"{name}/.zattrs"]


def test_newer_attributes_win_and_each_change_is_recorded(tmp_path):
    url = tmp_path / "ctd"
    store = StreamStore(str(url), chunk_target_bytes=1 << 14)
    store.append_files([F.GLIDER_CTD[0]])
    assert "units" not in zattrs(url, "sci_water_pressure_dbar")
    assert zattrs(url, "glider_gps_position-m_gps_lat")["units"] == "degrees"
    out = store.append_files([F.GLIDER_CTD[1]])
    assert out.committed and out.rows_added == 5803
    # new keys added, changed values taken, for the reader too
    ds = xr.open_zarr(url, consolidated=True)
    assert ds["sci_water_pressure_dbar"].attrs["units"] == "dbar"
    assert ds["glider_gps_position-m_gps_lat"].attrs["units"] == "degree_north"
    assert ds["glider_gps_position-m_gps_lat"].attrs["standard_name"] == "latitude"
    assert ds["m_present_time"].attrs["long_name"] == "Time at the Start of the Cycle"
    # each change recorded; a units change flagged as such
    units = by_rule(out, "units_changed")
    assert units["glider_gps_position-m_gps_lat"][0]["detail"] == "'degrees' -> 'degree_north'"
    assert units["sci_water_pressure_dbar"][0]["detail"] == "None -> 'dbar'"
    assert units["sci_water_pressure_dbar"][0]["file"] == F.GLIDER_CTD[1].name
    added, changed = by_rule(out, "attribute_added"), by_rule(out, "attribute_changed")
    assert any(r["detail"] == "precision=4" for r in added["m_present_time"])
    assert any(r["detail"].startswith("long_name: ") for r in changed["m_present_time"])
    # a re-run changes nothing and records nothing
    again = store.append_files([F.GLIDER_CTD[1]])
    assert not again.committed and not by_rule(again, "attribute_changed")


def test_rebuild_takes_the_newest_file_attributes_whatever_the_order(tmp_path):
    url = tmp_path / "par"
    store = StreamStore(str(url), chunk_target_bytes=1 << 14)
    store.append_files([PAR_OLD])
    assert "units" not in zattrs(url, "int_ctd_pressure")
    assert zattrs(url, "sci_bsipar_temp")["units"] == "deg_C"
    out = store.rebuild_from_files([PAR_NEW, PAR_OLD])
    assert out.committed and out.rows_total == 869 + 10591
    ds = xr.open_zarr(url, consolidated=True)
    assert ds["int_ctd_pressure"].attrs["units"] == "dbar"
    assert ds["sci_bsipar_temp"].attrs["units"] == "ºC"
    assert ds["sci_bsipar_par"].attrs["precision"] == 4
    # a key the newer file lacks is kept
    assert "comment" in zattrs(url, "sci_bsipar_temp")
    units = by_rule(out, "units_changed")
    assert units["sci_bsipar_temp"][0]["detail"] == "'deg_C' -> 'ºC'"
    assert units["int_ctd_pressure"][0]["detail"] == "None -> 'dbar'"
    changes = [r for r in out.rules_applied if r["rule"].startswith(("attribute_", "units_"))]
    assert len(changes) >= 36  # the issue counted 12 added + 24 changed key attributes


# ------------------------------------------------------------------ absent integer variables
QC = [
    "sci_bsipar_temp_qc_executed",
    "sci_bsipar_temp_qc_results",
    "parad_m_par_qc_executed",
    "parad_m_par_qc_results",
]


def test_integer_variables_absent_from_one_file_keep_their_dtype(tmp_path):
    """The 2016 PAR file lacks four uint8 QC variables without _FillValue; a real 255 in the
    newer file stays data, and the mask says which rows are absent."""
    ds = load_dataset(PAR_NEW, decode_cf=False)
    ds["parad_m_par_qc_results"].values[5] = 255
    newer = save_dataset(ds, tmp_path / PAR_NEW.name)
    url = tmp_path / "par"
    out = StreamStore(str(url), chunk_target_bytes=1 << 14).rebuild_from_files(
        [newer, PAR_OLD]
    )
    n_old = 869
    assert by_rule(out, "absent_rows_masked").keys() >= set(QC)
    store = xr.open_zarr(url, consolidated=True)
    plain = load_dataset(PAR_NEW)  # what a plain xarray reader gets from the source file
    for name in QC:
        assert store[name].dtype == plain[name].dtype == np.uint8, name
        absent = store[f"{name}_absent"].values
        assert absent.dtype == bool and absent[:n_old].all() and not absent[n_old:].any()
        np.testing.assert_array_equal(store[name].values[n_old:], ds[name].values)
    assert store["parad_m_par_qc_results"].values[n_old + 5] == 255


def test_absent_integer_on_append_and_its_mask_across_calls(tmp_path):
    a = F.subset(F.CTDPFJ, tmp_path / "a.nc", slice(0, 100))
    b = F.subset(F.CTDPFJ, tmp_path / "b.nc", slice(100, 200), drop=["deployment"])
    c = F.subset(F.CTDPFJ, tmp_path / "c.nc", slice(200, 300))
    url = tmp_path / "s"
    store = StreamStore(str(url), chunk_target_bytes=1 << 12)
    store.append_files([a])
    out = store.append_files([b])
    assert {"missing_variable", "absent_rows_masked"} <= {r["rule"] for r in out.rules_applied}
    store.append_files([c])
    ds = xr.open_zarr(url, consolidated=True)
    assert ds["deployment"].dtype == np.int32  # not float: no fill value declared
    mask = ds["deployment_absent"].values
    assert not mask[:100].any() and mask[100:200].all() and not mask[200:].any()
    assert (ds["deployment"].values[mask] != 1).all() and (
        ds["deployment"].values[~mask] == 1
    ).all()
    # a variable new to the store: its stored rows are absent
    d = F.subset(F.CTDPFJ, tmp_path / "d.nc", slice(0, 100), drop=["deployment"])
    e = F.subset(F.CTDPFJ, tmp_path / "e.nc", slice(100, 200))
    fresh = StreamStore(str(tmp_path / "t"), chunk_target_bytes=1 << 12)
    fresh.append_files([d])
    fresh.append_files([e])
    ds = xr.open_zarr(tmp_path / "t", consolidated=True)
    assert ds["deployment"].dtype == np.int32
    assert ds["deployment_absent"].values[:100].all()
    assert not ds["deployment_absent"].values[100:].any()

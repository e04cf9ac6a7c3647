"""The time-chunk rule: one chunking along time for every array of a store (issue 12.1),
~target bytes for big first writes, small chunks for small streams."""

from __future__ import annotations

import json

import xarray as xr

from data_vent.store import StreamStore
from data_vent.store.chunks import (
    DEFAULT_CHUNK_TARGET,
    MIN_CHUNK_BYTES,
    STRING_BYTES_ESTIMATE,
    growth_rows,
)
from tests import store_fixtures as F

# real GL319 PAR file (SE 1.10.0): float64, uint8 QC flags, int32, strings on one time axis
PAR = F.SE / (
    "deployment0006_CE05MOAS-GL319-01-PARADM000-recovered_host-parad_m_glider_recovered.nc"
)


def _chunks(path, name="time") -> int:
    return json.loads((path / name / ".zarray").read_text())["chunks"][0]


def _time_chunks(path) -> set[int]:
    meta = json.loads((path / ".zmetadata").read_text())["metadata"]
    return {
        meta[k]["chunks"][0]
        for k in meta
        if k.endswith("/.zarray")
        and meta[k[: -len(".zarray")] + ".zattrs"]["_ARRAY_DIMENSIONS"][:1] == ["time"]
    }


def test_growth_rows_rounds_up_to_a_power_of_two_times_growth() -> None:
    assert growth_rows(1000) == 1024 * 4
    assert growth_rows(1024) == 1024 * 4
    assert growth_rows(1) == 4


def test_small_stream_gets_small_chunks_at_the_default_target(tmp_path) -> None:
    path = tmp_path / "s"
    store = StreamStore(str(path), chunk_target_bytes=DEFAULT_CHUNK_TARGET)
    rows = store.append_files([F.CTDPFJ]).rows_total
    # the floor (1 MiB of float64 time), not 100 MB: the cap 4 x 2**13 rows is below it
    assert growth_rows(rows) < MIN_CHUNK_BYTES // 8
    assert _chunks(path) == MIN_CHUNK_BYTES // 8
    assert _time_chunks(path) == {MIN_CHUNK_BYTES // 8}


def test_small_target_still_wins_for_the_widest_variable(tmp_path) -> None:
    path = tmp_path / "s"
    StreamStore(str(path), chunk_target_bytes=1 << 14).append_files([F.CTDPFJ])
    # the widest row is the string preferred_timestamp (estimated): its chunks fit the target
    assert _time_chunks(path) == {(1 << 14) // STRING_BYTES_ESTIMATE}


def test_one_time_chunking_across_appends_and_rebuilds(tmp_path) -> None:
    """``ingest K small.nc`` then ``ingest K big.nc``: xarray can chunk the store."""
    small = F.subset(PAR, tmp_path / "small.nc", slice(0, 100))
    big = F.subset(PAR, tmp_path / "big.nc", slice(100, None))
    path = tmp_path / "par"
    store = StreamStore(str(path), chunk_target_bytes=1 << 16)  # several chunks of each
    store.append_files([small])
    store.append_files([big])
    ds = xr.open_zarr(path, consolidated=True)  # dask: "inconsistent chunks" before
    assert set(ds.chunks) == {"time"} and ds.sizes["time"] == 10591
    assert len(_time_chunks(path)) == 1
    store.rebuild_from_files([big, small])
    assert len(_time_chunks(path)) == 1
    assert set(xr.open_zarr(path, consolidated=True).chunks) == {"time"}


def test_variables_added_later_take_the_store_time_chunking(tmp_path) -> None:
    late = ["suspect_timestamp", "preferred_timestamp", "deployment"]  # int8, string, int32
    a = F.subset(F.CTDPFJ, tmp_path / "a.nc", slice(0, 3000), drop=late)
    b = F.subset(F.CTDPFJ, tmp_path / "b.nc", slice(3000, None))
    path = tmp_path / "s"
    store = StreamStore(str(path), chunk_target_bytes=1 << 14)
    store.append_files([a])
    out = store.append_files([b])
    assert {r["variable"] for r in out.rules_applied if r["rule"] == "new_variable"} == set(
        late
    )
    assert _time_chunks(path) == {(1 << 14) // 8}
    assert set(xr.open_zarr(path, consolidated=True).chunks) == {"time"}

"""Several files of one stream in one write: merged by time, overlaps compared (issue 11).

Files are cut from the real CE02SHSP CTDPF-J file (tests/data/netcdf, see ORIGIN.md): its even
and odd rows (interleaved), and overlapping row ranges with one value changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_vent.core.timeutil import from_ntp_seconds
from data_vent.ncio import load_dataset, save_dataset
from data_vent.store import AppendConflict, StreamStore

try:
    from tests import store_fixtures as F
except ImportError:
    import store_fixtures as F

pytest_plugins = [F.__name__]

TABLE = "CE02SHSP-SP001-08-CTDPFJ000-recovered_cspp-ctdpf_j_cspp_instrument_recovered"
ROWS = 5840


def rules(outcome) -> set[str]:
    return {r["rule"] for r in outcome.rules_applied}


def load(url) -> xr.Dataset:
    ds = xr.open_zarr(url, consolidated=True, mask_and_scale=False, decode_times=False)
    return ds.load().drop_attrs()


@pytest.fixture
def whole(tmp_path) -> xr.Dataset:
    """The reference: the uncut file in one store."""
    url = str(tmp_path / "whole")
    StreamStore(url, chunk_target_bytes=1 << 12).append_files([F.CTDPFJ])
    return load(url)


@pytest.fixture
def even_odd(tmp_path) -> tuple[Path, Path]:
    even = F.subset(F.CTDPFJ, tmp_path / "even.nc", slice(0, ROWS, 2))
    odd = F.subset(F.CTDPFJ, tmp_path / "odd.nc", slice(1, ROWS, 2))
    return even, odd


@pytest.mark.parametrize("order", ["even_first", "odd_first"])
def test_interleaved_files_in_one_call_merge_by_time(tmp_path, even_odd, whole, order):
    files = list(even_odd) if order == "even_first" else list(even_odd[::-1])
    url = str(tmp_path / "s")
    out = StreamStore(url, chunk_target_bytes=1 << 12).append_files(files)
    assert out.committed and out.rows_added == ROWS
    xr.testing.assert_identical(load(url), whole)


def test_interleaved_append_needs_rebuild_then_rebuild_merges(tmp_path, even_odd, whole):
    even, odd = even_odd
    url = str(tmp_path / "s")
    store = StreamStore(url, chunk_target_bytes=1 << 12)
    assert store.append_files([even]).rows_added == ROWS // 2
    before = store.info()
    later = store.append_files([odd])
    assert later.needs_rebuild and "before the store end" in later.rebuild_reason
    assert store.info() == before
    assert not (Path(url) / ".data-vent-journal.json").exists()
    rebuilt = store.rebuild_from_files([odd, even])
    assert rebuilt.committed and rebuilt.rows_total == ROWS
    xr.testing.assert_identical(load(url), whole)


def test_overlapping_files_identical_rows_dropped_once(tmp_path, whole):
    a = F.subset(F.CTDPFJ, tmp_path / "a.nc", slice(0, 4000))
    b = F.subset(F.CTDPFJ, tmp_path / "b.nc", slice(3000, ROWS))
    url = str(tmp_path / "s")
    out = StreamStore(url, chunk_target_bytes=1 << 12).rebuild_from_files([b, a])
    assert out.rows_total == ROWS
    assert {
        "rule": "overlap_identical_dropped",
        "variable": "time",
        "count": 1000,
        "file": "b.nc",
        "detail": "identical rows kept from a.nc",
    } in out.rules_applied
    xr.testing.assert_identical(load(url), whole)


# ------------------------------------------------------------------ conflicting overlaps
@pytest.fixture
def conflicting(tmp_path) -> tuple[Path, Path, str]:
    """Rows 0-3999 with two values changed inside the overlap, rows 3000-end unchanged,
    and the time of the first changed row (pressure at row 3300; profiler_timestamp, which
    the files list first, changes later at row 3600)."""
    ds = load_dataset(F.CTDPFJ, decode_cf=False).isel(obs=slice(0, 4000))
    ds["pressure"].values[3300] += 1
    ds["profiler_timestamp"].values[3600] += 1
    a = save_dataset(ds, tmp_path / "rows_0-3999_changed.nc")
    b = F.subset(F.CTDPFJ, tmp_path / "rows_3000-end.nc", slice(3000, ROWS))
    return a, b, str(from_ntp_seconds(float(ds["time"].values[3300])))


def test_conflicting_overlap_in_one_call_is_refused(tmp_path, conflicting):
    a, b, when = conflicting
    url = str(tmp_path / "s")
    store = StreamStore(url, chunk_target_bytes=1 << 12)
    with pytest.raises(AppendConflict) as err:
        store.append_files([b, a])
    msg = str(err.value)
    assert f"{a.name} and {b.name}" in msg and "pressure" in msg and when in msg
    assert "\n" not in msg and err.value.exit_code == 2
    assert not store.exists() and not any(Path(url).rglob("*/.zarray"))


def test_conflicting_overlap_in_a_rebuild_is_refused(tmp_path, conflicting, whole):
    a, b, when = conflicting
    url = str(tmp_path / "s")
    store = StreamStore(url, chunk_target_bytes=1 << 12)
    store.append_files([F.CTDPFJ])
    before = store.info()
    with pytest.raises(AppendConflict, match=f"{a.name} and {b.name}.*{when} in pressure"):
        store.rebuild_from_files([a, b])
    assert store.info() == before and not any("staging" in p.name for p in tmp_path.iterdir())
    xr.testing.assert_identical(load(url), whole)


def test_conflicting_overlap_across_calls_is_refused(tmp_path, conflicting):
    a, b, when = conflicting
    store = StreamStore(str(tmp_path / "s"), chunk_target_bytes=1 << 12)
    store.append_files([a])
    before = store.info()
    with pytest.raises(AppendConflict, match=f"{b.name}: .*{when} .*stored row in pressure"):
        store.append_files([b])
    assert store.info() == before


# ------------------------------------------------------------------ the ingest command
def cli(*args: str, capsys) -> tuple[int, str]:
    """``data-vent ARGS`` in this process through the real entry point: (exit code, stderr)."""
    from data_vent.cli import main

    capsys.readouterr()
    old = sys.argv
    sys.argv = ["data-vent", *args]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = old
    return int(done.value.code or 0), capsys.readouterr().err


@pytest.fixture
def ctd_config(stream_config, monkeypatch) -> str:
    stream_config(TABLE)
    monkeypatch.setenv("DATA_VENT_CHUNK_TARGET_BYTES", "4096")
    monkeypatch.setenv("COLUMNS", "200")
    return TABLE


def test_ingest_interleaved_files(isolated_env, ctd_config, even_odd, whole, capsys):
    even, odd = (str(p) for p in even_odd)
    store = isolated_env / "stores" / TABLE
    assert cli("ingest", TABLE, even, odd, "--rebuild", capsys=capsys)[0] == 0
    xr.testing.assert_identical(load(store), whole)
    # appending odd after even: a rebuild is needed, and then it succeeds
    assert cli("ingest", TABLE, even, "--rebuild", capsys=capsys)[0] == 0
    code, err = cli("ingest", TABLE, odd, capsys=capsys)
    assert code == 2 and "pass --rebuild" in err and len(err.strip().splitlines()) == 1
    assert cli("ingest", TABLE, even, odd, "--rebuild", capsys=capsys)[0] == 0
    xr.testing.assert_identical(load(store), whole)
    assert np.all(np.diff(load(store)["time"].values) > 0)


def test_ingest_conflicting_files_exit_2(isolated_env, ctd_config, conflicting, capsys):
    a, b, when = conflicting
    code, err = cli("ingest", TABLE, str(a), str(b), "--rebuild", capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert a.name in lines[0] and b.name in lines[0] and "pressure" in lines[0]
    assert when in lines[0]
    assert not (isolated_env / "stores" / TABLE / ".zmetadata").exists()

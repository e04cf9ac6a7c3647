"""HDF5 discipline: one lock around every NetCDF access, and no handle left for the GC.

A NetCDF access outside the lock, or a file closed by the garbage collector in whatever
thread it runs, corrupts HDF5's heap while another thread is inside the library; the
process then dies later, far from the cause (CI saw a segmentation fault in an unrelated
open). These tests pin the helpers' locking and that the code and tests use only them.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
from xarray.backends.file_manager import FILE_CACHE

from data_vent import ncio
from data_vent.simulator.synthetic import FileSpec, write_stream_file
from data_vent.store.normalize import NormalizedFile
from tests import store_fixtures as F

ROOT = Path(__file__).resolve().parent.parent
TABLE = "CE02SHSM-SBD11-06-METBKA000-telemetered-metbk_a_dcl_instrument"
# Spelled in pieces so that this file does not match itself.
RAW_ACCESS = re.compile(
    r"\b(xr|xarray)\.open_(mf)?dataset\(|\bnetCDF4\.Dataset\(|\.to_" + r"netcdf\("
)


def lock_free_elsewhere() -> bool:
    """Whether another thread could take the HDF5 lock right now."""
    got: list[bool] = []

    def probe() -> None:
        ok = ncio.HDF5_LOCK.acquire(blocking=False)
        if ok:
            ncio.HDF5_LOCK.release()
        got.append(ok)

    t = threading.Thread(target=probe)
    t.start()
    t.join(10)
    return got[0]


def open_handles(path: Path) -> int:
    return sum(str(path) in repr(key) for key in list(FILE_CACHE.keys()))


def test_no_raw_netcdf_access_outside_ncio() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for folder in ("data_vent", "tests")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p != ROOT / "data_vent" / "ncio.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if RAW_ACCESS.search(line)
    ]
    assert offenders == [], "NetCDF access must go through data_vent.ncio"


def test_helpers_hold_the_lock_while_in_hdf5(tmp_path: Path, monkeypatch) -> None:
    path = write_stream_file(
        tmp_path / "a.nc", FileSpec(TABLE, np.array([3.9e9, 3.9e9 + 60]), 1)
    )
    with ncio.netcdf4_file(path) as ds:
        assert ds.dimensions["obs"].size == 2
        assert not lock_free_elsewhere()
    assert lock_free_elsewhere()

    seen: list[bool] = []
    real_open = ncio.xr.open_dataset

    def spying_open(*args, **kwargs):
        seen.append(lock_free_elsewhere())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(ncio.xr, "open_dataset", spying_open)
    assert ncio.load_dataset(path).sizes["obs"] == 2
    ncio.close(ncio.open_lazy(path))
    assert seen == [False, False]
    assert open_handles(path) == 0


def test_a_file_that_fails_to_normalize_is_closed(tmp_path: Path) -> None:
    bad = ncio.save_dataset(
        ncio.load_dataset(F.CTDPFJ, decode_cf=False).drop_vars("time"), tmp_path / "bad.nc"
    )
    with pytest.raises(ValueError, match="no time variable") as raised:
        NormalizedFile(bad)
    # the traceback keeps the half-built object alive: only an explicit close frees the file
    assert open_handles(bad) == 0 and raised.traceback

"""Every use of the netCDF-C/HDF5 libraries goes through here, under one process-wide lock.

They are not thread-safe, and xarray's own lock covers only data reads, not the metadata
reads of an open nor the close a garbage-collected file triggers: concurrent harvest threads
(and the in-process simulator writing files) otherwise corrupt the heap, which shows up later
as "double free or corruption" or a segmentation fault far from the cause. So nothing in
data_vent or its tests opens, writes or leaves a NetCDF file open except through these
helpers (``tests/test_ncio.py`` enforces it; the single-threaded benchmarks are exempt).
They always use the netCDF4 engine: h5py would load a second HDF5 library into the process.
Reentrant, so code holding the lock may call into xarray, which is handed the same lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import netCDF4
import xarray as xr

HDF5_LOCK = threading.RLock()
ENGINE = "netcdf4"


def open_lazy(path: str | Path, **kwargs: Any) -> xr.Dataset:
    """A lazily read Dataset whose later reads and close take the lock; close it yourself."""
    with HDF5_LOCK:
        return xr.open_dataset(path, engine=ENGINE, cache=False, lock=HDF5_LOCK, **kwargs)


def close(ds: xr.Dataset) -> None:
    """Close a Dataset from ``open_lazy`` (its file handle) under the lock."""
    with HDF5_LOCK:
        ds.close()


def load_dataset(path: str | Path, **kwargs: Any) -> xr.Dataset:
    """The whole file in memory, its handle already closed."""
    with HDF5_LOCK, xr.open_dataset(path, engine=ENGINE, lock=HDF5_LOCK, **kwargs) as ds:
        return ds.load()


def save_dataset(ds: xr.Dataset, path: str | Path, **kwargs: Any) -> Path:
    """Write an in-memory Dataset as NetCDF."""
    with HDF5_LOCK:
        ds.to_netcdf(path, engine=ENGINE, **kwargs)
    return Path(path)


@contextmanager
def netcdf4_file(
    path: str | Path, mode: str = "r", **kwargs: Any
) -> Iterator[netCDF4.Dataset]:
    """A raw ``netCDF4.Dataset``, holding the lock until it is closed at the block's end."""
    with HDF5_LOCK:
        ds = netCDF4.Dataset(path, mode, **kwargs)
        try:
            yield ds
        finally:
            ds.close()


def problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as an OOI NetCDF file (unreadable, not NetCDF, truncated,
    no ``time`` variable), or None: checked before a file is ingested, so that a bad file
    is one line naming it instead of an error deep inside a write."""
    try:
        with netcdf4_file(path) as ds:
            if "time" not in ds.variables:
                return "has no 'time' variable (not an OOI data file?)"
            ds.variables["time"][:]  # a file cut short fails here if not at open
    except OSError as exc:
        what = (exc.strerror or str(exc)).removeprefix("NetCDF: ")
        if exc.errno == -51:
            return f"is not a NetCDF file ({what})"
        if exc.errno == -101:
            return f"is not a readable NetCDF file: truncated or damaged ({what})"
        return f"cannot be read ({what})"
    except (RuntimeError, ValueError, IndexError) as exc:
        return f"cannot be read ({type(exc).__name__}: {exc})"
    return None

"""Compare a stream store with the rows of the real Stream Engine files a simulated stream
replays, variable by variable.

Independent of the simulator's own code: the real files are read here with xarray, and the
only things taken from the stream are its layout parameters (each file's whole-second
``shifts`` and the ``period`` of the cycle). A row of file ``j`` in cycle ``k`` carries the
file's values with every ``seconds since`` variable moved by ``shifts[j] + k * period``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr

from data_vent.ncio import load_dataset

_SINCE = re.compile(r"^\s*seconds?\s+since\s+(.+?)\s*$", re.IGNORECASE)
TOL = 1e-5  # seconds: a shifted time is the file's value plus whole seconds


def epoch(units: str) -> float | None:
    """Seconds from 1900-01-01 to the epoch of ``seconds since <epoch>``, else None."""
    m = _SINCE.match(units or "")
    if not m:
        return None
    text = m[1].strip().replace("T", " ").rstrip("Z")
    day, _, clock = text.partition(" ")
    h, mi, s = ([*clock.split(":"), "0", "0", "0"])[:3] if clock else ("0", "0", "0")
    base = (datetime.fromisoformat(day) - datetime(1900, 1, 1)).total_seconds()
    return base + int(h) * 3600 + int(mi) * 60 + float(s)


@dataclass
class Chunk:
    file: int
    rows: np.ndarray
    shift: int


def source_times(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["time"].values, dtype="f8") + epoch(ds["time"].attrs["units"])


def chunks_in_range(
    sources: list[xr.Dataset], shifts: list[int], period: float, begin: float, end: float
) -> list[Chunk]:
    """The rows a stream holds in [begin, end] (end to the millisecond), in time order."""
    times = [source_times(ds) for ds in sources]
    t0 = times[0][0] + shifts[0]
    out = []
    for k in range(0, int((end - t0) // period) + 2):
        for j, t in enumerate(times):
            shift = int(shifts[j]) + k * int(period)
            rows = np.nonzero((t + shift >= begin) & (t + shift < end + 1e-3))[0]
            if len(rows):
                out.append(Chunk(j, rows, shift))
    return out


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.array(
        [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(values)],
        dtype=object,
    ).reshape(np.shape(values))


def compare(
    store: xr.Dataset,
    sources: list[xr.Dataset],
    chunks: list[Chunk],
    dropped: set[str] = frozenset(),
) -> list[str]:
    """Every mismatch between ``store`` (opened with ``decode_times=False``) and the real
    rows ``chunks`` name; an empty list means equal, variable by variable. ``dropped``: the
    variables the store's documented rules leave out (per-row OOI ids, provenance)."""
    problems: list[str] = []
    n = sum(len(c.rows) for c in chunks)
    if store.sizes.get("time") != n:
        return [f"store has {store.sizes.get('time')} rows, the real files {n}"]
    names = sorted(
        {v for ds in sources for v in ds.variables if "obs" in ds[v].dims} - {"obs"}
    )
    for name in names:
        if name not in store.variables:
            if name in dropped:
                continue
            problems.append(f"{name}: in the real file, not in the store")
            continue
        got = store[name].values
        s_units = store[name].attrs.get("units", "")
        at = 0
        for c in chunks:
            part = got[at : at + len(c.rows)]
            at += len(c.rows)
            src = sources[c.file]
            if name not in src.variables:
                continue  # another file's variable: the store fills these rows
            want = np.take(src[name].values, c.rows, axis=src[name].dims.index("obs"))
            e_src = epoch(src[name].attrs.get("units", ""))
            if e_src is not None and want.dtype.kind in "iuf":
                e_store = epoch(s_units)
                if e_store is None:
                    problems.append(f"{name}: store units {s_units!r} are not seconds since")
                    break
                want = want.astype("f8") + e_src + c.shift
                part = part.astype("f8") + e_store
                ok = np.isclose(part, want, rtol=0, atol=TOL, equal_nan=True)
            elif want.dtype.kind in "SUO" or part.dtype.kind in "SUOT":
                ok = _as_text(part) == _as_text(want)
            elif want.dtype.kind == "f":
                ok = (part == want) | (np.isnan(part) & np.isnan(want))
            else:
                ok = part == want
            if not np.all(ok):
                i = int(np.argmin(np.ravel(ok)))
                problems.append(
                    f"{name}: file {c.file} rows differ (first at flat index {i}: "
                    f"store {np.ravel(part)[i]!r}, real {np.ravel(want)[i]!r})"
                )
                break
    return problems


def open_sources(paths: list[Path]) -> list[xr.Dataset]:
    return [load_dataset(p, decode_times=False) for p in paths]


def store_drops(paths: list[Path]) -> set[str]:
    """What the store's normalisation documents dropping from these files."""
    from data_vent.store.normalize import normalize_file

    return {name for p in paths for name in normalize_file(p)[1].dropped}

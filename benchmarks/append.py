"""Benchmark of stream-store appends (run: ``python benchmarks/append.py [--size-gb 2]``).

Prints, measured in one run:
1. append throughput against a naive ``xr.open_dataset(f).to_zarr(store, append_dim="time")``
   with the same encoding (goal: ratio >= 0.8);
2. append time on a store of 100 chunks against one of 1 chunk (goal <= 1.2x);
3. peak RSS converting a generated file of ``--size-gb`` GB (goal <= 1 GB at 2 GB), and of a
   ``--small-gb`` file (it must not grow with the file size);
4. 10 small appends (1,000 rows, 12 variables) on a store created by a 1,000-row write at the
   default 100 MB chunk target: chunks sized by the target only (before) against the
   growth rule of ``chunks.chunk_rows`` (after).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data_vent.store import StreamStore, chunks  # noqa: E402
from data_vent.store.chunks import COMPRESSOR  # noqa: E402

NVARS = 12  # 8 float64, 2 float32, 2 int32 -> 80 bytes a row (+ time)


def make_file(path: Path, rows: int, t0: float, block: int = 2_000_000) -> Path:
    """An OOI-like NetCDF (record dimension ``obs``) written in blocks: memory stays flat."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("obs", None)
        t = ds.createVariable("time", "f8", ("obs",))
        t.units = "seconds since 1900-01-01 0:0:0"
        specs = [("f8", 8), ("f4", 2), ("i4", 2)]
        names = []
        for dtype, n in specs:
            for i in range(n):
                name = f"v_{dtype}_{i}"
                v = ds.createVariable(name, dtype, ("obs",), fill_value=False)
                v.units = "1"
                names.append((name, dtype))
        rng = np.random.default_rng(0)
        for a in range(0, rows, block):
            b = min(rows, a + block)
            t[a:b] = t0 + np.arange(a, b, dtype="f8") * 0.5
            for name, dtype in names:
                x = np.cumsum(rng.normal(size=b - a)).astype(dtype)
                ds[name][a:b] = x
    return path


def rename_obs(src: Path, dest: Path) -> Path:
    """The same file with ``time`` as its dimension, for the naive xarray append."""
    with xr.open_dataset(src, decode_cf=False) as ds:
        ds.swap_dims(obs="time").load().to_netcdf(dest)
    return dest


def naive_encoding(ds: xr.Dataset, target: int) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        rows = max(1, target // var.dtype.itemsize)
        enc[name] = {"compressors": [COMPRESSOR], "chunks": (rows,)}
    enc["time"].update(units="seconds since 1900-01-01", dtype="f8", calendar="gregorian")
    return enc


def throughput(tmp: Path, rows: int, target: int) -> tuple[float, float]:
    a = make_file(tmp / "a.nc", rows, 3.6e9)
    b = make_file(tmp / "b.nc", rows, 3.6e9 + rows)
    an, bn = rename_obs(a, tmp / "an.nc"), rename_obs(b, tmp / "bn.nc")
    naive = tmp / "naive.zarr"
    first = xr.open_dataset(an)
    first.to_zarr(
        naive, zarr_format=2, consolidated=True, encoding=naive_encoding(first, target)
    )
    t0 = time.perf_counter()
    xr.open_dataset(bn).to_zarr(naive, append_dim="time", zarr_format=2, consolidated=True)
    t_naive = time.perf_counter() - t0
    store = StreamStore(str(tmp / "ours.zarr"), chunk_target_bytes=target)
    store.append_files([a])
    t0 = time.perf_counter()
    store.append_files([b])
    t_ours = time.perf_counter() - t0
    return rows / t_naive, rows / t_ours


def chunk_scaling(tmp: Path, target: int) -> tuple[float, float]:
    rows_per_chunk = target // 8
    times = []
    for n_chunks in (1, 100):
        src = make_file(tmp / f"base{n_chunks}.nc", rows_per_chunk * n_chunks - 1000, 3.6e9)
        store = StreamStore(str(tmp / f"s{n_chunks}.zarr"), chunk_target_bytes=target)
        store.append_files([src])
        best = float("inf")
        t_next = 3.6e9 + rows_per_chunk * n_chunks
        for k in range(3):
            f = make_file(tmp / f"add{n_chunks}_{k}.nc", 200, t_next + k * 1000)
            t0 = time.perf_counter()
            store.append_files([f])
            best = min(best, time.perf_counter() - t0)
        times.append(best)
    return times[0], times[1]


def small_appends(tmp: Path, target: int, n: int = 10, rows: int = 1000) -> dict:
    """Total seconds of ``n`` appends of ``rows`` rows, before/after the chunk growth rule."""
    files = [make_file(tmp / f"small{k}.nc", rows, 3.6e9 + k * rows) for k in range(n + 1)]
    out = {}
    saved = chunks.CHUNK_GROWTH
    try:
        for label, growth in (("before", None), ("after", saved)):
            chunks.CHUNK_GROWTH = growth
            store = StreamStore(str(tmp / f"small-{label}.zarr"), chunk_target_bytes=target)
            store.append_files(files[:1])
            t0 = time.perf_counter()
            for f in files[1:]:
                store.append_files([f])
            out[label] = time.perf_counter() - t0
    finally:
        chunks.CHUNK_GROWTH = saved
    return out


CHILD = """
import sys, resource
sys.path.insert(0, sys.argv[3])
from data_vent.store import StreamStore
StreamStore(sys.argv[2]).append_files([sys.argv[1]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(tmp: Path, size_gb: float) -> tuple[float, float, float]:
    rows = int(size_gb * 1e9 / (8 + 80))
    t0 = time.perf_counter()
    f = make_file(tmp / "big.nc", rows, 3.6e9)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(f),
            str(tmp / "big.zarr"),
            str(Path(__file__).resolve().parents[1]),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    conv = time.perf_counter() - t0
    kb = int(out.stdout.strip().splitlines()[-1])
    return os.path.getsize(f) / 1e9, kb / 1024**2, conv + 0 * gen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-gb", type=float, default=2.0)
    ap.add_argument("--small-gb", type=float, default=0.5, help="second RSS point")
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows per appended file")
    ap.add_argument("--chunk-mb", type=float, default=100.0)
    args = ap.parse_args()
    target = int(args.chunk_mb * 1024**2)
    tmp = Path(tempfile.mkdtemp(prefix="dv-bench-"))
    try:
        naive, ours = throughput(tmp, args.rows, target)
        print(
            f"append throughput: naive {naive:,.0f} rows/s, data-vent {ours:,.0f} rows/s, "
            f"ratio {ours / naive:.2f} (goal >= 0.8)"
        )
        one, hundred = chunk_scaling(tmp, 1 << 16)
        print(
            f"append of 200 rows: 1-chunk store {one * 1e3:.0f} ms, 100-chunk store "
            f"{hundred * 1e3:.0f} ms, ratio {hundred / one:.2f} (goal <= 1.2)"
        )
        small = small_appends(tmp, target)
        print(
            f"10 appends of 1,000 rows, 12 variables, {args.chunk_mb:.0f} MB target: "
            f"before {small['before']:.2f} s, after {small['after']:.2f} s "
            f"({small['before'] / small['after']:.0f}x faster)"
        )
        for gb in dict.fromkeys((args.small_gb, args.size_gb)):
            size, rss, secs = peak_rss(tmp, gb)
            print(
                f"convert {size:.2f} GB file: {secs:.1f} s, peak RSS {rss:.2f} GB "
                "(goal <= 1 GB, flat in file size)"
            )
            for p in tmp.glob("big*"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

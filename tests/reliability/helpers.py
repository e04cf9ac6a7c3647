"""Shared pieces of the reliability tests: OOI-shaped part files, the CLI in a subprocess,
and what the state DB and the stores hold afterwards (stream configs: the ``stream_config``
fixture of tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr
from sqlalchemy import func, select

from data_vent.core.timeutil import to_ntp_seconds
from data_vent.simulator.synthetic import FileSpec, write_stream_file
from data_vent.state.models import Materialization

ROOT = Path(__file__).parents[2]
CTD = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
M = Materialization.__table__


def make_parts(
    folder: Path,
    table: str,
    n_parts: int,
    rows: int,
    start: datetime = datetime(2024, 1, 1),
    interval: float = 1.0,
) -> list[Path]:
    """Consecutive OOI Stream Engine files of ``table`` (the simulator's writer, whose layout
    is a real SE file's), ``rows`` samples each, one every ``interval`` s from ``start``."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = to_ntp_seconds(start)
    out = []
    for i in range(n_parts):
        t = t0 + (i * rows + np.arange(rows, dtype="f8")) * interval
        out.append(write_stream_file(folder / f"part{i:02d}.nc", FileSpec(table, t, 1)))
    return out


def cli(*args: str, **env: str) -> subprocess.Popen:
    """``data-vent ARGS`` in a fresh process, with this test's environment (and ``env``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "data_vent", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env},
    )


def one_error_line(stderr: str) -> str:
    """The single non-empty line of ``stderr``, asserting there is exactly one."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def attempts(engine, status: str | None = None) -> Counter[str]:
    """Attempts per asset in the state DB (of one status, or all)."""
    stmt = select(M.c.asset_key, func.count()).group_by(M.c.asset_key)
    if status is not None:
        stmt = stmt.where(M.c.status == status)
    with engine.connect() as conn:
        return Counter({k: n for k, n in conn.execute(stmt)})


def store_times(url: str | Path) -> np.ndarray:
    """The committed ``time`` values, as a plain consolidated reader sees them."""
    with xr.open_zarr(str(url), consolidated=True, decode_times=False) as ds:
        return np.asarray(ds["time"].values)


def file_times(paths: list[Path]) -> np.ndarray:
    from data_vent.ncio import load_dataset

    return np.concatenate(
        [np.asarray(load_dataset(p, decode_times=False)["time"]) for p in paths]
    )

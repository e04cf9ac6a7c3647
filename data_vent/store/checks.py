"""Checks run after the data of a write are in place and before its commit.

A failed check raises ``CheckFailed``; the caller rolls back to the committed version.
Checks read back from the store (not from the in-memory data), so they catch what was
actually written: all time-dimensioned arrays one length (new ones also the time-chunk
length of ``time``), ``time`` strictly increasing and never NaN over the new rows and across
the boundary, no NaN in dimension coordinates, and a schema compatible with the previous
version (on append: no variable lost, no dtype or dimension changed; a rebuild may widen or
add).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr

from data_vent.store.normalize import TIME, VarSpec
from data_vent.store.rules import CheckFailed


def check_write(
    group: zarr.Group,
    target: dict[str, VarSpec],
    rows: int,
    base_rows: int,
    previous: dict[str, VarSpec] | None,
    mode: str,
) -> None:
    problems: list[str] = []
    time_chunk = group[TIME].chunks[0]
    for name, spec in target.items():
        if name not in group:
            problems.append(f"array {name} missing")
            continue
        shape = group[name].shape
        if spec.timed and shape[0] != rows:
            problems.append(f"{name} has {shape[0]} rows, time has {rows}")
        new = previous is None or name not in previous
        if spec.timed and new and group[name].chunks[0] != time_chunk:
            problems.append(f"{name} chunks time by {group[name].chunks[0]}, not {time_chunk}")
        is_coord = not spec.timed and name in spec.dims and spec.dtype.kind == "f"
        if is_coord and np.isnan(np.asarray(group[name][...])).any():
            problems.append(f"dimension coordinate {name} has NaN")
    problems += _time_problems(group[TIME], max(base_rows - 1, 0), rows)
    if previous:
        problems += _schema_problems(previous, target, mode)
    if problems:
        raise CheckFailed("store check failed, nothing committed: " + "; ".join(problems))


def _time_problems(arr: zarr.Array, start: int, stop: int) -> list[str]:
    """NaN / not strictly increasing over rows [start, stop), read one chunk at a time so
    memory does not grow with the size of the write."""
    out: list[str] = []
    step = max(int(arr.chunks[0]), 1 << 16)
    prev = -np.inf
    for a in range(start, stop, step):
        t = np.asarray(arr[a : min(stop, a + step)])
        if np.isnan(t).any():
            out.append("time has NaN")
            break
        if t[0] <= prev or (t.size > 1 and np.any(t[1:] <= t[:-1])):
            out.append("time is not strictly increasing")
            break
        prev = t[-1]
    return out


def _schema_problems(prev: dict[str, VarSpec], new: dict[str, Any], mode: str) -> list[str]:
    out = []
    for name, old in prev.items():
        cur = new.get(name)
        if cur is None:
            if mode == "append":
                out.append(f"variable {name} would disappear")
            continue
        if cur.dims != old.dims:
            out.append(f"dims of {name} change {old.dims}->{cur.dims}")
        if mode == "append" and (cur.dtype != old.dtype or cur.shape_inner != old.shape_inner):
            out.append(
                f"{name} changes {old.dtype}{old.shape_inner}->{cur.dtype}{cur.shape_inner}"
            )
        if mode != "append" and np.result_type(old.dtype, cur.dtype) != cur.dtype:
            out.append(f"{name} narrows {old.dtype}->{cur.dtype}")
    return out

"""Row planning: which rows of which files a write takes, and in what order.

Per file (``file_rows``): rows whose time is NaN or the time ``_FillValue`` are dropped
(``invalid_time_dropped``), the rest stably sorted (``sorted_within_file``), and equal times
inside the file compared, the later row dropped (``duplicate_in_file_dropped``). A clean file
(every time valid and strictly increasing: the usual case) is a ``range`` read in blocks, so
memory does not grow with it; any other file is planned on index arrays (8-16 bytes a row).

Across files (``merge_files``): files whose time spans do not overlap stay apart and are
written one after the other in time order. Files whose spans overlap (interleaved files,
overlapping requests) are merged into one segment sorted by time, whatever the order they were
given in. A time held by two files: identical rows keep the row of the file that starts first
(``overlap_identical_dropped`` on the other, detail names the file kept); rows that differ are
refused by the caller's ``compare`` (``AppendConflict`` naming both files, the variable and the
first differing time). Only merged segments hold whole-segment arrays (~28 bytes a row).

Against the store (``split_at``, ``stored_times_from``): rows at or before the store's last
time are checked by the writer against the stored rows; the rest are appended.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import zarr

from data_vent.store.normalize import TIME, TIME_BLOCK, NormalizedFile
from data_vent.store.rules import RuleRecord

Compare = Callable[[NormalizedFile, np.ndarray, NormalizedFile, np.ndarray, np.ndarray], None]
"""``compare(a, rows_a, b, rows_b, times)``: raise if a row of ``a`` differs from ``b``'s."""

Selection = slice | np.ndarray


@dataclass
class Rows:
    """Rows in time order: from one file (``index`` a range or row numbers), or merged from
    several (``fid[i]`` is the file of row ``i``, ``index[i]`` its row in that file)."""

    files: list[NormalizedFile]
    index: range | np.ndarray
    fid: np.ndarray | None = None
    times: np.ndarray | None = None  # known times (a clean file's range reads them lazily)
    first: float = math.nan
    last: float = math.nan

    def __len__(self) -> int:
        return len(self.index)

    def take(self, a: int, b: int) -> Rows:
        """Rows ``[a, b)`` of this plan."""
        return Rows(
            self.files,
            self.index[a:b],
            None if self.fid is None else self.fid[a:b],
            None if self.times is None else self.times[a:b],
        )

    def parts(self) -> Iterator[tuple[NormalizedFile, np.ndarray | None, Selection]]:
        """``(file, which of these rows it gives (None: all), its rows to read)``."""
        if self.fid is None:
            idx = self.index
            sel = slice(idx.start, idx.stop) if isinstance(idx, range) else idx
            yield self.files[0], None, sel
            return
        for k in np.unique(self.fid):
            m = self.fid == k
            yield self.files[int(k)], m, self.index[m]

    def count_by_file(self) -> Iterator[tuple[NormalizedFile, int]]:
        if self.fid is None:
            yield self.files[0], len(self)
            return
        for k, n in enumerate(np.bincount(self.fid, minlength=len(self.files))):
            if n:
                yield self.files[k], int(n)

    def read_times(self) -> np.ndarray:
        if self.times is None:
            idx = self.index
            assert isinstance(idx, range)
            self.times = self.files[0].read(TIME, slice(idx.start, idx.stop))
        return self.times


def _as_array(index: range | np.ndarray) -> np.ndarray:
    if isinstance(index, range):
        return np.arange(index.start, index.stop, dtype=np.int64)
    return np.asarray(index, dtype=np.int64)


# ------------------------------------------------------------------ one file
def file_rows(nf: NormalizedFile, compare: Compare, rules: list[RuleRecord]) -> Rows | None:
    """The rows of ``nf`` to store, in time order; None if it has no valid time."""
    sc = nf.time_scan()
    if sc.n_valid == 0:
        if nf.rows:
            rules.append(RuleRecord("invalid_time_dropped", TIME, nf.rows, nf.path.name))
        return None
    if sc.clean:
        return Rows([nf], range(nf.rows), first=sc.first, last=sc.last)
    name = nf.path.name
    t, valid = nf.time_block(0, nf.rows)
    idx = np.nonzero(valid)[0]
    if idx.size < t.size:
        rules.append(RuleRecord("invalid_time_dropped", TIME, int(t.size - idx.size), name))
    ts = t[idx]
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        order = np.argsort(ts, kind="stable")
        moved = int(np.count_nonzero(order != np.arange(order.size)))
        idx, ts = idx[order], ts[order]
        rules.append(RuleRecord("sorted_within_file", TIME, moved, name))
    dup = np.nonzero(np.diff(ts) == 0)[0] + 1 if ts.size > 1 else np.empty(0, int)
    if dup.size:
        compare(nf, idx[dup - 1], nf, idx[dup], ts[dup])
        keep = np.ones(ts.size, bool)
        keep[dup] = False
        idx, ts = idx[keep], ts[keep]
        rules.append(RuleRecord("duplicate_in_file_dropped", TIME, int(dup.size), name))
    return Rows([nf], idx, times=ts, first=float(ts[0]), last=float(ts[-1]))


# ------------------------------------------------------------------ several files
def merge_files(segments: list[Rows], compare: Compare, rules: list[RuleRecord]) -> list[Rows]:
    """Segments in time order, files whose time spans overlap merged into one."""
    groups: list[list[Rows]] = []
    end = -math.inf
    for seg in sorted(segments, key=lambda s: (s.first, s.last)):
        if groups and seg.first <= end:
            groups[-1].append(seg)
        else:
            groups.append([seg])
        end = max(end, seg.last)
    return [g[0] if len(g) == 1 else _merged(g, compare, rules) for g in groups]


def _merged(group: list[Rows], compare: Compare, rules: list[RuleRecord]) -> Rows:
    files = [g.files[0] for g in group]
    times = np.concatenate([g.read_times() for g in group])
    fid = np.concatenate([np.full(len(g), k, dtype=np.int32) for k, g in enumerate(group)])
    index = np.concatenate([_as_array(g.index) for g in group])
    order = np.argsort(times, kind="stable")  # equal times: the earlier-starting file first
    times, fid, index = times[order], fid[order], index[order]
    del order
    dup = np.nonzero(times[1:] == times[:-1])[0] + 1
    if dup.size:
        prev = dup - 1
        pairs = np.unique(np.stack([fid[prev], fid[dup]], axis=1), axis=0)
        for ka, kb in pairs.tolist():
            m = (fid[prev] == ka) & (fid[dup] == kb)
            a, b = files[ka], files[kb]
            compare(a, index[prev[m]], b, index[dup[m]], times[dup[m]])
            rules.append(
                RuleRecord(
                    "overlap_identical_dropped",
                    TIME,
                    int(m.sum()),
                    b.path.name,
                    f"identical rows kept from {a.path.name}",
                )
            )
        keep = np.ones(times.size, bool)
        keep[dup] = False
        times, fid, index = times[keep], fid[keep], index[keep]
    return Rows(files, index, fid, times, float(times[0]), float(times[-1]))


# ------------------------------------------------------------------ the store
def split_at(seg: Rows, t_end: float) -> tuple[Rows, Rows]:
    """``(rows at or before t_end, rows after it)``; a clean file is scanned in blocks."""
    n = len(seg)
    if seg.first > t_end:
        k = 0
    elif seg.last <= t_end:
        k = n
    elif seg.times is None:
        k = _rows_up_to(seg.files[0], seg.index, t_end)
    else:
        k = int(np.searchsorted(seg.times, t_end, side="right"))
    return seg.take(0, k), seg.take(k, n)


def _rows_up_to(nf: NormalizedFile, rows: range | np.ndarray, t_end: float) -> int:
    """Rows of a clean (sorted) file's range with time <= ``t_end``, read block by block."""
    assert isinstance(rows, range)
    k = 0
    for a in range(rows.start, rows.stop, TIME_BLOCK):
        t, _ = nf.time_block(a, min(rows.stop, a + TIME_BLOCK))
        n = int(np.searchsorted(t, t_end, side="right"))
        k += n
        if n < t.size:
            break
    return k


def stored_times_from(arr: zarr.Array, rows: int, tmin: float) -> tuple[int, np.ndarray]:
    """``(position, stored times >= tmin)``, walking time chunks back from the end."""
    if rows == 0:
        return 0, np.empty(0)
    c = arr.chunks[0]
    parts = []
    start = rows
    while start > 0:
        s = ((start - 1) // c) * c
        vals = np.asarray(arr[s:start])
        parts.append(vals)
        start = s
        if vals[0] < tmin:
            break
    vals = np.concatenate(parts[::-1])
    cut = int(np.searchsorted(vals, tmin, side="left"))
    return start + cut, vals[cut:]

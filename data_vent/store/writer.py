"""Write normalised files into one stream store: new store, append, rebuild.

Encoding: Zarr format 2, consolidated metadata, ``time`` float64 seconds since 1900-01-01 with
CF attributes; chunks and compression in ``chunks.py``.

Memory: time is scanned and planned in blocks (``TimeScan``; a clean file -- every time valid
and strictly increasing -- becomes one contiguous row range), data are moved one variable and
one chunk-aligned piece at a time, and the checks read time back chunk by chunk, so memory
holds about one chunk of one variable whatever the file size. Only a file with invalid,
unsorted or duplicate times is planned on whole-file index arrays (8-16 bytes a row). Each
chunk is written once (the store's last partial chunk once per file). The commit protocol is
in ``commit.py``, the append rules in ``rules.py``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from data_vent.store import commit as cm
from data_vent.store.checks import check_write
from data_vent.store.chunks import (
    COMPRESSOR,
    DEFAULT_CHUNK_TARGET,
    chunk_rows,
    growth_rows,
    pieces,
)
from data_vent.store.location import Location
from data_vent.store.normalize import TIME, TIME_BLOCK, NormalizedFile, VarSpec
from data_vent.store.outcome import StoreInfo, WriteOutcome, next_version
from data_vent.store.rules import (
    AppendConflict,
    RuleRecord,
    SchemaPlan,
    StoreError,
    merge_schema,
)
from data_vent.store.values import prepared, rows_equal
from data_vent.timeutil import from_ntp_seconds


# ------------------------------------------------------------------ committed schema
def _fill_from_json(value: Any, dtype: np.dtype) -> Any:
    if value is None:
        return None
    if dtype.kind == "O":
        return value
    if isinstance(value, str):
        return dtype.type(float(value))  # "NaN", "Infinity"
    return dtype.type(value)


def schema_from_zmeta(zmeta: dict[str, Any]) -> dict[str, VarSpec]:
    meta = zmeta["metadata"]
    out: dict[str, VarSpec] = {}
    for name, za in cm.committed_arrays(zmeta).items():
        attrs = dict(meta.get(f"{name}/.zattrs", {}))
        dims = tuple(attrs.pop("_ARRAY_DIMENSIONS", []))
        dtype = np.dtype(za["dtype"])
        shape = tuple(za["shape"])
        inner = shape[1:] if dims and dims[0] == TIME else shape
        out[name] = VarSpec(
            name, dims, dtype, inner, _fill_from_json(za["fill_value"], dtype), attrs
        )
    return out


def _time_bounds(group: zarr.Group, rows: int) -> tuple[float | None, float | None]:
    if rows == 0:
        return None, None
    t = group[TIME]
    return float(t[0]), float(t[rows - 1])


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else from_ntp_seconds(seconds)


# ------------------------------------------------------------------ the store
class StreamStore:
    """One Zarr store per OOI stream, with crash-safe appends and rebuilds."""

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        chunk_target_bytes: int = DEFAULT_CHUNK_TARGET,
    ):
        self.url = str(url)
        self.storage_options = dict(storage_options or {})
        self.chunk_target_bytes = int(chunk_target_bytes)
        self.loc = Location(self.url, self.storage_options)

    # ---------------------------------------------------------------- reading
    def exists(self) -> bool:
        return cm.read_committed(self.loc) is not None

    def info(self) -> StoreInfo:
        """The committed version as readers see it (no repair needed to read)."""
        zmeta = cm.read_committed(self.loc)
        if zmeta is None:
            return StoreInfo(None, None, 0, [], None)
        schema = schema_from_zmeta(zmeta)
        rows = int(cm.committed_arrays(zmeta)[TIME]["shape"][0])
        group = zarr.open_consolidated(
            self.loc.zarr_store(read_only=True), mode="r", zarr_format=2
        )
        tmin, tmax = _time_bounds(group, rows)
        version = zmeta["metadata"].get(".zattrs", {}).get("data_vent_version")
        return StoreInfo(_dt(tmin), _dt(tmax), rows, sorted(schema), version)

    def repair(self) -> bool:
        """Roll a crashed write back (or forward); True if something was pending."""
        return cm.repair(self.loc)

    # ---------------------------------------------------------------- writing
    def append_files(self, paths: Iterable[str | Path]) -> WriteOutcome:
        return self._write(list(paths), mode="append")

    def rebuild_from_files(self, paths: Iterable[str | Path]) -> WriteOutcome:
        """Build a new version beside the live store from ``paths``, check it, publish it."""
        self.repair()
        zmeta = cm.read_committed(self.loc)
        prev_version = None
        if zmeta is not None:
            prev_version = zmeta["metadata"].get(".zattrs", {}).get("data_vent_version")
        tag = uuid.uuid4().hex[:8]
        staging = self.loc.sibling(f".staging-{tag}")
        staging.remove_all()
        cm.write_journal(
            self.loc, {"op": "rebuild", "state": "staging", "staging": staging.url}
        )
        try:
            sub = StreamStore(staging.url, self.storage_options, self.chunk_target_bytes)
            outcome = sub._write(list(paths), mode="rebuild", base_version=prev_version)
            if outcome.needs_rebuild or not outcome.committed:
                raise StoreError(
                    f"rebuild of {self.url} failed: {outcome.rebuild_reason or 'no rows'}"
                )
            keys = staging.list_keys()
            cm.write_journal(
                self.loc,
                {"op": "rebuild", "state": "publishing", "staging": staging.url, "keys": keys},
            )
        except BaseException:
            self.repair()
            raise
        cm.publish(self.loc, staging, keys)
        return outcome

    def _write(
        self, paths: list[str | Path], mode: str, base_version: str | None = None
    ) -> WriteOutcome:
        self.repair()
        with ExitStack() as opened:  # a bad third file still closes the first two
            files = [opened.enter_context(NormalizedFile(p)) for p in paths]
            return _Batch(self, files, mode, base_version).run()


class _Batch:
    """One append (or the build of a rebuild) = one commit."""

    def __init__(
        self,
        store: StreamStore,
        files: list[NormalizedFile],
        mode: str,
        base_version: str | None,
    ):
        self.store = store
        self.loc = store.loc
        self.mode = mode
        self.zmeta = cm.read_committed(self.loc)
        self.prev_schema = schema_from_zmeta(self.zmeta) if self.zmeta else None
        self.prev_attrs = self.zmeta["metadata"].get(".zattrs", {}) if self.zmeta else {}
        self.base_version = base_version or self.prev_attrs.get("data_vent_version")
        self.base_rows = (
            int(cm.committed_arrays(self.zmeta)[TIME]["shape"][0]) if self.zmeta else 0
        )
        self.rules: list[RuleRecord] = []
        self.outcome = WriteOutcome(mode=mode, files=[str(nf.path) for nf in files])
        for nf in files:
            self.outcome.normalize_reports[nf.path.name] = nf.report.to_json()
        # files in order of their first valid time
        self.files = sorted(files, key=_first_time)
        self.rows = self.base_rows

    # ------------------------------------------------------------ main
    def run(self) -> WriteOutcome:
        out = self.outcome
        if not self.files:
            return self._finish_nochange()
        store_group = None
        if self.zmeta is not None:
            store_group = zarr.open_group(
                self.loc.zarr_store(), mode="r+", zarr_format=2, use_consolidated=False
            )
        plan = merge_schema(
            self.prev_schema,
            self.files,
            (lambda n: np.asarray(store_group[n][...])) if store_group is not None else None,
        )
        self.rules += plan.rules
        if plan.rebuild_reasons:
            return self._needs_rebuild("; ".join(plan.rebuild_reasons))
        self.plan = plan
        cm.write_journal(self.loc, {"op": "append", "base_rows": self.base_rows})
        try:
            with zarr.config.set({"array.write_empty_chunks": True}):
                if store_group is None:
                    store_group = zarr.open_group(
                        self.loc.zarr_store(), mode="a", zarr_format=2
                    )
                self.group = store_group
                self._create_arrays(plan)
                for nf in self.files:
                    keep = self._plan_rows(nf)
                    if keep is None:
                        self.store.repair()
                        return self._needs_rebuild(out.rebuild_reason or "")
                    self._write_rows(nf, keep)
                if self.rows == self.base_rows:
                    self.store.repair()
                    return self._finish_nochange()
                self._set_fills(plan)
                self._commit()
        except BaseException:
            self.store.repair()
            raise
        return out

    # ------------------------------------------------------------ schema
    def _chunk_cap(self) -> int | None:
        """New store: ``growth_rows`` of this write; existing store: its time chunk length
        (arrays added later line up with time)."""
        if TIME in self.group and self.zmeta is not None:
            return int(self.group[TIME].chunks[0])
        return growth_rows(sum(nf.time_scan().n_valid for nf in self.files))

    def _create_arrays(self, plan: SchemaPlan) -> None:
        target = self.store.chunk_target_bytes
        cap = self._chunk_cap() if plan.new_arrays else None
        for name in plan.new_arrays:
            spec = plan.target[name]
            attrs = {"_ARRAY_DIMENSIONS": list(spec.dims), **spec.attrs}
            if spec.timed:
                shape = (self.base_rows, *spec.shape_inner)
                chunks = (chunk_rows(spec, target, cap), *spec.shape_inner)
            else:
                shape = spec.shape_inner
                chunks = spec.shape_inner
            fill = spec.fill_value
            if spec.is_string:
                fill = ""
            arr = self.group.create_array(
                name,
                shape=shape,
                chunks=tuple(max(1, c) for c in chunks),
                dtype=str if spec.is_string else spec.dtype,
                compressors=COMPRESSOR,
                fill_value=fill,
                attributes=attrs,
                overwrite=True,
            )
            if not spec.timed:
                arr[...] = plan.statics[name].astype(spec.dtype, copy=False)
            elif self.base_rows:
                self._fill_range(arr, spec, 0, self.base_rows)
                self.rules.append(RuleRecord("new_variable_filled", name, self.base_rows))

    def _set_fills(self, plan: SchemaPlan) -> None:
        """Record fill values assigned to committed arrays (``fill_value_assigned``)."""
        for name in plan.changed_fill:
            za = cm.read_json(self.loc, f"{name}/.zarray")
            fill = plan.target[name].fill_value
            za["fill_value"] = (
                "NaN"
                if isinstance(fill, float) and math.isnan(fill)
                else (fill.item() if isinstance(fill, np.generic) else fill)
            )
            self.loc.write_atomic(f"{name}/.zarray", json.dumps(za, indent=4).encode())

    # ------------------------------------------------------------ rows
    def _existing_times_from(self, tmin: float) -> tuple[int, np.ndarray]:
        """Stored times >= ``tmin``: walk time chunks back from the end."""
        if self.rows == 0:
            return 0, np.empty(0)
        arr = self.group[TIME]
        c = arr.chunks[0]
        end = self.rows
        parts = []
        start = end
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

    def _plan_rows(self, nf: NormalizedFile) -> np.ndarray | range | None:
        """File rows to append, in order; None when a rebuild is needed.

        A clean file (every time valid, strictly increasing: the usual case) gives a
        ``range`` (rows after the part already in the store) and is read in blocks, so
        memory does not grow with the file; any other file is planned on index arrays.
        """
        sc = nf.time_scan()
        if sc.clean:
            k = 0
            if self.rows and sc.rows:
                _, t_end = _time_bounds(self.group, self.rows)
                if sc.first <= t_end:
                    k = self._rows_up_to(nf, t_end)
                    idx = np.arange(k)
                    if not self._overlap_ok(nf, idx, nf.read(TIME, slice(0, k)), t_end):
                        return None
            return range(k, nf.rows)
        return self._plan_rows_indexed(nf)

    @staticmethod
    def _rows_up_to(nf: NormalizedFile, t_end: float) -> int:
        """Rows of a clean (sorted) file with time <= ``t_end``, read block by block."""
        k = 0
        for a in range(0, nf.rows, TIME_BLOCK):
            t, _ = nf.time_block(a, min(nf.rows, a + TIME_BLOCK))
            n = int(np.searchsorted(t, t_end, side="right"))
            k += n
            if n < t.size:
                break
        return k

    def _plan_rows_indexed(self, nf: NormalizedFile) -> np.ndarray | None:
        name = nf.path.name
        t = nf.time()
        valid = ~np.isnan(t)
        tf = nf.time_fill()
        if tf is not None and not np.isnan(tf):
            valid &= _raw_time_valid(nf, tf)
        idx = np.nonzero(valid)[0]
        if idx.size < t.size:
            self.rules.append(
                RuleRecord("invalid_time_dropped", TIME, int(t.size - idx.size), name)
            )
        ts = t[idx]
        if ts.size > 1 and np.any(np.diff(ts) < 0):
            order = np.argsort(ts, kind="stable")
            moved = int(np.count_nonzero(order != np.arange(order.size)))
            idx, ts = idx[order], ts[order]
            self.rules.append(RuleRecord("sorted_within_file", TIME, moved, name))
        dup = np.nonzero(np.diff(ts) == 0)[0] + 1 if ts.size > 1 else np.empty(0, int)
        if dup.size:
            self._compare_file_rows(nf, idx[dup], idx[dup - 1], ts[dup])
            mask = np.ones(ts.size, bool)
            mask[dup] = False
            idx, ts = idx[mask], ts[mask]
            self.rules.append(
                RuleRecord("duplicate_in_file_dropped", TIME, int(dup.size), name)
            )
        if self.rows and ts.size:
            _, t_end = _time_bounds(self.group, self.rows)
            old = ts <= t_end
            if old.any():
                if not self._overlap_ok(nf, idx[old], ts[old], t_end):
                    return None
                idx = idx[~old]
        return idx

    def _overlap_ok(self, nf: NormalizedFile, fidx: np.ndarray, ot: np.ndarray, t_end) -> bool:
        """File rows ``fidx`` (times ``ot`` <= the store end) must be rows already stored,
        identical: they are dropped (``overlap_identical_dropped``). False: rebuild."""
        name = nf.path.name
        start, stored = self._existing_times_from(float(ot[0]))
        pos = np.searchsorted(stored, ot)
        pos_c = np.minimum(pos, max(stored.size - 1, 0))
        matched = (
            (pos < stored.size) & (stored[pos_c] == ot)
            if stored.size
            else np.zeros(ot.size, bool)
        )
        if not matched.all():
            n_bad = int((~matched).sum())
            first = _dt(float(ot[~matched][0]))
            self.rules.append(
                RuleRecord("older_than_store_end", TIME, n_bad, name, f"first at {first}")
            )
            self.outcome.rebuild_reason = (
                f"{n_bad} rows of {name} fall before the store end "
                f"({_dt(t_end)}) at times not in the store (first {first})"
            )
            return False
        self._compare_store_rows(nf, fidx, start + pos, ot)
        self.rules.append(RuleRecord("overlap_identical_dropped", TIME, int(fidx.size), name))
        return True

    def _prepared(self, nf: NormalizedFile, name: str, idx: np.ndarray | slice) -> np.ndarray:
        return prepared(self.plan.target[name], nf, name, idx)

    def _compare_file_rows(self, nf, a: np.ndarray, b: np.ndarray, ts: np.ndarray) -> None:
        for name, spec in nf.specs.items():
            if not spec.timed:
                continue
            eq = rows_equal(self._prepared(nf, name, a), self._prepared(nf, name, b))
            if not eq.all():
                raise AppendConflict(
                    f"{nf.path.name}: two rows at time {_dt(float(ts[~eq][0]))} differ in "
                    f"{name}; fix the file or rebuild"
                )

    def _compare_store_rows(self, nf, fidx: np.ndarray, sidx: np.ndarray, ts) -> None:
        """Overlap rows must equal the stored ones; arrays new in this batch take them.

        A variable that first appears in this batch (``new_variable``) has no committed
        values: its stored rows are fill, so the overlap rows' values are written into the
        (uncommitted) new array instead of being compared (rule ``new_variable_backfilled``).
        """
        lo, hi = int(sidx.min()), int(sidx.max()) + 1
        for name, spec in nf.specs.items():
            if not spec.timed or name not in self.group:
                continue
            if name in self.plan.new_arrays:
                self.group[name].set_orthogonal_selection(
                    (sidx,), self._prepared(nf, name, fidx)
                )
                self.rules.append(
                    RuleRecord("new_variable_backfilled", name, int(sidx.size), nf.path.name)
                )
                continue
            stored = np.asarray(self.group[name][lo:hi])[sidx - lo]
            if self.plan.target[name].is_string:
                stored = stored.astype(object)
            eq = rows_equal(self._prepared(nf, name, fidx), stored)
            if not eq.all():
                raise AppendConflict(
                    f"{nf.path.name}: row at time {_dt(float(ts[~eq][0]))} differs from the "
                    f"stored row in {name}; the source was reprocessed: rebuild"
                )

    def _fill_range(self, arr: zarr.Array, spec: VarSpec, g0: int, g1: int) -> None:
        c = arr.chunks[0]
        for a, b in pieces(g0, g1, c):
            fill = "" if spec.is_string else spec.fill_value
            dtype = object if spec.is_string else spec.dtype
            arr[a:b] = np.full((b - a, *spec.shape_inner), fill, dtype=dtype)

    def _write_rows(self, nf: NormalizedFile, keep: np.ndarray | range) -> None:
        n = len(keep)
        if n == 0:
            return
        g0, g1 = self.rows, self.rows + n
        for name, spec in self.plan.target.items():
            if not spec.timed:
                continue
            arr = self.group[name]
            arr.resize((g1, *spec.shape_inner))
            if name not in nf.specs:
                self._fill_range(arr, spec, g0, g1)
                self.rules.append(RuleRecord("missing_variable", name, n, nf.path.name))
                continue
            if nf.specs[name].shape_inner != spec.shape_inner:
                self.rules.append(RuleRecord("dimension_padded", name, n, nf.path.name))
            for a, b in pieces(g0, g1, arr.chunks[0]):
                sel = keep[a - g0 : b - g0]
                if isinstance(sel, range):
                    sel = slice(sel.start, sel.stop)
                arr[a:b] = self._prepared(nf, name, sel)
        self.rows = g1

    # ------------------------------------------------------------ commit
    def _commit(self) -> None:
        group = zarr.open_group(
            self.loc.zarr_store(), mode="r+", zarr_format=2, use_consolidated=False
        )
        check_write(
            group, self.plan.target, self.rows, self.base_rows, self.prev_schema, self.mode
        )
        tmin, tmax = _time_bounds(group, self.rows)
        version = next_version(self.base_version)
        attrs = dict(self.prev_attrs)
        for nf in self.files:
            attrs.update(nf.attrs)
        attrs.update(
            time_coverage_start=_dt(tmin).isoformat(),
            time_coverage_end=_dt(tmax).isoformat(),
            data_vent_version=version,
            data_vent_rows=self.rows,
        )
        self.loc.write_atomic(".zattrs", json.dumps(attrs, indent=4).encode())
        zmeta = cm.build_zmetadata(self.loc, sorted(self.plan.target))
        cm.commit(self.loc, zmeta)
        self.loc.delete([cm.JOURNAL])
        out = self.outcome
        out.committed = True
        out.version = version
        out.rows_added = self.rows - self.base_rows
        out.rows_total = self.rows
        out.time_min, out.time_max = _dt(tmin), _dt(tmax)
        out.rules_applied = _aggregate(self.rules)

    def _finish_nochange(self) -> WriteOutcome:
        out = self.outcome
        out.rows_total = self.base_rows
        out.version = self.base_version if self.zmeta else None
        if self.zmeta is not None:
            info = self.store.info()
            out.time_min, out.time_max = info.time_min, info.time_max
        out.rules_applied = _aggregate(self.rules)
        return out

    def _needs_rebuild(self, reason: str) -> WriteOutcome:
        out = self._finish_nochange()
        out.needs_rebuild = True
        out.rebuild_reason = reason
        return out


def _raw_time_valid(nf: NormalizedFile, fill: float) -> np.ndarray:
    raw = np.asarray(nf.ds.variables[TIME].values)
    return raw != fill


def _first_time(nf: NormalizedFile) -> float:
    return nf.time_scan().first


def _aggregate(rules: list[RuleRecord]) -> list[dict[str, Any]]:
    return [r.to_json() for r in rules]


def ingest_files(
    url: str,
    paths: Iterable[str | Path],
    storage_options: dict[str, Any] | None = None,
    mode: str = "append",
    chunk_target_bytes: int = DEFAULT_CHUNK_TARGET,
) -> WriteOutcome:
    """CLI entry (``data-vent ingest``): append ``paths``, or rebuild from them."""
    store = StreamStore(url, storage_options, chunk_target_bytes)
    if mode == "append":
        return store.append_files(paths)
    if mode == "rebuild":
        return store.rebuild_from_files(paths)
    raise ValueError(f"mode must be 'append' or 'rebuild', not {mode!r}")

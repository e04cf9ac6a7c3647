"""Write normalised files into one stream store: new store, append, rebuild.

Encoding: Zarr format 2, consolidated metadata, ``time`` float64 seconds since 1900-01-01 with
CF attributes; chunks and compression in ``chunks.py``.

Memory: time is scanned and planned in blocks (``TimeScan``; a clean file -- every time valid
and strictly increasing -- becomes one contiguous row range), data are moved one variable and
one chunk-aligned piece at a time, and the checks read time back chunk by chunk, so memory
holds about one chunk of one variable whatever the file size. Only a file with invalid,
unsorted or duplicate times, and files whose time spans overlap (merged into one segment),
are planned on whole-file arrays (8-28 bytes a row; ``rows.py``). Each chunk is written once
(the store's last partial chunk once per segment). The commit protocol is in ``commit.py``,
the append rules in ``rules.py``.
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

from data_vent.core.timeutil import from_ntp_seconds
from data_vent.store import commit as cm
from data_vent.store.checks import check_write
from data_vent.store.chunks import (
    COMPRESSOR,
    DEFAULT_CHUNK_TARGET,
    chunk_rows,
    growth_rows,
    pieces,
)
from data_vent.store.identity import check_stream, split_table
from data_vent.store.location import Location
from data_vent.store.normalize import STR_DTYPE, TIME, NormalizedFile, VarSpec
from data_vent.store.outcome import StoreInfo, WriteOutcome, next_version
from data_vent.store.rows import (
    Rows,
    Selection,
    file_rows,
    merge_files,
    split_at,
    stored_times_from,
)
from data_vent.store.rules import (
    AppendConflict,
    RuleRecord,
    SchemaPlan,
    StoreError,
    default_fill,
    merge_schema,
)
from data_vent.store.values import prepared, rows_equal


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
        table: str | None = None,
    ):
        """``table``: the OOI table name (asset key) the store holds; files that say they
        hold another stream are refused (``WrongStream``). None: files are not checked."""
        self.url = str(url)
        self.storage_options = dict(storage_options or {})
        self.chunk_target_bytes = int(chunk_target_bytes)
        self.loc = Location(self.url, self.storage_options)
        if table is not None:
            split_table(table)  # a malformed key fails here, not at the first file
        self.table = table

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
            sub = StreamStore(
                staging.url, self.storage_options, self.chunk_target_bytes, self.table
            )
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
            unidentified = []
            if self.table is not None:
                unidentified = [nf for nf in files if not check_stream(nf, self.table)]
            batch = _Batch(self, files, mode, base_version)
            batch.rules += [
                RuleRecord("stream_unidentified", file=nf.path.name, detail=self.table)
                for nf in unidentified
            ]
            return batch.run()


class _Batch:
    """One append (or the build of a rebuild) = one commit.

    Rows are planned (``rows.py``) and checked against the store before anything is written:
    a write that needs a rebuild, or that conflicts, leaves no trace. Then, under the journal:
    new arrays, values of new variables for overlap rows, the rows, metadata, checks, commit.
    """

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
        # files in order of their first valid time: later files' metadata wins
        self.files = sorted(files, key=_first_time)
        self.rows = self.base_rows
        self.backfills: list[tuple[str, NormalizedFile, Selection, np.ndarray]] = []

    # ------------------------------------------------------------ main
    def run(self) -> WriteOutcome:
        if not self.files:
            return self._finish_nochange()
        group = None
        if self.zmeta is not None:
            group = zarr.open_group(
                self.loc.zarr_store(), mode="r+", zarr_format=2, use_consolidated=False
            )
        plan = merge_schema(
            self.prev_schema,
            self.files,
            (lambda n: np.asarray(group[n][...])) if group is not None else None,
        )
        self.rules += plan.rules
        if plan.rebuild_reasons:
            return self._needs_rebuild("; ".join(plan.rebuild_reasons))
        self.plan = plan
        segments = self._plan_rows()
        if group is not None and self.base_rows:
            segments = self._against_store(group, segments)
            if segments is None:
                return self._needs_rebuild(self.outcome.rebuild_reason or "")
        if not any(len(seg) for seg in segments):
            return self._finish_nochange()
        cm.write_journal(self.loc, {"op": "append", "base_rows": self.base_rows})
        try:
            with zarr.config.set({"array.write_empty_chunks": True}):
                if group is None:
                    group = zarr.open_group(self.loc.zarr_store(), mode="a", zarr_format=2)
                self.group = group
                self._create_arrays(plan)
                self._backfill()
                for seg in segments:
                    self._write_rows(seg)
                self._set_fills(plan)
                self._set_attrs(plan)
                self._commit()
        except BaseException:
            self.store.repair()
            raise
        return self.outcome

    # ------------------------------------------------------------ rows
    def _plan_rows(self) -> list[Rows]:
        """Every file's rows, files merged by time where their spans overlap."""
        segments = []
        for nf in self.files:
            seg = file_rows(nf, self._compare_files, self.rules)
            if seg is not None:
                segments.append(seg)
        return merge_files(segments, self._compare_files, self.rules)

    def _against_store(self, group: zarr.Group, segments: list[Rows]) -> list[Rows] | None:
        """Rows at or before the store end must be stored rows, identical: they are dropped
        (``overlap_identical_dropped``). None: some are not in the store (rebuild)."""
        _, t_end = _time_bounds(group, self.base_rows)
        out = []
        for seg in segments:
            old, new = split_at(seg, t_end)
            if len(old) and not self._overlap_ok(group, old, t_end):
                return None
            if len(new):
                out.append(new)
        return out

    def _overlap_ok(self, group: zarr.Group, old: Rows, t_end: float) -> bool:
        ot = old.read_times()
        start, stored = stored_times_from(group[TIME], self.base_rows, float(ot[0]))
        pos = np.searchsorted(stored, ot)
        pos_c = np.minimum(pos, max(stored.size - 1, 0))
        matched = (
            (pos < stored.size) & (stored[pos_c] == ot)
            if stored.size
            else np.zeros(ot.size, bool)
        )
        if not matched.all():
            names = []
            for nf, m, _ in old.parts():
                bad = ~matched if m is None else ~matched & m
                if bad.any():
                    names.append(nf.path.name)
                    first = _dt(float(ot[bad][0]))
                    self.rules.append(
                        RuleRecord(
                            "older_than_store_end",
                            TIME,
                            int(bad.sum()),
                            nf.path.name,
                            f"first at {first}",
                        )
                    )
            self.outcome.rebuild_reason = (
                f"{int((~matched).sum())} rows of {', '.join(names)} fall before the store "
                f"end ({_dt(t_end)}) at times not in the store "
                f"(first {_dt(float(ot[~matched][0]))})"
            )
            return False
        for nf, m, frows in old.parts():
            sidx = start + (pos if m is None else pos[m])
            self._compare_store_rows(group, nf, frows, sidx, ot if m is None else ot[m])
            self.rules.append(
                RuleRecord("overlap_identical_dropped", TIME, int(sidx.size), nf.path.name)
            )
        return True

    # ------------------------------------------------------------ comparing rows
    def _prepared(self, nf: NormalizedFile, name: str, idx: Selection) -> np.ndarray:
        return prepared(self.plan.target[name], nf, name, idx)

    def _compare_files(
        self, a: NormalizedFile, ra: np.ndarray, b: NormalizedFile, rb: np.ndarray, ts
    ) -> None:
        """Rows ``ra`` of ``a`` and ``rb`` of ``b`` (same times ``ts``) must be identical on
        the variables both files have, else ``AppendConflict`` (the first differing time)."""
        names = [n for n, s in a.specs.items() if s.timed and n != TIME and n in b.specs]
        for lo in range(0, len(ra), COMPARE_BLOCK):
            sl = slice(lo, lo + COMPARE_BLOCK)
            hit = _first_difference(
                (
                    (n, self._prepared(a, n, ra[sl]), self._prepared(b, n, rb[sl]))
                    for n in names
                ),
                ts[sl],
            )
            if hit is None:
                continue
            t, name = hit
            if a is b:
                raise AppendConflict(
                    f"{a.path.name}: two rows at time {_dt(t)} differ in {name}; "
                    "fix the file or leave it out"
                )
            raise AppendConflict(
                f"{a.path.name} and {b.path.name} hold different rows for the same time: "
                f"first at {_dt(t)} in {name}; leave one of them out"
            )

    def _compare_store_rows(
        self, group: zarr.Group, nf: NormalizedFile, frows: Selection, sidx: np.ndarray, ts
    ) -> None:
        """Overlap rows must equal the stored ones; arrays new in this batch take them.

        A variable that first appears in this batch (``new_variable``) has no committed
        values: its stored rows are fill, so the overlap rows' values are written into the
        (uncommitted) new array instead of being compared (rule ``new_variable_backfilled``).
        """
        fidx = np.arange(frows.start, frows.stop) if isinstance(frows, slice) else frows
        names = []
        for name, spec in nf.specs.items():
            if not spec.timed or name == TIME or name not in self.plan.target:
                continue
            if name in self.plan.new_arrays:
                self.backfills.append((name, nf, fidx, sidx))
                self.rules.append(
                    RuleRecord("new_variable_backfilled", name, int(sidx.size), nf.path.name)
                )
            elif name in group:
                names.append(name)
        for lo in range(0, sidx.size, COMPARE_BLOCK):
            s = sidx[lo : lo + COMPARE_BLOCK]
            f = fidx[lo : lo + COMPARE_BLOCK]
            a, b = int(s[0]), int(s[-1]) + 1

            def stored(name: str, a: int = a, b: int = b, s: np.ndarray = s) -> np.ndarray:
                vals = np.asarray(group[name][a:b])[s - a]
                return vals.astype(STR_DTYPE) if self.plan.target[name].is_string else vals

            hit = _first_difference(
                ((n, self._prepared(nf, n, f), stored(n)) for n in names),
                ts[lo : lo + COMPARE_BLOCK],
            )
            if hit is not None:
                raise AppendConflict(
                    f"{nf.path.name}: row at time {_dt(hit[0])} differs from the stored row "
                    f"in {hit[1]}; the source was reprocessed: rebuild"
                )

    def _backfill(self) -> None:
        masks = {v: m for m, v in self.plan.masks.items()}
        for name, nf, fidx, sidx in self.backfills:
            self.group[name].set_orthogonal_selection((sidx,), self._prepared(nf, name, fidx))
            if name in masks:
                self.group[masks[name]].set_orthogonal_selection(
                    (sidx,), np.zeros(sidx.size, bool)
                )

    # ------------------------------------------------------------ schema
    def _time_chunk(self, plan: SchemaPlan) -> int:
        """The store's one time-chunk length: an existing store's (arrays added later line
        up with it); for a new store or a rebuild, sized from all its variables and rows."""
        if TIME in self.group and self.zmeta is not None:
            return int(self.group[TIME].chunks[0])
        rows = sum(nf.time_scan().n_valid for nf in self.files)
        return chunk_rows(
            plan.target.values(), self.store.chunk_target_bytes, growth_rows(rows)
        )

    def _create_arrays(self, plan: SchemaPlan) -> None:
        time_chunk = self._time_chunk(plan) if plan.new_arrays else 0
        for name in plan.new_arrays:
            spec = plan.target[name]
            attrs = {"_ARRAY_DIMENSIONS": list(spec.dims), **spec.attrs}
            if spec.timed:
                shape = (self.base_rows, *spec.shape_inner)
                chunks = (time_chunk, *spec.shape_inner)
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
            elif name in plan.masks and self.base_rows:
                # the stored rows lack the variable only if it is new as well
                absent = plan.masks[name] in plan.new_arrays
                for a, b in pieces(0, self.base_rows, arr.chunks[0]):
                    arr[a:b] = np.full(b - a, absent)
            elif self.base_rows:
                self._fill_range(arr, spec, 0, self.base_rows)
                self.rules.append(RuleRecord("new_variable_filled", name, self.base_rows))

    def _set_attrs(self, plan: SchemaPlan) -> None:
        """Attributes of committed arrays that a newer file changed (``attribute_*``)."""
        for name in plan.changed_attrs:
            spec = plan.target[name]
            attrs = {"_ARRAY_DIMENSIONS": list(spec.dims), **spec.attrs}
            self.loc.write_atomic(f"{name}/.zattrs", json.dumps(attrs, indent=4).encode())

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

    # ------------------------------------------------------------ writing rows
    def _fill_range(self, arr: zarr.Array, spec: VarSpec, g0: int, g1: int) -> None:
        for a, b in pieces(g0, g1, arr.chunks[0]):
            arr[a:b] = self._absent(spec, b - a)

    @staticmethod
    def _absent(spec: VarSpec, n: int) -> np.ndarray:
        """What rows without the variable hold: its fill, else (an integer variable, whose
        mask says these rows are absent) the netCDF default fill."""
        if spec.is_string:
            return np.full((n, *spec.shape_inner), "", dtype=STR_DTYPE)
        fill = default_fill(spec.dtype) if spec.fill_value is None else spec.fill_value
        return np.full((n, *spec.shape_inner), fill, dtype=spec.dtype)

    def _part(self, name: str, spec: VarSpec, nf: NormalizedFile, sel: Selection, n: int):
        covers = self.plan.masks.get(name)
        if covers is not None:  # an absence mask: True where the file lacks the variable
            return np.full(n, covers not in nf.specs)
        if name not in nf.specs:
            return self._absent(spec, n)
        return self._prepared(nf, name, sel)

    def _values(self, name: str, spec: VarSpec, rows: Rows) -> np.ndarray:
        """Rows of ``name`` as stored, gathered from the file(s) they come from."""
        parts = list(rows.parts())
        if len(parts) == 1:
            nf, _, sel = parts[0]
            return self._part(name, spec, nf, sel, len(rows))
        dtype = STR_DTYPE if spec.is_string else spec.dtype
        out = np.empty((len(rows), *spec.shape_inner), dtype=dtype)
        for nf, m, sel in parts:
            out[m] = self._part(name, spec, nf, sel, int(m.sum()))
        return out

    def _write_rows(self, seg: Rows) -> None:
        n = len(seg)
        g0, g1 = self.rows, self.rows + n
        counts = list(seg.count_by_file())
        for name, spec in self.plan.target.items():
            if not spec.timed:
                continue
            arr = self.group[name]
            arr.resize((g1, *spec.shape_inner))
            for nf, k in counts:
                if name in self.plan.masks:
                    continue
                if name not in nf.specs:
                    self.rules.append(RuleRecord("missing_variable", name, k, nf.path.name))
                elif nf.specs[name].shape_inner != spec.shape_inner:
                    self.rules.append(RuleRecord("dimension_padded", name, k, nf.path.name))
            for a, b in pieces(g0, g1, arr.chunks[0]):
                arr[a:b] = self._values(name, spec, seg.take(a - g0, b - g0))
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


COMPARE_BLOCK = 1 << 20
"""Rows compared at once (per variable): memory stays flat for a big overlap."""


def _first_difference(
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], ts: np.ndarray
) -> tuple[float, str] | None:
    """``(time, variable)`` of the earliest row where some pair of values differs."""
    hit: tuple[float, str] | None = None
    for name, a, b in pairs:
        eq = rows_equal(a, b)
        if not eq.all():
            t = float(ts[~eq][0])
            if hit is None or t < hit[0]:
                hit = (t, name)
    return hit


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
    table: str | None = None,
) -> WriteOutcome:
    """CLI entry (``data-vent ingest``): append ``paths``, or rebuild from them; files of
    another stream than ``table`` are refused."""
    store = StreamStore(url, storage_options, chunk_target_bytes, table)
    if mode == "append":
        return store.append_files(paths)
    if mode == "rebuild":
        return store.rebuild_from_files(paths)
    raise ValueError(f"mode must be 'append' or 'rebuild', not {mode!r}")

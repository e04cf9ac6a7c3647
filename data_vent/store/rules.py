"""Append rules: every decision about rows and schema is explicit and recorded.

Each applied rule is one ``RuleRecord`` (rule name, variable, count, file, detail) returned in
the ``WriteOutcome`` so the materialization can store it.

Rows (planned in ``rows.py`` before anything is written; the files of one write are merged
by time whatever the order they were given in):

* ``invalid_time_dropped``: rows whose time is NaN or the time ``_FillValue``: a dimension
  coordinate has no missing values.
* ``sorted_within_file``: a file whose times are not non-decreasing is stably sorted (count =
  rows that moved). Only rows of the files being written are reordered, never stored rows.
* ``duplicate_in_file_dropped``: equal times inside one file whose rows are identical (all
  variables, NaN equal to NaN) keep the first; different rows at one time raise
  ``AppendConflict`` naming the file, the variable and the time.
* ``overlap_identical_dropped``: a row whose time another file of the write, or the store,
  already holds with identical values (on the variables both have) is dropped (detail: the
  file kept); this also makes a re-run of the same append a no-op. Different values at one
  time are never resolved silently: ``AppendConflict`` names the two files (or the file and
  the store), the variable and the first differing time.
* ``older_than_store_end``: rows before the store's last time whose time is not in the store
  cannot be appended without reordering: the outcome is ``needs_rebuild`` (a rebuild from
  every file merges them) and nothing is written.

Schema (``merge_schema``, store schema vs. each file):

* ``new_variable``: created; rows before it are absent (below).
* ``missing_variable``: the file's rows of a variable it lacks are absent. Absent rows hold the
  variable's fill value: its ``_FillValue``, else (``fill_value_assigned``) NaN for floats and
  ``''`` for strings. An integer (or boolean) variable without ``_FillValue`` gets none: a
  declared fill would make readers decode it as float, and could equal a real value (a QC
  flag of 255). Its absent rows hold the netCDF default fill instead, and a boolean mask
  ``<name>_absent`` (attribute ``data_vent_absent_of``; True: absent) says which rows they are
  (``absent_rows_masked``), so readers get the source dtype and no value is ambiguous.
* ``cast_to_store_dtype``: the file's dtype casts exactly into the store's (e.g. int16 into
  int32): values are cast. ``dtype_widened``: inside a new store or a rebuild the store dtype
  is the exact common type. Appending a file that would widen a committed variable gives
  ``needs_rebuild`` naming the variable; no exact common type (int64 and float, str and number)
  raises ``SchemaConflict``.
* ``attribute_added``, ``attribute_changed``, ``units_changed``: variable attributes follow
  the newest file (files in time order, the store's before them): keys it adds are added,
  values it changes are taken, keys it lacks are kept. ``units_changed`` flags a change (or
  the first appearance) of ``units``: rows stored before may be in other units.
* ``fill_value_remapped``: the file's ``_FillValue`` differs from the store's: fill values are
  rewritten to the store's.
* ``dimension_padded``: a non-time dimension smaller than the store's (OPTAA ``wavelength``)
  is padded with fill; a larger one grows the store in a new store or rebuild, and gives
  ``needs_rebuild`` on append. Static arrays (``wavelength`` values) must agree on their
  common prefix, else ``needs_rebuild``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import netCDF4
import numpy as np

from data_vent.core.errors import DataVentError
from data_vent.store.normalize import TIME, NormalizedFile, VarSpec


class StoreError(DataVentError):
    """A write that the store refuses; the store is left at its last committed version."""


class AppendConflict(StoreError):
    """The same time holds different values in two files, or in the store and a file: the
    files given are what must change (leave one out, or rebuild from the new ones)."""

    exit_code = 2


class WrongStream(StoreError):
    """A file of another stream (refdes, method or stream) than the store's: bad input."""

    exit_code = 2


class SchemaConflict(StoreError):
    """A variable changes in a way no exact conversion covers."""


class CheckFailed(StoreError):
    """A post-write check failed; the commit was not made."""


@dataclass
class RuleRecord:
    rule: str
    variable: str | None = None
    count: int = 0
    file: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class SchemaPlan:
    target: dict[str, VarSpec]
    rules: list[RuleRecord] = field(default_factory=list)
    rebuild_reasons: list[str] = field(default_factory=list)
    new_arrays: list[str] = field(default_factory=list)
    changed_fill: list[str] = field(default_factory=list)
    changed_attrs: list[str] = field(default_factory=list)  # committed arrays only
    masks: dict[str, str] = field(default_factory=dict)  # mask -> variable it covers
    statics: dict[str, np.ndarray] = field(default_factory=dict)


# ------------------------------------------------------------------ dtypes and fills
def exact_common_dtype(a: np.dtype, b: np.dtype) -> np.dtype | None:
    """The smallest dtype both cast into without changing any value, or None."""
    if a == b:
        return a
    if (a.kind == "O") != (b.kind == "O"):
        return None
    r = np.result_type(a, b)
    for d in (a, b):
        if d.kind in "iu" and r.kind == "f" and d.itemsize * 2 > r.itemsize:
            return None  # int32 -> float32 or int64 -> float64 would round
    return r


def default_fill(dtype: np.dtype) -> Any:
    if dtype.kind == "O":
        return ""
    if dtype.kind == "f":
        return dtype.type(np.nan)
    if dtype.kind == "b":
        return False
    key = f"{dtype.kind}{dtype.itemsize}"
    return dtype.type(netCDF4.default_fillvals[key])


# ------------------------------------------------------------------ attributes
ATTR_DETAIL_CHARS = 80


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= ATTR_DETAIL_CHARS else text[: ATTR_DETAIL_CHARS - 1] + "…"


def merge_attrs(
    old: dict[str, Any], new: dict[str, Any], name: str, fname: str, rules: list[RuleRecord]
) -> dict[str, Any]:
    """A variable's attributes after a newer file: its new keys added, its changed values
    taken (a key it lacks is kept). Each change is a rule: ``units_changed`` for ``units``
    (also when units first appear: the stored rows had none), else ``attribute_added`` or
    ``attribute_changed``."""
    out = dict(old)
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        if key == "units":
            rule = "units_changed"
            detail = f"{_short(old.get(key))} -> {_short(value)}"
        elif key in old:
            rule, detail = "attribute_changed", f"{key}: {_short(old[key])} -> {_short(value)}"
        else:
            rule, detail = "attribute_added", f"{key}={_short(value)}"
        rules.append(RuleRecord(rule, name, file=fname, detail=detail))
        out[key] = value
    return out


# ------------------------------------------------------------------ absence masks
MASK_ATTR = "data_vent_absent_of"


def mask_name(name: str) -> str:
    return f"{name}_absent"


def _add_mask(plan: SchemaPlan, name: str) -> None:
    """A boolean ``<name>_absent`` beside integer variable ``name`` (see the module doc)."""
    mask = mask_name(name)
    if mask in plan.masks:
        return
    if mask in plan.target:
        raise SchemaConflict(
            f"variable {name}: rows without it need a mask {mask}, but a variable of that "
            "name exists; rebuild without the file that lacks it"
        )
    fill = default_fill(plan.target[name].dtype)
    attrs = {
        "long_name": f"{name} absent from the source file",
        "comment": (
            f"True where the file these rows come from had no {name}: its value there is not "
            f"data (it holds {np.asarray(fill).item()!r}, the netCDF default fill)"
        ),
        MASK_ATTR: name,
    }
    plan.target[mask] = VarSpec(mask, (TIME,), np.dtype(bool), (), None, attrs)
    plan.masks[mask] = name
    plan.new_arrays.append(mask)
    plan.rules.append(RuleRecord("absent_rows_masked", name, detail=mask))


# ------------------------------------------------------------------ schema
def merge_schema(
    store: dict[str, VarSpec] | None,
    files: list[NormalizedFile],
    read_static: Callable[[str], np.ndarray] | None,
) -> SchemaPlan:
    """Target schema for writing ``files`` into ``store`` (None: new store or rebuild)."""
    frozen = set(store or {})
    plan = SchemaPlan(target=dict(store or {}))
    for name, spec in (store or {}).items():
        if MASK_ATTR in spec.attrs:
            plan.masks[name] = str(spec.attrs[MASK_ATTR])
    statics: dict[str, np.ndarray] = {}
    if store and read_static:
        statics = {n: read_static(n) for n, s in store.items() if not s.timed}
    for nf in files:
        fname = nf.path.name
        for name, spec in nf.specs.items():
            cur = plan.target.get(name)
            if cur is None:
                plan.target[name] = spec
                if store is not None:
                    plan.rules.append(RuleRecord("new_variable", name, file=fname))
                plan.new_arrays.append(name)
                if not spec.timed:
                    statics[name] = nf.read(name)
                continue
            if cur.dims != spec.dims:
                raise SchemaConflict(
                    f"variable {name}: dims {spec.dims} in {fname}, {cur.dims}"
                )
            attrs = merge_attrs(cur.attrs, spec.attrs, name, fname, plan.rules)
            if attrs != cur.attrs:
                cur = replace(cur, attrs=attrs)
                plan.target[name] = cur
                if name in frozen and name not in plan.changed_attrs:
                    plan.changed_attrs.append(name)
            dtype = cur.dtype
            if spec.dtype != cur.dtype:
                common = exact_common_dtype(cur.dtype, spec.dtype)
                if common is None:
                    raise SchemaConflict(
                        f"variable {name}: dtype {spec.dtype} in {fname} has no exact common "
                        f"type with the store's {cur.dtype}; rebuild with a conversion rule"
                    )
                if common == cur.dtype:
                    plan.rules.append(
                        RuleRecord(
                            "cast_to_store_dtype",
                            name,
                            file=fname,
                            detail=f"{spec.dtype}->{cur.dtype}",
                        )
                    )
                elif name in frozen:
                    plan.rebuild_reasons.append(
                        f"dtype of {name} widens from {cur.dtype} to {common} ({fname})"
                    )
                else:
                    plan.rules.append(
                        RuleRecord(
                            "dtype_widened",
                            name,
                            file=fname,
                            detail=f"{cur.dtype}+{spec.dtype}->{common}",
                        )
                    )
                    dtype = common
            inner = cur.shape_inner
            if spec.timed and spec.shape_inner != cur.shape_inner:
                grown = tuple(
                    max(a, b) for a, b in zip(spec.shape_inner, cur.shape_inner, strict=True)
                )
                if grown != cur.shape_inner and name in frozen:
                    plan.rebuild_reasons.append(
                        f"dimension of {name} grows {cur.shape_inner}->{grown} ({fname})"
                    )
                elif grown != cur.shape_inner:
                    plan.rules.append(
                        RuleRecord(
                            "dimension_grown",
                            name,
                            file=fname,
                            detail=f"{cur.shape_inner}->{grown}",
                        )
                    )
                inner = grown
            if not spec.timed:
                new = nf.read(name)
                old = statics[name]
                n = min(len(new), len(old))
                if not np.array_equal(new[:n], old[:n]):
                    plan.rebuild_reasons.append(f"static array {name} differs in {fname}")
                elif len(new) > len(old):
                    if name in frozen:
                        plan.rebuild_reasons.append(
                            f"static array {name} grows {len(old)}->{len(new)} ({fname})"
                        )
                    else:
                        statics[name] = new
                        inner = tuple(new.shape)
            if dtype != cur.dtype or inner != cur.shape_inner:
                plan.target[name] = replace(cur, dtype=np.dtype(dtype), shape_inner=inner)
    # every timed target variable needs a usable fill (or a mask) for rows a file lacks
    for name, spec in list(plan.target.items()):
        if spec.fill_value is not None or name == TIME or not spec.timed or name in plan.masks:
            continue
        padded = any(
            name in nf.specs and nf.specs[name].shape_inner != spec.shape_inner for nf in files
        )
        absent = (store is not None and name in plan.new_arrays) or any(
            name not in nf.specs for nf in files
        )
        if absent and not padded and spec.dtype.kind in "iub":
            _add_mask(plan, name)
        elif absent or padded:
            plan.target[name] = replace(spec, fill_value=default_fill(spec.dtype))
            if name in frozen:
                plan.changed_fill.append(name)
            plan.rules.append(
                RuleRecord(
                    "fill_value_assigned", name, detail=repr(plan.target[name].fill_value)
                )
            )
    plan.statics = statics
    return plan

"""File rows as the store holds them (fill remapped, cast, padded), and row comparison."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_vent.store.normalize import NormalizedFile, VarSpec


def same_fill(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    try:
        if np.isnan(a) and np.isnan(b):
            return True
    except TypeError:
        pass
    return bool(a == b)


def pad_inner(data: np.ndarray, inner: tuple[int, ...], fill: Any) -> np.ndarray:
    if data.shape[1:] == inner:
        return data
    out = np.full((data.shape[0], *inner), fill, dtype=data.dtype)
    out[(slice(None), *(slice(0, s) for s in data.shape[1:]))] = data
    return out


def prepared(
    spec: VarSpec, nf: NormalizedFile, name: str, idx: np.ndarray | slice
) -> np.ndarray:
    """Rows ``idx`` of ``name`` in ``nf`` as the store (``spec``) holds them."""
    src = nf.specs[name]
    data = nf.read(name, idx)
    if spec.is_string:
        return data
    if (
        src.fill_value is not None
        and spec.fill_value is not None
        and not same_fill(src.fill_value, spec.fill_value)
    ):
        hit = data == src.fill_value
        if hit.any():
            data = np.where(hit, spec.fill_value, data).astype(data.dtype)
    data = data.astype(spec.dtype, copy=False)
    return pad_inner(data, spec.shape_inner, spec.fill_value)


def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise equality with NaN == NaN; shapes (n, ...)."""
    a, b = np.asarray(a), np.asarray(b)
    eq = a == b
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        eq |= np.isnan(a.astype("f8", copy=False)) & np.isnan(b.astype("f8", copy=False))
    if eq.ndim > 1:
        eq = eq.reshape(eq.shape[0], -1).all(axis=1)
    return eq

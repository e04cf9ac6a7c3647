"""Chunk layout of a store: one time-chunk length for all its arrays, and where writes split.

Every time-dimensioned array of a store shares one chunking along time (the Pangeo
convention: ``xr.open_zarr(store).chunks`` fails on "inconsistent chunks" otherwise), also
across appends and rebuilds; non-time dimensions are one chunk. Blosc zstd + bit-shuffle
compresses every chunk.

Chunk rule (``chunk_rows``): a time chunk holds ``min(target // widest, max(cap, floor))``
rows, where ``widest`` is the largest bytes-per-row of the store's time-dimensioned variables
(so no chunk exceeds ``chunk_target_bytes``), ``cap`` = the first write's rows rounded up to a
power of two x ``CHUNK_GROWTH`` (4), and the floor is 1 MiB of float64 time. Big
streams (whose first write is a long history) get chunks of ~``chunk_target_bytes`` (100 MB)
for their widest variable; a small stream gets small chunks, so its small daily appends do
not re-encode a padded 100 MB tail chunk per variable. A rebuild sizes chunks again from all
its rows; arrays added later take the store's time-chunk length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numcodecs

from data_vent.store.normalize import VarSpec

DEFAULT_CHUNK_TARGET = 100 * 1024 * 1024
STRING_BYTES_ESTIMATE = 64
COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)

CHUNK_GROWTH: int | None = 4
"""Time chunks hold at most ``CHUNK_GROWTH`` x the first write's rows (rounded up to a power
of two); None: size chunks by ``chunk_target_bytes`` only (the behaviour before)."""
MIN_CHUNK_BYTES = 1 << 20
"""...but never less than this much time (unless the target itself is smaller)."""
TIME_ITEM = 8  # float64 time


def row_bytes(spec: VarSpec) -> int:
    """Bytes one row of ``spec`` takes uncompressed (strings: an estimate)."""
    item = STRING_BYTES_ESTIMATE if spec.is_string else spec.dtype.itemsize
    return max(item * math.prod(spec.shape_inner), 1)


def chunk_rows(
    specs: Iterable[VarSpec], target_bytes: int, cap_rows: int | None = None
) -> int:
    """The time-chunk length of a store whose time-dimensioned variables are ``specs``.

    The target bytes per chunk (~100 MB) suits big streams, but zarr v2 writes the store's
    last chunk at full (padded) size, so with 100 MB chunks every small daily append of a
    small stream re-encodes ~100 MB per variable. ``cap_rows`` (see ``growth_rows``) sizes
    chunks by the data actually seen instead, with a floor of ``MIN_CHUNK_BYTES`` of time.
    """
    widest = max((row_bytes(s) for s in specs if s.timed), default=TIME_ITEM)
    target = max(1, int(target_bytes // widest))
    if cap_rows is None:
        return target
    return min(target, max(int(cap_rows), MIN_CHUNK_BYTES // TIME_ITEM, 1))


def growth_rows(first_rows: int) -> int | None:
    """Chunk-length cap of a new store (or a rebuild) whose first write holds ``first_rows``
    rows: the next power of two times ``CHUNK_GROWTH``. A stream that outgrows it keeps its
    chunk length until its next rebuild, which sizes chunks by its total rows again."""
    if CHUNK_GROWTH is None:
        return None
    return (1 << max(int(first_rows) - 1, 0).bit_length()) * CHUNK_GROWTH


def pieces(g0: int, g1: int, c: int) -> list[tuple[int, int]]:
    """Split [g0, g1) at multiples of the chunk length ``c``: each piece is one chunk's part,
    so every chunk is written once."""
    out = []
    a = g0
    while a < g1:
        b = min(g1, (a // c + 1) * c)
        out.append((a, b))
        a = b
    return out

"""The ``stream_status`` view (migration 0004): the one definition of harvest status.

One row per active materialized asset: store coverage, source end, harvest lag, source lag,
freshness state (with the error when the source could not be observed), last attempt and
last error, the OOI request it waits on. ``data-vent
status`` shows these rows as they are, so the CLI, ``status --json`` and a SQL client agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, DateTime, Float, String, column, select, table
from sqlalchemy.engine import Engine

STREAM_STATUS_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("key", String),
    ("kind", String),
    ("group_name", String),
    ("last_success_at", DateTime),
    ("store_begin", DateTime),
    ("store_end", DateTime),
    ("store_rows", BigInteger),
    ("source_key", String),
    ("source_end", DateTime),
    ("harvest_lag_seconds", BigInteger),
    ("source_lag_seconds", BigInteger),
    ("freshness", String),
    ("freshness_warn_seconds", Float),
    ("freshness_fail_seconds", Float),
    ("observe_error", String),
    ("observe_failed_at", DateTime),
    ("last_attempt_status", String),
    ("last_attempt_at", DateTime),
    ("last_error", String),
    ("request_id", String),
    ("request_status", String),
    ("request_since", DateTime),
)
"""The view's columns in order, typed so that both dialects give the same Python values."""

stream_status = table("stream_status", *(column(n, t()) for n, t in STREAM_STATUS_COLUMNS))


def read_stream_status(
    engine: Engine, keys: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The view's rows (all, or those of ``keys``), ordered by key; one query."""
    wanted = set(keys) if keys is not None else None
    with engine.connect() as conn:
        rows = conn.execute(select(stream_status).order_by(stream_status.c.key)).mappings()
        out = [dict(r) for r in rows if wanted is None or r["key"] in wanted]
    for r in out:  # SQLite returns a view's integer arithmetic as it computed it
        for name in ("store_rows", "harvest_lag_seconds", "source_lag_seconds"):
            if r[name] is not None:
                r[name] = int(r[name])
    return out

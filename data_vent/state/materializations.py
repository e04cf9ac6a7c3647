"""Materialization attempts: one writer of the record, and the reads of past attempts."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from data_vent.core.records import MaterializationRecord, PreviousState
from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import Outcome
from data_vent.state.models import Asset, Materialization

A = Asset.__table__
M = Materialization.__table__


def worker_id() -> str:
    """Who records an attempt: ``host:pid`` of the process that made it (a pool's worker,
    a Dask worker), so a run spread over many shows which did what; ``DATA_VENT_WORKER_NAME``
    (set in a worker's environment, inherited by its flow runs) stands in for the host."""
    return f"{os.environ.get('DATA_VENT_WORKER_NAME') or socket.gethostname()}:{os.getpid()}"


def _plain_json(value: Any) -> Any:
    """JSON columns get plain values (datetimes as text), whatever the driver."""
    return json.loads(json.dumps(dict(value or {}), default=str))


def record_materialization(engine: Engine, record: MaterializationRecord) -> int:
    """Insert one attempt and move the asset's last-attempt/last-success pointers.

    A skipped asset (its upstream failed) leaves its pointers alone: it was never tried.
    """
    if record.status is None:
        raise ValueError(f"materialization of {record.asset_key} recorded without a status")
    with engine.begin() as conn:
        mid = conn.execute(
            insert(M).values(
                asset_key=record.asset_key,
                run_id=record.run_id,
                flow_run_id=record.flow_run_id,
                status=str(record.status),
                action=str(record.action),
                reasons=[r.to_json() for r in record.reasons],
                started_at=record.started_at,
                finished_at=record.finished_at or utcnow(),
                code_version=record.code_version,
                config_hash=record.config_hash,
                input_versions=_plain_json(record.input_versions),
                data_version=record.data_version,
                time_min=record.time_min,
                time_max=record.time_max,
                rows=record.rows,
                error=record.error,
                details=_plain_json(record.details),
                worker=worker_id(),
            )
        ).inserted_primary_key[0]
        values: dict[str, Any] = {"last_attempt_id": mid} if record.moves_last_attempt else {}
        if record.status == Outcome.SUCCESS:
            values["last_success_id"] = mid
        if values:
            conn.execute(update(A).where(A.c.key == record.asset_key).values(**values))
    return int(mid)


def last_success_versions(engine: Engine, keys: Iterable[str]) -> dict[str, str | None]:
    """The data version of each asset's last success (assets never materialized are absent)."""
    keys = list(keys)
    if not keys:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(A.c.key, M.c.data_version)
            .join(M, M.c.id == A.c.last_success_id)
            .where(A.c.key.in_(keys))
        )
        return {r.key: r.data_version for r in rows}


def previous_state(engine: Engine, key: str) -> PreviousState | None:
    """The asset's last success as a kind needs it, or None if it never succeeded."""
    with engine.connect() as conn:
        r = conn.execute(
            select(
                M.c.id,
                M.c.run_id,
                M.c.data_version,
                M.c.time_min,
                M.c.time_max,
                M.c.rows,
                M.c.details,
                M.c.code_version,
                M.c.config_hash,
                M.c.input_versions,
            )
            .join(A, A.c.last_success_id == M.c.id)
            .where(A.c.key == key)
        ).first()
    if r is None:
        return None
    return PreviousState(
        r.data_version,
        r.time_min,
        r.time_max,
        r.rows,
        r.details or {},
        id=r.id,
        run_id=r.run_id,
        code_version=r.code_version,
        config_hash=r.config_hash,
        input_versions=dict(r.input_versions or {}),
    )


def last_success_ref(engine: Engine, key: str) -> tuple[int, str] | None:
    """(id, run id) of the asset's last success: what a run re-checks under the lease."""
    with engine.connect() as conn:
        r = conn.execute(
            select(M.c.id, M.c.run_id)
            .join(A, A.c.last_success_id == M.c.id)
            .where(A.c.key == key)
        ).first()
    return (int(r.id), r.run_id) if r is not None else None


def history(engine: Engine, key: str, limit: int = 50) -> list[dict[str, Any]]:
    """An asset's attempts, newest first, as plain rows (datetimes in ISO text)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(M).where(M.c.asset_key == key).order_by(M.c.id.desc()).limit(limit)
        ).mappings()
        out = []
        for r in rows:
            d = dict(r)
            for k, v in d.items():
                if hasattr(v, "isoformat"):
                    d[k] = v.isoformat()
            out.append(d)
    return out

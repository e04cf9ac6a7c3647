"""A read-only snapshot of the state DB for the planner: five set-based queries in all.

Whatever the number of assets, the planner reads: active assets, their last successes,
their last attempts, the latest observation of each source, and open OOI requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_vent.assets.kinds import Observation
from data_vent.state.models import Asset, Materialization, OOIRequest, SourceObservation

A = Asset.__table__
M = Materialization.__table__
O = SourceObservation.__table__  # noqa: E741
R = OOIRequest.__table__

OPEN_REQUEST_STATES = ("pending", "ready")


@dataclass
class SuccessRecord:
    id: int
    code_version: str | None
    config_hash: str | None
    input_versions: dict[str, Any]
    data_version: str | None
    time_min: datetime | None
    time_max: datetime | None
    rows: int | None
    finished_at: datetime | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttemptRecord:
    id: int
    status: str
    error: str | None
    finished_at: datetime | None
    run_id: str


@dataclass
class RequestRecord:
    id: int
    asset_key: str
    status: str
    request_uuid: str | None
    created_at: datetime
    next_check_at: datetime | None
    range_begin: datetime | None
    range_end: datetime | None


@dataclass
class AssetState:
    key: str
    last_success: SuccessRecord | None = None
    last_attempt: AttemptRecord | None = None


@dataclass
class StateSnapshot:
    assets: dict[str, AssetState] = field(default_factory=dict)
    observations: dict[str, Observation] = field(default_factory=dict)
    requests: dict[str, RequestRecord] = field(default_factory=dict)
    queries: int = 0

    def state(self, key: str) -> AssetState:
        return self.assets.get(key) or AssetState(key)


def read_snapshot(engine: Engine) -> StateSnapshot:
    snap = StateSnapshot()
    with engine.connect() as conn:
        for r in conn.execute(select(A.c.key).where(A.c.active)):
            snap.assets[r.key] = AssetState(r.key)
        succ = conn.execute(
            select(
                A.c.key,
                M.c.id,
                M.c.code_version,
                M.c.config_hash,
                M.c.input_versions,
                M.c.data_version,
                M.c.time_min,
                M.c.time_max,
                M.c.rows,
                M.c.finished_at,
                M.c.details,
            )
            .join(M, M.c.id == A.c.last_success_id)
            .where(A.c.active)
        )
        for r in succ:
            st = snap.assets.setdefault(r.key, AssetState(r.key))
            st.last_success = SuccessRecord(
                r.id,
                r.code_version,
                r.config_hash,
                r.input_versions or {},
                r.data_version,
                r.time_min,
                r.time_max,
                r.rows,
                r.finished_at,
                r.details or {},
            )
        att = conn.execute(
            select(A.c.key, M.c.id, M.c.status, M.c.error, M.c.finished_at, M.c.run_id)
            .join(M, M.c.id == A.c.last_attempt_id)
            .where(A.c.active)
        )
        for r in att:
            st = snap.assets.setdefault(r.key, AssetState(r.key))
            st.last_attempt = AttemptRecord(r.id, r.status, r.error, r.finished_at, r.run_id)
        obs = conn.execute(
            select(O.c.source_key, O.c.begin_time, O.c.end_time, O.c.count).join(
                A, A.c.latest_observation_id == O.c.id
            )
        )
        for r in obs:
            snap.observations[r.source_key] = Observation(
                r.source_key, r.begin_time, r.end_time, r.count
            )
        reqs = conn.execute(
            select(
                R.c.id,
                R.c.asset_key,
                R.c.status,
                R.c.request_uuid,
                R.c.created_at,
                R.c.next_check_at,
                R.c.range_begin,
                R.c.range_end,
            )
            .where(R.c.status.in_(OPEN_REQUEST_STATES))
            .order_by(R.c.id)
        )
        for r in reqs:
            snap.requests[r.asset_key] = RequestRecord(
                r.id,
                r.asset_key,
                r.status,
                r.request_uuid,
                r.created_at,
                r.next_check_at,
                r.range_begin,
                r.range_end,
            )
    snap.queries = 5
    return snap

"""A read-only snapshot of the state DB for the planner: five set-based queries in all.

Whatever the number of assets, the planner reads: active assets, their last successes,
their last attempts, the latest observation of each source, and open OOI requests.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_vent.core.records import Observation
from data_vent.core.snapshot import (
    AssetState,
    AttemptRecord,
    StateSnapshot,
    SuccessRecord,
)
from data_vent.core.vocab import OPEN_REQUEST_STATES
from data_vent.state.models import Asset, Materialization, OOIRequest, SourceObservation
from data_vent.state.requests import request_record

A = Asset.__table__
M = Materialization.__table__
O = SourceObservation.__table__  # noqa: E741
R = OOIRequest.__table__


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
            select(
                O.c.source_key, O.c.begin_time, O.c.end_time, O.c.count, O.c.discontinued
            ).join(A, A.c.latest_observation_id == O.c.id)
        )
        for r in obs:
            snap.observations[r.source_key] = Observation(
                r.source_key, r.begin_time, r.end_time, r.count, bool(r.discontinued)
            )
        reqs = conn.execute(
            select(R)
            .where(R.c.status.in_([str(s) for s in OPEN_REQUEST_STATES]))
            .order_by(R.c.id)
        ).mappings()
        for r in reqs:
            snap.requests[r["asset_key"]] = request_record(r)
    snap.queries = 5
    return snap

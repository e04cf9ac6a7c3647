"""A read-only snapshot of the state DB for the planner: five set-based queries in all.

Whatever the number of assets, the planner reads: active assets (with the error of a source
whose latest observation failed), their last successes, their last attempts, the latest
observation of each source, and open OOI requests.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from data_vent.core.gcpause import gc_paused
from data_vent.core.records import Observation, ObserveFailure
from data_vent.core.snapshot import (
    AssetState,
    AttemptRecord,
    StateSnapshot,
    SuccessRecord,
)
from data_vent.core.vocab import OPEN_REQUEST_STATES
from data_vent.state.models import (
    Asset,
    Materialization,
    ObserveError,
    OOIRequest,
    SourceObservation,
)
from data_vent.state.requests import request_record

A = Asset.__table__
M = Materialization.__table__
O = SourceObservation.__table__  # noqa: E741
R = OOIRequest.__table__
E = ObserveError.__table__


def read_snapshot(
    engine: Engine, keys: Iterable[str] | None = None, include_inactive: bool = False
) -> StateSnapshot:
    """The planner's view of the DB; of ``keys`` only (assets and sources) if given, as the
    runner re-reads one asset and its inputs under the asset's lease; ``include_inactive``
    also reads assets the last sync retired (a plan from a config folder that defines them
    again, without syncing)."""
    snap = StateSnapshot()
    keys = None if keys is None else list(keys)
    active = A.c.active if not include_inactive else A.c.key.is_not(None)
    only = active if keys is None else active & A.c.key.in_(keys)
    with gc_paused(), engine.connect() as conn:
        active_rows = select(A.c.key, E.c.error, E.c.error_type, E.c.failed_at).outerjoin(
            E, E.c.source_key == A.c.key
        )
        for r in conn.execute(active_rows.where(only)):
            snap.assets[r.key] = AssetState(r.key)
            if r.error is not None:
                snap.observe_errors[r.key] = ObserveFailure(
                    r.key, r.error, r.error_type, r.failed_at
                )
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
            .where(only)
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
            .where(only)
        )
        for r in att:
            st = snap.assets.setdefault(r.key, AssetState(r.key))
            st.last_attempt = AttemptRecord(r.id, r.status, r.error, r.finished_at, r.run_id)
        obs_stmt = select(
            O.c.source_key, O.c.begin_time, O.c.end_time, O.c.count, O.c.discontinued
        ).join(A, A.c.latest_observation_id == O.c.id)
        if keys is not None:
            obs_stmt = obs_stmt.where(A.c.key.in_(keys))
        obs = conn.execute(obs_stmt)
        for r in obs:
            snap.observations[r.source_key] = Observation(
                r.source_key, r.begin_time, r.end_time, r.count, bool(r.discontinued)
            )
        req_stmt = select(R).where(R.c.status.in_([str(s) for s in OPEN_REQUEST_STATES]))
        if keys is not None:
            req_stmt = req_stmt.where(R.c.asset_key.in_(keys))
        reqs = conn.execute(req_stmt.order_by(R.c.id)).mappings()
        for r in reqs:
            snap.requests[r["asset_key"]] = request_record(r)
    snap.queries = 5
    return snap

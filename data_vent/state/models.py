"""SQLModel tables of the state database.

Datetimes are stored naive (``DateTime`` without zone, UTC by convention) rather than
sqlmodel's aware ``UTCDateTime``: stores, pandas and OOI all work in naive UTC.

All datetimes are naive UTC (see ``data_vent.core.timeutil``). ``asset`` carries pointers to
the latest success, latest attempt and latest observation so that the planner reads
everything it needs in a handful of set-based queries, whatever the number of assets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import RequestStatus


class Asset(SQLModel, table=True):
    __tablename__ = "asset"

    key: str = Field(primary_key=True, max_length=300)
    kind: str = Field(max_length=64)
    group_name: str | None = Field(default=None, max_length=128, index=True)
    tags: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    code_version: str = Field(default="1", max_length=64)
    config_hash: str = Field(max_length=64)
    config: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    observable: bool = False
    freshness_warn_seconds: float | None = 6 * 3600.0
    """The asset's freshness policy on harvest lag, in seconds (None: no threshold)."""
    freshness_fail_seconds: float | None = 86400.0
    active: bool = Field(default=True, index=True)
    source_file: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    last_success_id: int | None = Field(default=None)
    last_attempt_id: int | None = Field(default=None)
    latest_observation_id: int | None = Field(default=None)


class AssetDep(SQLModel, table=True):
    """Dependency edge: ``asset_key`` reads ``dep_key``."""

    __tablename__ = "asset_dep"

    asset_key: str = Field(primary_key=True, max_length=300)
    dep_key: str = Field(primary_key=True, max_length=300, index=True)


class SourceObservation(SQLModel, table=True):
    """A source's reported state; a row is written only when it changed."""

    __tablename__ = "source_observation"
    __table_args__ = (Index("ix_source_observation_key_time", "source_key", "observed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source_key: str = Field(max_length=300)
    begin_time: datetime | None = Field(default=None, sa_type=DateTime)
    end_time: datetime | None = Field(default=None, sa_type=DateTime)
    count: int | None = None
    data_version: str = Field(max_length=200)
    observed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    discontinued: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    """OOI's table of contents no longer lists the source (begin/end/count: its last)."""


class Materialization(SQLModel, table=True):
    """One attempt to materialize an asset, with its provenance when it succeeded."""

    __tablename__ = "materialization"
    __table_args__ = (Index("ix_materialization_asset_started", "asset_key", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_key: str = Field(max_length=300)
    run_id: str = Field(max_length=64, index=True)
    flow_run_id: str | None = Field(default=None, max_length=64, index=True)
    """Prefect's flow-run id when the attempt ran in a flow (its logs are there)."""
    status: str = Field(max_length=16)  # Outcome: success | failed | waiting | skipped
    action: str = Field(max_length=32)
    reasons: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    started_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    finished_at: datetime | None = Field(default=None, sa_type=DateTime)
    code_version: str | None = Field(default=None, max_length=64)
    config_hash: str | None = Field(default=None, max_length=64)
    input_versions: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    data_version: str | None = Field(default=None, max_length=200)
    time_min: datetime | None = Field(default=None, sa_type=DateTime)
    time_max: datetime | None = Field(default=None, sa_type=DateTime)
    rows: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    worker: str | None = Field(default=None, max_length=160)
    """``host:pid`` of the process that made the attempt (which worker of a pool did it)."""


class OOIRequest(SQLModel, table=True):
    """An asynchronous OOI data request: state in the DB, not a process waiting on it."""

    __tablename__ = "ooi_request"
    __table_args__ = (Index("ix_ooi_request_asset_status", "asset_key", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    asset_key: str = Field(max_length=300)
    range_begin: datetime | None = Field(default=None, sa_type=DateTime)
    range_end: datetime | None = Field(default=None, sa_type=DateTime)
    status: str = Field(default=RequestStatus.PENDING.value, max_length=16)  # RequestStatus
    request_uuid: str | None = Field(default=None, max_length=64)
    output_url: str | None = Field(default=None, sa_column=Column(Text))
    status_url: str | None = Field(default=None, sa_column=Column(Text))
    files: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    next_check_at: datetime | None = Field(default=None, sa_type=DateTime)
    expires_at: datetime | None = Field(default=None, sa_type=DateTime)
    run_id: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text))


class Lease(SQLModel, table=True):
    """Per-asset lease: at most one live holder materializes an asset at a time."""

    __tablename__ = "lease"
    __table_args__ = (UniqueConstraint("asset_key"),)

    asset_key: str = Field(primary_key=True, max_length=300)
    holder: str = Field(max_length=128)
    run_id: str | None = Field(default=None, max_length=64)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    expires_at: datetime = Field(sa_type=DateTime)


class ObserveError(SQLModel, table=True):
    """A source whose latest observation failed (one row per source, deleted when an
    observation succeeds): its assets' freshness is UNKNOWN, with this error."""

    __tablename__ = "observe_error"

    source_key: str = Field(primary_key=True, max_length=300)
    error: str = Field(sa_column=Column(Text, nullable=False))
    error_type: str = Field(max_length=64)
    failed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)


class CallSlot(SQLModel, table=True):
    """One of the ``cap`` slots of a shared limit (e.g. concurrent calls to OOI): every
    process sharing the state DB takes a slot before a call, so together they never exceed
    the cap; a crashed holder's slot expires (holders renew theirs while they run)."""

    __tablename__ = "call_slot"

    name: str = Field(primary_key=True, max_length=64)
    slot: int = Field(primary_key=True)
    holder: str = Field(max_length=160)
    owner: str = Field(max_length=128, index=True)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    expires_at: datetime = Field(sa_type=DateTime)


class RunReport(SQLModel, table=True):
    """A run's outcomes, written when it finishes: how a parent run that fanned out over
    child runs (on other workers) learns what each child did."""

    __tablename__ = "run_report"

    run_id: str = Field(primary_key=True, max_length=64)
    parent_run_id: str | None = Field(default=None, max_length=64, index=True)
    flow_run_id: str | None = Field(default=None, max_length=64)
    title: str = Field(default="", max_length=300)
    finished_at: datetime = Field(default_factory=utcnow, sa_type=DateTime)
    ok: bool = True
    outcomes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )

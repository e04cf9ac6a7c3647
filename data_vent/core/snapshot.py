"""The state DB as the planner reads it: plain records, filled by ``state.snapshot``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from data_vent.core.records import Observation, ObserveFailure
from data_vent.core.vocab import Outcome, RequestStatus


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
    status: Outcome | str
    error: str | None
    finished_at: datetime | None
    run_id: str


@dataclass
class RequestRecord:
    """An asynchronous OOI request (one ``ooi_request`` row)."""

    id: int
    asset_key: str
    status: RequestStatus | str
    request_uuid: str | None
    created_at: datetime
    next_check_at: datetime | None
    range_begin: datetime | None
    range_end: datetime | None
    output_url: str | None = None
    status_url: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    run_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds an asset's lease (one ``lease`` row): a live holder renews it."""

    asset_key: str
    holder: str
    run_id: str | None
    acquired_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        """Renewed recently enough: its holder is (as far as anyone can tell) alive."""
        return self.expires_at > now

    def describe(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "another writer"
        return f"{run} ({self.holder.rsplit(':', 1)[0]})"


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
    observe_errors: dict[str, ObserveFailure] = field(default_factory=dict)
    """Sources whose latest observation failed (freshness UNKNOWN, with the error)."""
    queries: int = 0

    def state(self, key: str) -> AssetState:
        return self.assets.get(key) or AssetState(key)

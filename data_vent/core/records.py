"""What sources report, why assets are stale, and what an attempt records: plain data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import Action, Outcome, ReasonCode


@dataclass(frozen=True)
class Observation:
    """What a source reports about itself (OOI ``metadata/times``: begin, end, count).

    ``discontinued``: OOI's table of contents no longer lists it; begin, end and count are
    then the last ones it reported (``None`` until recorded beside the previous ones).
    """

    source_key: str
    begin_time: datetime | None
    end_time: datetime | None
    count: int | None
    discontinued: bool = False

    @property
    def data_version(self) -> str:
        b = self.begin_time.isoformat() if self.begin_time else "-"
        e = self.end_time.isoformat() if self.end_time else "-"
        return f"{b}/{e}/{self.count}" + ("/discontinued" if self.discontinued else "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "begin_time": self.begin_time.isoformat() if self.begin_time else None,
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "count": self.count,
        }
        if self.discontinued:
            out["discontinued"] = True
        return out


@dataclass(frozen=True)
class ObserveFailure:
    """A source that could not be observed (auth refused, OOI down): its freshness is
    UNKNOWN, with this error, until an observation succeeds again."""

    source_key: str
    error: str
    error_type: str = "OOIError"
    failed_at: datetime | None = None

    @property
    def auth(self) -> bool:
        """The credentials were refused: the operator must fix settings (exit 2)."""
        return self.error_type == "OOIAuthError"


@dataclass
class Reason:
    """Why an asset is stale, with the values a person needs to understand it."""

    code: ReasonCode | str
    values: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.values:
            return str(self.code)
        vals = ", ".join(f"{k}={v}" for k, v in self.values.items())
        return f"{self.code} ({vals})"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "values": {k: _jsonable(v) for k, v in self.values.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reason:
        """Back from ``to_json`` (Prefect parameters, stored rows); unknown codes stay text."""
        code = data["code"]
        known = code in ReasonCode.__members__.values()
        return cls(ReasonCode(code) if known else code, dict(data.get("values", {})))


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    return v


@dataclass
class InputVersion:
    """An input as the planner saw it: its data version and, for sources, the observation."""

    key: str
    data_version: str | None
    observation: Observation | None = None


def input_version_record(key: str, data_version: str | None, obs: Observation | None) -> dict:
    """How an input is recorded in a materialization's provenance."""
    rec: dict[str, Any] = {"data_version": data_version}
    if obs is not None:
        rec.update(obs.to_json())
    return rec


@dataclass
class PreviousState:
    """The asset's last successful materialization, as far as a kind needs it."""

    data_version: str | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None
    rows: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    run_id: str | None = None
    code_version: str | None = None
    config_hash: str | None = None
    input_versions: dict[str, Any] = field(default_factory=dict)
    """The provenance of that success, which a repair keeps (it changes no input)."""


@dataclass(frozen=True)
class MaterializationRecord:
    """One attempt as the state DB stores it: begun once, finished once, written once.

    A ``skipped`` record (its upstream failed or waits) does not move the asset's
    last-attempt pointer: the asset was never tried.
    """

    asset_key: str
    run_id: str
    action: Action | str
    reasons: Sequence[Reason] = ()
    started_at: datetime = field(default_factory=utcnow)
    status: Outcome | None = None
    finished_at: datetime | None = None
    code_version: str | None = None
    config_hash: str | None = None
    input_versions: Mapping[str, Any] = field(default_factory=dict)
    data_version: str | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None
    rows: int | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    flow_run_id: str | None = None
    """Prefect's flow-run id when the attempt ran inside a flow."""

    def finish(self, status: Outcome, **values: Any) -> MaterializationRecord:
        """The same attempt, ended with ``status`` (and its provenance or error)."""
        return replace(self, status=status, finished_at=utcnow(), **values)

    @property
    def moves_last_attempt(self) -> bool:
        return self.status != Outcome.SKIPPED

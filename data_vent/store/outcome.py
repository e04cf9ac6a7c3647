"""What a write reports (``WriteOutcome``), what a reader sees (``StoreInfo``), versions."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StoreInfo:
    time_min: datetime | None
    time_max: datetime | None
    rows: int
    variables: list[str]
    version: str | None


@dataclass
class WriteOutcome:
    mode: str
    rows_added: int = 0
    rows_total: int = 0
    time_min: datetime | None = None
    time_max: datetime | None = None
    rules_applied: list[dict[str, Any]] = field(default_factory=list)
    needs_rebuild: bool = False
    rebuild_reason: str | None = None
    version: str | None = None
    committed: bool = False
    files: list[str] = field(default_factory=list)
    normalize_reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def data_version(self) -> str | None:
        return data_version(self.version, self.rows_total, self.time_max)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for k in ("time_min", "time_max"):
            out[k] = out[k].isoformat() if out[k] else None
        out["data_version"] = self.data_version
        return out


def data_version(version: str | None, rows: int, time_max: datetime | None) -> str | None:
    if version is None:
        return None
    text = f"{version}|{rows}|{time_max.isoformat() if time_max else '-'}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def next_version(previous: str | None) -> str:
    n = int(previous.split("-")[0]) + 1 if previous else 1
    return f"{n:06d}-{uuid.uuid4().hex[:8]}"

"""The streams the simulated OOINet serves, and how harvest config YAMLs become streams.

A stream answers five questions against the simulated clock: which sample times lie in a
range, its ``metadata/times`` entry, its deployments, when a deployment started, and which
NetCDF files a request for a range holds. :class:`SimStream` is synthetic: a regular grid
whose values are pure functions of time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from data_vent.core.timeutil import from_ntp_seconds, to_naive_utc, to_ntp_seconds
from data_vent.ooi.names import TableName, data_file_name, parse_table
from data_vent.simulator.synthetic import FileSpec, write_stream_file

FAULTS = (
    "http_500",  # API answers 500 (``times``: how many calls fail, default always)
    "http_error",  # API answers ``status`` (401, 403, 429 ...), ``retry_after`` s if given
    "empty",  # API answers 200 with an empty body
    "maintenance",  # API answers the OOI maintenance HTML page with 200
    "slow",  # API answers after ``seconds``
    "never_ready",  # async request never gets status.txt
    "request_failed",  # status.txt says the request failed
    "truncated",  # served NetCDF shorter than the catalog size (``mode``: file|connection)
    "duplicate_times",  # files repeat some timestamps
    "out_of_order",  # files hold times out of order
    "new_variable",  # files with data after ``after`` carry one more variable
    "dim_growth",  # a non-time dimension grows from ``size`` to ``grown`` after ``after``
    "discontinued",  # gone from OOI's table of contents; 404 "... discontinued"
)
FILE_FAULTS = ("duplicate_times", "out_of_order", "new_variable", "dim_growth")
"""Faults that change a synthetic file's content: a real file is served as it is."""


def ooi_ms(ntp: float) -> str:
    """OOI's millisecond timestamps, as ``metadata/times`` prints them."""
    return from_ntp_seconds(ntp).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def times_entry(name: TableName, times: np.ndarray) -> dict[str, Any] | None:
    """A stream's ``metadata/times`` entry from its sorted sample ``times`` (None when there
    are none yet): one shape whatever the samples are made of."""
    if not len(times):
        return None
    return {
        "stream": name.stream,
        "method": name.method,
        "count": len(times),
        "beginTime": ooi_ms(times[0]),
        "endTime": ooi_ms(times[-1]),
    }


def check_faults(faults: dict[str, Any], allowed: tuple[str, ...] = FAULTS) -> None:
    for f in faults:
        if f not in allowed:
            raise ValueError(f"unknown simulator fault {f!r}; known: {', '.join(allowed)}")


@dataclass
class SimStream:
    """A synthetic stream: samples every ``interval`` s from ``first``."""

    table: str
    first: datetime
    interval: float = 600.0
    deployment_days: float = 10.0
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    reprocessed: list[tuple[float, float]] = field(default_factory=list)
    """NTP windows where a reprocessing added samples at the grid mid-points."""

    kind = "synthetic"
    allowed_faults = FAULTS

    def __post_init__(self) -> None:
        self.name: TableName = parse_table(self.table)
        self.first = to_naive_utc(self.first)
        self.t0 = to_ntp_seconds(self.first)
        check_faults(self.faults, self.allowed_faults)

    def times(self, begin: float, end: float) -> np.ndarray:
        """Sorted NTP sample times in [begin, end]."""
        end = float(end)
        if end < self.t0 or end < begin:
            return np.empty(0)
        k0 = max(0, int(np.ceil((begin - self.t0) / self.interval)))
        k1 = int(np.floor((end - self.t0) / self.interval))
        grid = self.t0 + np.arange(k0, k1 + 1, dtype="f8") * self.interval
        extra = [grid[:0]]
        for wb, we in self.reprocessed:
            lo, hi = max(wb, begin), min(we, end)
            mids = self._grid(lo, hi) + self.interval / 2
            extra.append(mids[(mids >= lo) & (mids <= hi)])
        out = np.unique(np.concatenate([grid, *extra]))
        return out[(out >= begin) & (out <= end)]

    def _grid(self, begin: float, end: float) -> np.ndarray:
        if end < begin:
            return np.empty(0)
        k0 = max(0, int(np.floor((begin - self.t0) / self.interval)))
        k1 = int(np.floor((end - self.t0) / self.interval))
        return self.t0 + np.arange(k0, k1 + 1, dtype="f8") * self.interval

    def summary(self, now: float) -> dict[str, Any] | None:
        """The ``metadata/times`` entry as of ``now`` (None before the first sample)."""
        return times_entry(self.name, self.times(self.t0, now))

    def deployment_of(self, t: np.ndarray) -> np.ndarray:
        return 1 + ((t - self.t0) // (self.deployment_days * 86400)).astype(int)

    def deployments(self, begin: float, end: float) -> list[int]:
        return sorted(set(self.deployment_of(self.times(begin, end)).tolist()))

    def deployment_start(self, number: int) -> float:
        return self.t0 + (number - 1) * self.deployment_days * 86400

    def reprocess(self, begin: float, end: float) -> None:
        self.reprocessed.append((begin, end))

    def write_files(
        self, folder: Path, begin: float, end: float, request_uuid: str
    ) -> dict[str, Path]:
        """The request's data files: one per deployment, as Stream Engine splits them."""
        files: dict[str, Path] = {}
        times = self.times(begin, end)
        deps = self.deployment_of(times)
        for dep in sorted(set(deps.tolist())):
            t = times[deps == dep]
            name = data_file_name(
                int(dep), self.table, from_ntp_seconds(t.min()), from_ntp_seconds(t.max())
            )
            files[name] = write_stream_file(
                folder / name, self._file_spec(t, int(dep), request_uuid)
            )
        return files

    def _file_spec(self, t: np.ndarray, dep: int, rid: str) -> FileSpec:
        f = self.faults
        t = t.copy()
        if "duplicate_times" in f and len(t) > 2:
            t = np.sort(np.concatenate([t, t[1 : 1 + int(f["duplicate_times"].get("n", 2))]]))
        if "out_of_order" in f and len(t) > 3:
            t[-3], t[-2] = t[-2], t[-3]
        spec = FileSpec(self.table, t, dep, rid)
        if "new_variable" in f:
            after = _ntp(f["new_variable"].get("after"), self.t0)
            spec.new_variable = bool(len(t)) and float(t.max()) >= after
        if "dim_growth" in f:
            p = f["dim_growth"]
            after = _ntp(p.get("after"), self.t0)
            grown = bool(len(t)) and float(t.max()) >= after
            spec.spectrum_size = int(p.get("grown", 10) if grown else p.get("size", 8))
        return spec

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "first": self.first.isoformat(),
            "interval": self.interval,
            "faults": self.faults,
        }


def _ntp(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return to_ntp_seconds(value)


def stream_from_table(table: str, clock: datetime, **overrides: Any) -> SimStream:
    """A deterministic history for ``table``: 10-30 days back, 5-30 min sampling."""
    h = int(hashlib.sha256(table.encode()).hexdigest(), 16)
    days = 10 + h % 21
    interval = (300.0, 600.0, 900.0, 1800.0)[(h >> 8) % 4]
    first = (clock - timedelta(days=days)).replace(microsecond=0)
    kw: dict[str, Any] = {"first": first, "interval": interval}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return SimStream(table, **kw)

"""The simulated OOINet's state and behaviour, without HTTP: clock, streams, requests, faults.

Each stream's samples are evaluated against the simulated clock, so ``metadata/times`` and
the NetCDF served agree. Async requests become ready after ``ready_delay`` real seconds;
faults are set per stream; counters record what the harvester asked for. The HTTP side is
:mod:`data_vent.simulator.routes` (what each path answers) and
:mod:`data_vent.simulator.server`.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from data_vent.core.timeutil import from_ntp_seconds, to_naive_utc, to_ntp_seconds, utcnow
from data_vent.ooi.names import data_file_name
from data_vent.simulator.configs import streams_from_configs
from data_vent.simulator.streams import FAULTS, SimStream, stream_from_table
from data_vent.simulator.synthetic import FileSpec, write_stream_file

DEFAULT_START = datetime(2024, 1, 1)
"""The clock of tests that need a fixed one; the standalone simulator starts at now."""


@dataclass
class SimRequest:
    uuid: str
    table: str
    begin: float
    end: float
    user: str
    folder: str
    created: float  # monotonic
    ready_at: float | None  # monotonic; None: never
    failed: bool
    include_provenance: bool
    files: dict[str, Path] | None = None
    sizes: dict[str, int] = field(default_factory=dict)


class OOINet:
    """What OOINet knows and does; :class:`~data_vent.simulator.server.Simulator` serves it."""

    def __init__(
        self,
        streams: Iterable[Any] | str | Path | None = None,
        *,
        ready_delay: float = 3.0,
        start: datetime = DEFAULT_START,
        require_auth: bool = False,
        workdir: str | Path | None = None,
    ):
        self.ready_delay = ready_delay
        self.require_auth = require_auth
        self.now = to_naive_utc(start)
        self.lock = threading.RLock()
        self.streams: dict[str, Any] = {}
        if isinstance(streams, str | Path):
            streams = streams_from_configs(streams, self.now)
        for s in streams or ():
            self.add_stream(s)
        self.requests: dict[str, SimRequest] = {}
        self.serve_toc = True
        """False: ``sensor/inv/toc`` is unknown (404), like an OOI without it."""
        self.counters: dict[str, Counter[str]] = {}
        self.calls_in_flight = 0
        self.peak_calls = 0
        """Most M2M/THREDDS calls the simulator was answering at once (since a reset)."""
        self._fault_hits: Counter[tuple[str, str]] = Counter()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="data-vent-sim-"))

    # -- configuration -------------------------------------------------------------------

    def add_stream(self, stream: Any, **overrides: Any) -> Any:
        s = (
            stream_from_table(stream, self.now, **overrides)
            if isinstance(stream, str)
            else stream
        )
        with self.lock:
            self.streams[s.table] = s
        return s

    def set_fault(self, table: str, fault: str, **params: Any) -> None:
        with self.lock:
            stream = self.streams[table]
            if fault not in stream.allowed_faults:
                known = ", ".join(stream.allowed_faults)
                raise ValueError(
                    f"simulator fault {fault!r} does not apply to {table} "
                    f"({stream.kind}); known: {known}"
                    if fault in FAULTS
                    else f"unknown simulator fault {fault!r}; known: {known}"
                )
            stream.faults[fault] = params
            self._fault_hits.pop((table, fault), None)

    def clear_fault(self, table: str, fault: str | None = None) -> None:
        with self.lock:
            faults = self.streams[table].faults
            cleared = [fault] if fault else list(faults)
            for f in cleared:
                faults.pop(f, None)
            if "never_ready" in cleared:  # OOI finally finishes the stuck jobs
                ready_at = time.monotonic() + self.ready_delay
                for req in self.requests.values():
                    if req.table == table and req.ready_at is None:
                        req.ready_at = ready_at

    def remove_from_toc(self, table: str) -> None:
        """OOI drops the stream from its table of contents: discontinued (404 on requests)."""
        self.set_fault(table, "discontinued")

    def return_to_toc(self, table: str) -> None:
        """The stream is listed again, with all its history."""
        self.clear_fault(table, "discontinued")

    def advance(self, seconds: float) -> datetime:
        """Move the simulated clock: new samples appear in every stream."""
        with self.lock:
            self.now += timedelta(seconds=seconds)
            return self.now

    def reprocess(
        self, table: str, begin: datetime | None = None, end: datetime | None = None
    ) -> None:
        """OOI reprocessed [begin, end] (default: the first day): the count changes inside."""
        with self.lock:
            s = self.streams[table]
            if not hasattr(s, "reprocess"):
                raise ValueError(f"{table} replays a real file: it cannot be reprocessed")
            b = to_ntp_seconds(begin) if begin else s.t0
            e = to_ntp_seconds(end) if end else b + 86400
            s.reprocess(b, min(e, self.now_ntp))

    @property
    def now_ntp(self) -> float:
        return to_ntp_seconds(self.now)

    # -- counters and faults -------------------------------------------------------------

    def count(self, kind: str, key: str) -> None:
        with self.lock:
            self.counters.setdefault(kind, Counter())[key] += 1

    def counter_snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {k: dict(v) for k, v in self.counters.items()}

    def data_requests(self, table: str | None = None) -> int:
        c = self.counter_snapshot().get("data_requests", {})
        return c.get(table, 0) if table else sum(c.values())

    def reset_counters(self) -> None:
        with self.lock:
            self.counters.clear()
            self.peak_calls = self.calls_in_flight

    def call_started(self) -> None:
        """An M2M or THREDDS call came in (what a rate limit on OOI must bound)."""
        with self.lock:
            self.calls_in_flight += 1
            self.peak_calls = max(self.peak_calls, self.calls_in_flight)

    def call_finished(self) -> None:
        with self.lock:
            self.calls_in_flight -= 1

    def fault(self, table: str, name: str) -> dict[str, Any] | None:
        """The fault's params if it fires now (``times`` limits how often it fires)."""
        with self.lock:
            s = self.streams.get(table)
            if s is None or name not in s.faults:
                return None
            params = s.faults[name]
            times = params.get("times")
            if times is not None:
                if self._fault_hits[(table, name)] >= int(times):
                    return None
                self._fault_hits[(table, name)] += 1
            return params

    # -- OOI behaviour -------------------------------------------------------------------

    def live_streams(self) -> list[Any]:
        """The streams in OOI's table of contents (not discontinued)."""
        with self.lock:
            return [s for s in self.streams.values() if "discontinued" not in s.faults]

    def instrument_streams(self, site: str, node: str, sensor: str) -> list[Any]:
        with self.lock:
            return [
                s
                for s in self.streams.values()
                if (s.name.site, s.name.node, s.name.sensor) == (site, node, sensor)
            ]

    def create_request(
        self,
        stream: Any,
        begin: float,
        end: float,
        user: str,
        host_url: str,
        include_provenance: bool,
    ) -> dict[str, Any]:
        with self.lock:
            rid = str(uuid.uuid4())
            never = stream.faults.get("never_ready") is not None
            req = SimRequest(
                uuid=rid,
                table=stream.table,
                begin=begin,
                end=min(end, self.now_ntp),
                user=user,
                folder=_folder(stream.table),
                created=time.monotonic(),
                ready_at=None if never else time.monotonic() + self.ready_delay,
                failed="request_failed" in stream.faults,
                include_provenance=include_provenance,
            )
            self.requests[rid] = req
        return self.async_answer(req, host_url, stream)

    def async_answer(self, req: SimRequest, host_url: str, stream: Any) -> dict[str, Any]:
        catalog = f"{host_url}/thredds/catalog/ooi/{req.user}/{req.folder}/catalog.html"
        return {
            "requestUUID": req.uuid,
            "outputURL": catalog,
            "allURLs": [catalog, f"{host_url}/async_results/{req.user}/{req.folder}"],
            "sizeCalculation": len(stream.times(req.begin, req.end)) * 170,
            "timeCalculation": max(1, int(self.ready_delay)),
            "numberOfSubJobs": max(1, len(stream.deployments(req.begin, req.end))),
        }

    def estimate_answer(
        self, stream: Any, begin: float, end: float, host_url: str
    ) -> dict[str, Any]:
        """``estimate_only=true``: OOI sizes the request, queues nothing, and names no user
        folder (real answers carry a requestUUID, ``numberOfSubJobs`` 0)."""
        folder = _folder(stream.table)
        catalog = f"{host_url}/thredds/catalog/ooi/{folder}/catalog.html"
        return {
            "requestUUID": str(uuid.uuid4()),
            "outputURL": catalog,
            "allURLs": [catalog, f"{host_url}/async_results/{folder}"],
            "sizeCalculation": len(stream.times(begin, min(end, self.now_ntp))) * 170,
            "timeCalculation": max(1, int(self.ready_delay)),
            "numberOfSubJobs": 0,
        }

    def find_request(self, user: str, folder: str) -> SimRequest | None:
        with self.lock:
            for r in self.requests.values():
                if r.user == user and r.folder == folder:
                    return r
        return None

    def account_folders(self, user: str) -> list[str]:
        """The request folders in an account's THREDDS folder, oldest first."""
        with self.lock:
            return [r.folder for r in self.requests.values() if r.user == user]

    def request_state(self, req: SimRequest) -> str:
        if req.ready_at is None or time.monotonic() < req.ready_at:
            return "pending"
        return "failed" if req.failed else "ready"

    def materialize_request(self, req: SimRequest) -> dict[str, Path]:
        """Write the request's files once it is ready (lazily, under the lock)."""
        with self.lock:
            if req.files is not None:
                return req.files
            stream = self.streams[req.table]
            folder = self.workdir / req.folder
            folder.mkdir(parents=True, exist_ok=True)
            files = stream.write_files(folder, req.begin, req.end, req.uuid)
            if req.include_provenance:
                for dep in stream.deployments(req.begin, req.end):
                    name = f"deployment{int(dep):04d}_{stream.table}_aggregate_provenance.json"
                    (folder / name).write_text(json.dumps(_provenance(req.uuid)))
                    files[name] = folder / name
            times = stream.times(req.begin, req.end)
            if len(times):
                # Real requests also hold files of the streams the product depends on.
                n = stream.name
                dep_table = f"{n.site}-{n.node}-99-DEPEND000-{n.method}-dependency_sample"
                t = times[: min(len(times), 5)]
                dep = stream.deployments(float(t[0]), float(t[0]))[0]
                name = data_file_name(
                    dep, dep_table, from_ntp_seconds(t.min()), from_ntp_seconds(t.max())
                )
                files[name] = write_stream_file(
                    folder / name, FileSpec(dep_table, t, dep, req.uuid)
                )
            (folder / "status.txt").write_text("complete\n")
            req.files = files
            req.sizes = {k: p.stat().st_size for k, p in files.items()}
            return files


def _folder(table: str) -> str:
    return f"{utcnow().strftime('%Y%m%dT%H%M%S%f')[:-3]}Z-{table}"


def _provenance(request_uuid: str) -> dict[str, Any]:
    return {
        "requestUUID": request_uuid,
        "instrument_provenance": {},
        "provenance": {},
        "computed_provenance": {},
        "query_parameter_provenance": {},
    }


__all__ = ["DEFAULT_START", "OOINet", "SimRequest", "SimStream"]

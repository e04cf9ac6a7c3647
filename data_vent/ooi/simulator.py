"""OOINet simulator: a real HTTP server on loopback speaking the M2M and THREDDS shapes.

Each stream has a deterministic synthetic history (first sample, sampling interval,
deployments every few days) evaluated against a simulated clock, so ``metadata/times`` and the
NetCDF served agree. Async requests become ready after ``ready_delay`` real seconds; faults are
set per stream (``FAULTS``); ``/sim/*`` control endpoints advance the clock, set faults and
read request counters. HTTP handling lives in :mod:`data_vent.ooi.sim_http`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
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

import numpy as np
import yaml

from data_vent.core.timeutil import from_ntp_seconds, to_naive_utc, to_ntp_seconds, utcnow
from data_vent.ooi.names import TableName, data_file_name, parse_table
from data_vent.ooi.sim_netcdf import FileSpec, write_stream_file
from data_vent.ooi.sim_request import SimRequest

FAULTS = (
    "http_500",  # API answers 500 (``times``: how many calls fail, default always)
    "maintenance",  # API answers the OOI maintenance HTML page with 200
    "slow",  # API answers after ``seconds``
    "never_ready",  # async request never gets status.txt
    "request_failed",  # status.txt says the request failed
    "truncated",  # served NetCDF shorter than the catalog size (``mode``: file|connection)
    "duplicate_times",  # files repeat some timestamps
    "out_of_order",  # files hold times out of order
    "new_variable",  # files with data after ``after`` carry one more variable
    "dim_growth",  # a non-time dimension grows from ``size`` to ``grown`` after ``after``
    "discontinued",  # 404 "not found in OOI Database ... discontinued"
)
DEFAULT_START = datetime(2024, 1, 1)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class SimStream:
    """A stream's synthetic history: samples every ``interval`` s from ``first``."""

    table: str
    first: datetime
    interval: float = 600.0
    deployment_days: float = 10.0
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    reprocessed: list[tuple[float, float]] = field(default_factory=list)
    """NTP windows where a reprocessing added samples at the grid mid-points."""

    def __post_init__(self) -> None:
        self.name: TableName = parse_table(self.table)
        self.first = to_naive_utc(self.first)
        self.t0 = to_ntp_seconds(self.first)
        for f in self.faults:
            if f not in FAULTS:
                raise ValueError(f"unknown simulator fault {f!r}; known: {', '.join(FAULTS)}")

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
            mids = self.times_grid(lo, hi) + self.interval / 2
            extra.append(mids[(mids >= lo) & (mids <= hi)])
        out = np.unique(np.concatenate([grid, *extra]))
        return out[(out >= begin) & (out <= end)]

    def times_grid(self, begin: float, end: float) -> np.ndarray:
        if end < begin:
            return np.empty(0)
        k0 = max(0, int(np.floor((begin - self.t0) / self.interval)))
        k1 = int(np.floor((end - self.t0) / self.interval))
        return self.t0 + np.arange(k0, k1 + 1, dtype="f8") * self.interval

    def summary(self, now: float) -> dict[str, Any] | None:
        """The ``metadata/times`` entry as of ``now`` (None before the first sample)."""
        times = self.times(self.t0, now)
        if not len(times):
            return None
        return {
            "stream": self.name.stream,
            "method": self.name.method,
            "count": len(times),
            "beginTime": _ooi_ms(times[0]),
            "endTime": _ooi_ms(times[-1]),
        }

    def deployment_of(self, t: np.ndarray) -> np.ndarray:
        return 1 + ((t - self.t0) // (self.deployment_days * 86400)).astype(int)


def _ooi_ms(ntp: float) -> str:
    return from_ntp_seconds(ntp).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stream_from_table(table: str, clock: datetime, **overrides: Any) -> SimStream:
    """A deterministic history for ``table``: 10-30 days back, 5-30 min sampling."""
    h = int(hashlib.sha256(table.encode()).hexdigest(), 16)
    days = 10 + h % 21
    interval = (300.0, 600.0, 900.0, 1800.0)[(h >> 8) % 4]
    first = (clock - timedelta(days=days)).replace(microsecond=0)
    kw: dict[str, Any] = {"first": first, "interval": interval}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return SimStream(table, **kw)


def streams_from_configs(config_dir: str | Path, clock: datetime) -> list[SimStream]:
    """Streams of the harvest config YAMLs in ``config_dir`` (upstream format).

    An optional ``simulator:`` mapping (``first``, ``interval``, ``deployment_days``,
    ``faults``) overrides the synthetic defaults.
    """
    out = []
    for path in sorted(Path(config_dir).rglob("*.y*ml")):
        doc = yaml.safe_load(path.read_text()) or {}
        if not isinstance(doc, dict) or "instrument" not in doc or "stream" not in doc:
            continue
        table = f"{doc['instrument']}-{doc['stream']['method']}-{doc['stream']['name']}"
        sim = doc.get("simulator") or {}
        out.append(stream_from_table(table, clock, **sim))
    return out


class Simulator:
    """The simulated OOINet. ``start()`` returns the M2M base URL for DATA_VENT_OOI_URL."""

    def __init__(
        self,
        streams: Iterable[SimStream | str] | str | Path | None = None,
        *,
        ready_delay: float = 3.0,
        start: datetime = DEFAULT_START,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        require_auth: bool = False,
        workdir: str | Path | None = None,
    ):
        if host not in LOOPBACK and not allow_remote:
            raise ValueError(
                f"simulator refuses to bind {host!r}: loopback only unless allow_remote=True"
            )
        self.host, self.port = host, port
        self.ready_delay = ready_delay
        self.require_auth = require_auth
        self.now = to_naive_utc(start)
        self.lock = threading.RLock()
        self.streams: dict[str, SimStream] = {}
        if isinstance(streams, str | Path):
            streams = streams_from_configs(streams, self.now)
        for s in streams or ():
            self.add_stream(s)
        self.requests: dict[str, SimRequest] = {}
        self.counters: dict[str, Counter[str]] = {}
        self._fault_hits: Counter[tuple[str, str]] = Counter()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="data-vent-sim-"))
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None

    # -- configuration -------------------------------------------------------------------

    def add_stream(self, stream: SimStream | str, **overrides: Any) -> SimStream:
        s = (
            stream
            if isinstance(stream, SimStream)
            else stream_from_table(stream, self.now, **overrides)
        )
        with self.lock:
            self.streams[s.table] = s
        return s

    def set_fault(self, table: str, fault: str, **params: Any) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown simulator fault {fault!r}; known: {', '.join(FAULTS)}")
        with self.lock:
            self.streams[table].faults[fault] = params
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
            b = to_ntp_seconds(begin) if begin else s.t0
            e = to_ntp_seconds(end) if end else b + 86400
            s.reprocessed.append((b, min(e, self.now_ntp)))

    @property
    def now_ntp(self) -> float:
        return to_ntp_seconds(self.now)

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

    def instrument_streams(self, site: str, node: str, sensor: str) -> list[SimStream]:
        with self.lock:
            return [
                s
                for s in self.streams.values()
                if (s.name.site, s.name.node, s.name.sensor) == (site, node, sensor)
            ]

    def create_request(
        self,
        stream: SimStream,
        begin: float,
        end: float,
        user: str,
        host_url: str,
        include_provenance: bool,
    ) -> dict[str, Any]:
        with self.lock:
            rid = str(uuid.uuid4())
            stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")[:-3] + "Z"
            folder = f"{stamp}-{stream.table}"
            never = stream.faults.get("never_ready") is not None
            req = SimRequest(
                uuid=rid,
                table=stream.table,
                begin=begin,
                end=min(end, self.now_ntp),
                user=user,
                folder=folder,
                created=time.monotonic(),
                ready_at=None if never else time.monotonic() + self.ready_delay,
                failed="request_failed" in stream.faults,
                include_provenance=include_provenance,
            )
            self.requests[rid] = req
        return self.async_answer(req, host_url, stream)

    def async_answer(
        self, req: SimRequest, host_url: str, stream: SimStream
    ) -> dict[str, Any]:
        catalog = f"{host_url}/thredds/catalog/ooi/{req.user}/{req.folder}/catalog.html"
        n = len(stream.times(req.begin, req.end))
        return {
            "requestUUID": req.uuid,
            "outputURL": catalog,
            "allURLs": [catalog, f"{host_url}/async_results/{req.user}/{req.folder}"],
            "sizeCalculation": n * 170,
            "timeCalculation": max(1, int(self.ready_delay)),
            "numberOfSubJobs": max(
                1, len(set(stream.deployment_of(stream.times(req.begin, req.end)).tolist()))
            ),
        }

    def find_request(self, user: str, folder: str) -> SimRequest | None:
        with self.lock:
            for r in self.requests.values():
                if r.user == user and r.folder == folder:
                    return r
        return None

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
            files: dict[str, Path] = {}
            times = stream.times(req.begin, req.end)
            deps = stream.deployment_of(times)
            for dep in sorted(set(deps.tolist())):
                t = times[deps == dep]
                spec = self._file_spec(stream, t, int(dep), req.uuid)
                name = data_file_name(
                    int(dep),
                    stream.table,
                    from_ntp_seconds(t.min()),
                    from_ntp_seconds(t.max()),
                )
                files[name] = write_stream_file(folder / name, spec)
                if req.include_provenance:
                    pname = (
                        f"deployment{int(dep):04d}_{stream.table}_aggregate_provenance.json"
                    )
                    (folder / pname).write_text(
                        json.dumps(
                            {
                                "requestUUID": req.uuid,
                                "instrument_provenance": {},
                                "provenance": {},
                                "computed_provenance": {},
                                "query_parameter_provenance": {},
                            }
                        )
                    )
                    files[pname] = folder / pname
            if len(times):
                # Real requests also hold files of the streams the product depends on.
                n = stream.name
                dep_table = f"{n.site}-{n.node}-99-DEPEND000-{n.method}-dependency_sample"
                t = times[: min(len(times), 5)]
                name = data_file_name(
                    int(deps[0]),
                    dep_table,
                    from_ntp_seconds(t.min()),
                    from_ntp_seconds(t.max()),
                )
                files[name] = write_stream_file(
                    folder / name, FileSpec(dep_table, t, int(deps[0]), req.uuid)
                )
            (folder / "status.txt").write_text("complete\n")
            req.files = files
            req.sizes = {k: p.stat().st_size for k, p in files.items()}
            return files

    def _file_spec(self, s: SimStream, t: np.ndarray, dep: int, rid: str) -> FileSpec:
        f = s.faults
        t = t.copy()
        if "duplicate_times" in f and len(t) > 2:
            t = np.sort(np.concatenate([t, t[1 : 1 + int(f["duplicate_times"].get("n", 2))]]))
        if "out_of_order" in f and len(t) > 3:
            t[-3], t[-2] = t[-2], t[-3]
        spec = FileSpec(s.table, t, dep, rid)
        if "new_variable" in f:
            after = _ntp(f["new_variable"].get("after"), s.t0)
            spec.new_variable = bool(len(t)) and float(t.max()) >= after
        if "dim_growth" in f:
            p = f["dim_growth"]
            after = _ntp(p.get("after"), s.t0)
            grown = bool(len(t)) and float(t.max()) >= after
            spec.spectrum_size = int(p.get("grown", 10) if grown else p.get("size", 8))
        return spec

    # -- server --------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; return the M2M base URL."""
        from data_vent.ooi.sim_http import make_server

        self._server = make_server(self, self.host, self.port)
        self.port = self._server.server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_url = f"http://{host}:{self.port}"
        self.base_url = f"{self.host_url}/api/m2m"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ooi-simulator",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ntp(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return to_ntp_seconds(value)


def serve_forever(
    port: int = 8090,
    config_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    *,
    ready_delay: float = 3.0,
    allow_remote: bool = False,
    require_auth: bool = False,
) -> None:
    """Run the simulator in the foreground (``data-vent simulator``) until interrupted."""
    sim = Simulator(
        config_dir,
        ready_delay=ready_delay,
        host=host,
        port=port,
        allow_remote=allow_remote,
        require_auth=require_auth,
    )
    base = sim.start()
    print(f"OOI simulator: {len(sim.streams)} streams, clock {sim.now.isoformat()}Z")
    print(f"export DATA_VENT_OOI_URL={base}")
    print(f"control: {sim.host_url}/sim/state (POST /sim/advance?seconds=86400)", flush=True)

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()

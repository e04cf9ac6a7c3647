"""What each path of the simulated OOINet answers: one table of (method, path) -> handler.

M2M under ``/api/m2m`` (sensor inventory, metadata, data requests, preload, events,
annotations), THREDDS (``status.txt``, ``catalog.xml``/``.html``, downloads) and the
``/sim`` control paths of tests and operators. :func:`dispatch` knows nothing of sockets:
:mod:`data_vent.simulator.server` feeds it requests and writes its :class:`Answer`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from xml.sax.saxutils import escape

from data_vent.core.timeutil import parse_ooi_time, to_ntp_seconds
from data_vent.simulator import responses
from data_vent.simulator.ooinet import OOINet, SimRequest

M2M = "/api/m2m"
NETCDF = "application/x-netcdf"
TEXT = "text/plain"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    ctype: str = "application/json"
    length: int | None = None
    """Content-Length to announce when it is not the body's (a connection cut short)."""
    close: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers (``Retry-After`` of a 429)."""


class Reply(Exception):  # noqa: N818 - an answer, not an error
    """An answer decided deep inside a handler (a fault, a 404)."""

    def __init__(
        self,
        status: int,
        body: Any,
        ctype: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(status)
        self.answer = Answer(status, body, ctype, headers=dict(headers or {}))


@dataclass
class Call:
    """One HTTP request, as the handlers see it."""

    sim: OOINet
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    host_url: str = ""

    @cached_property
    def user(self) -> str:
        """Folder name for async results; the token is never echoed anywhere."""
        header = self.headers.get("Authorization", "")
        user = ""
        if header.startswith("Basic "):
            try:
                user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                user = ""
        if not user and self.sim.require_auth:
            raise Reply(401, {"message": "Authentication required", "status_code": 401})
        if not user:
            return "anonymous"
        # Like OOINet, name the results folder after the *account*, not the API user name
        # (a credential): a stable pseudonym stands in for the account's e-mail.
        return "account-" + hashlib.sha256(user.encode()).hexdigest()[:10]

    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


Handler = Callable[[Call, dict[str, str]], Answer]


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


def route(methods: str, template: str, handler: Handler, *, auth: bool = True) -> Route:
    """``{name}`` matches one path segment, ``{name:regex}`` what the regex matches."""
    parts = re.split(r"(\{\w+(?::[^}]+)?\})", template)
    regex = ""
    for part in parts:
        m = re.fullmatch(r"\{(\w+)(?::([^}]+))?\}", part)
        regex += f"(?P<{m[1]}>{m[2] or '[^/]+'})" if m else re.escape(part)
    return Route(frozenset(methods.split("|")), re.compile(regex), handler, auth)


def dispatch(call: Call) -> Answer:
    """The first route whose pattern matches the whole path answers."""
    allowed = False
    for r in ROUTES:
        m = r.pattern.fullmatch(call.path)
        if m is None:
            continue
        if call.method not in r.methods:
            allowed = True
            continue
        try:
            if r.auth:
                _ = call.user
            return r.handler(call, m.groupdict())
        except Reply as reply:
            return reply.answer
    if allowed:
        return Answer(405, {"message": f"{call.method} not allowed on {call.path}"})
    if call.path.startswith(M2M):
        return Answer(404, {"message": f"unknown M2M path {call.path[len(M2M) :]}"})
    if call.path.startswith("/sim/"):
        return Answer(404, {"message": f"unknown control {call.method} {call.path}"})
    return Answer(404, "Not Found", TEXT)


# -- M2M: sensor inventory and metadata ------------------------------------------------------


HTTP_ERROR_TEXT = {
    401: "Authentication required",
    403: "Forbidden: the credentials were not accepted",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _faults(call: Call, streams: list[Any]) -> None:
    """API-level faults of any of ``streams``: slowness, 500, any error status (401, 403,
    429 with Retry-After ...), maintenance HTML, an empty body."""
    sim = call.sim
    for s in streams:
        slow = sim.fault(s.table, "slow")
        if slow is not None:
            time.sleep(float(slow.get("seconds", 5.0)))
    for s in streams:
        if sim.fault(s.table, "http_500") is not None:
            raise Reply(500, {"message": "Internal Server Error", "status_code": 500})
        err = sim.fault(s.table, "http_error")
        if err is not None:
            code = int(err.get("status", 500))
            after = err.get("retry_after")
            raise Reply(
                code,
                {"message": HTTP_ERROR_TEXT.get(code, "Error"), "status_code": code},
                headers={"Retry-After": str(after)} if after is not None else None,
            )
        if sim.fault(s.table, "empty") is not None:
            raise Reply(200, b"")
        if sim.fault(s.table, "maintenance") is not None:
            raise Reply(200, responses.MAINTENANCE_HTML, "text/html; charset=utf-8")


def sites(call: Call, p: dict[str, str]) -> Answer:
    return Answer(200, sorted({s.name.site for s in call.sim.live_streams()}))


def nodes(call: Call, p: dict[str, str]) -> Answer:
    live = call.sim.live_streams()
    return Answer(200, sorted({s.name.node for s in live if s.name.site == p["site"]}))


def sensors(call: Call, p: dict[str, str]) -> Answer:
    live = call.sim.live_streams()
    at = (p["site"], p["node"])
    return Answer(
        200, sorted({s.name.sensor for s in live if (s.name.site, s.name.node) == at})
    )


def table_of_contents(call: Call, p: dict[str, str]) -> Answer:
    """Every stream OOI still lists; a discontinued one is absent."""
    call.sim.count("toc", "all")
    if not call.sim.serve_toc:
        return Answer(404, {"message": "unknown M2M path 12576/sensor/inv/toc"})
    return Answer(200, responses.toc(call.sim.live_streams(), call.sim.now_ntp))


def _instrument(call: Call, p: dict[str, str]) -> list[Any]:
    streams = call.sim.instrument_streams(p["site"], p["node"], p["sensor"])
    return [s for s in streams if "discontinued" not in s.faults]


def methods(call: Call, p: dict[str, str]) -> Answer:
    return Answer(200, sorted({s.name.method for s in _instrument(call, p)}))


def stream_names(call: Call, p: dict[str, str]) -> Answer:
    live = _instrument(call, p)
    return Answer(200, sorted({s.name.stream for s in live if s.name.method == p["method"]}))


def _metadata_entries(call: Call, p: dict[str, str], counter: str) -> list[dict[str, Any]]:
    sim = call.sim
    refdes = f"{p['site']}-{p['node']}-{p['sensor']}"
    sim.count(counter, refdes)
    streams = sim.instrument_streams(p["site"], p["node"], p["sensor"])
    if not streams:
        raise Reply(404, {"message": f"{refdes} not found in OOI Database."})
    _faults(call, streams)
    alive = [s for s in streams if "discontinued" not in s.faults]
    if not alive:
        raise Reply(404, responses.not_found(refdes))
    entries = [e for s in alive if (e := s.summary(sim.now_ntp))]
    if call.query.get("partition") == "true":
        for e in entries:
            begin = to_ntp_seconds(parse_ooi_time(e["beginTime"]))
            e.update({"bin": int(begin // 86400 * 86400), "store": "cass"})
    return entries


def metadata_times(call: Call, p: dict[str, str]) -> Answer:
    return Answer(200, _metadata_entries(call, p, "metadata_times"))


def metadata(call: Call, p: dict[str, str]) -> Answer:
    entries = _metadata_entries(call, p, "metadata")
    params = [
        {"particleKey": key, "stream": e["stream"], "pdId": f"PD{i}"}
        for e in entries
        for i, key in enumerate(["time", "deployment", "sea_water_temperature"], 7)
    ]
    return Answer(200, {"times": entries, "parameters": params})


# -- M2M: data requests ----------------------------------------------------------------------


def data_request(call: Call, p: dict[str, str]) -> Answer:
    sim, q = call.sim, call.query
    table = f"{p['site']}-{p['node']}-{p['sensor']}-{p['method']}-{p['stream']}"
    stream = sim.streams.get(table)
    estimate = q.get("estimate_only") == "true"
    sim.count("estimates" if estimate else "data_requests", table)
    if stream is None:
        raise Reply(404, responses.not_found(table))
    _faults(call, [stream])
    if "discontinued" in stream.faults:
        raise Reply(404, responses.not_found(table))
    try:
        begin = to_ntp_seconds(parse_ooi_time(q["beginDT"])) if "beginDT" in q else 0.0
        end = to_ntp_seconds(parse_ooi_time(q["endDT"])) if "endDT" in q else sim.now_ntp
    except ValueError as exc:
        raise Reply(
            400, {"message": f"bad beginDT/endDT: {exc}", "status_code": 400}
        ) from None
    if q.get("email") in ("None", ""):
        raise Reply(400, {"message": "invalid email 'None'", "status_code": 400})
    if q.get("format", "application/netcdf") != "application/netcdf":
        raise Reply(400, {"message": "simulator serves format=application/netcdf only"})
    if not len(stream.times(begin, min(end, sim.now_ntp))):
        if estimate:  # sized at nothing, and no requestUUID: there is nothing to request
            return Answer(
                200, {"sizeCalculation": 0, "timeCalculation": 0, "numberOfSubJobs": 0}
            )
        raise Reply(404, responses.no_results(str(uuid.uuid4())))
    if estimate:
        return Answer(200, sim.estimate_answer(stream, begin, end, call.host_url))
    provenance = q.get("include_provenance", "false") == "true"
    return Answer(
        200, sim.create_request(stream, begin, end, call.user, call.host_url, provenance)
    )


# -- M2M: preload, events, annotations -------------------------------------------------------


def stream_byname(call: Call, p: dict[str, str]) -> Answer:
    if not any(s.name.stream == p["name"] for s in call.sim.streams.values()):
        raise Reply(404, {"message": f"stream {p['name']} not found"})
    return Answer(200, responses.stream_byname(p["name"]))


def _deployments(call: Call, p: dict[str, str]) -> tuple[Any, list[int]]:
    streams = call.sim.instrument_streams(p["site"], p["node"], p["sensor"])
    if not streams:
        raise Reply(404, {"message": f"{p['site']}-{p['node']}-{p['sensor']} not found"})
    _faults(call, streams)
    s = streams[0]
    return s, s.deployments(s.t0, call.sim.now_ntp)


def deployment_numbers(call: Call, p: dict[str, str]) -> Answer:
    return Answer(200, _deployments(call, p)[1])


def deployment_records(call: Call, p: dict[str, str]) -> Answer:
    s, deps = _deployments(call, p)
    wanted = [n for n in deps if p["number"] in ("-1", str(n))]
    return Answer(200, [responses.deployment_record(s, n) for n in wanted])


def annotations(call: Call, p: dict[str, str]) -> Answer:
    return Answer(200, [])


# -- THREDDS and async results ---------------------------------------------------------------


def _request(call: Call, p: dict[str, str], counter: str) -> SimRequest:
    req = call.sim.find_request(p["user"], p["folder"])
    if req is None:
        raise Reply(404, "Not Found", TEXT)
    call.sim.count(counter, req.table)
    return req


def _ready(call: Call, req: SimRequest) -> dict[str, Any]:
    if call.sim.request_state(req) != "ready":
        raise Reply(404, "Not Found", TEXT)
    return call.sim.materialize_request(req)


def status_txt(call: Call, p: dict[str, str]) -> Answer:
    sim = call.sim
    req = _request(call, p, "status")
    state = sim.request_state(req)
    if state == "pending":
        return Answer(404, "Not Found", TEXT)
    if state == "failed":
        return Answer(200, "Request failed: Stream Engine error (simulated)\n", TEXT)
    sim.materialize_request(req)
    return Answer(200, "complete\n", TEXT)


def account_catalog(call: Call, p: dict[str, str]) -> Answer:
    """An account's folder: every request folder it holds (finished or not)."""
    folders = call.sim.account_folders(p["user"])
    call.sim.count("account_catalogs", p["user"])
    if not folders:
        return Answer(404, "Not Found", TEXT)
    if p["ext"] == "xml":
        xml = responses.account_catalog_xml(p["user"], folders)
        return Answer(200, xml, "application/xml")
    links = "".join(f'<a href="{f}/catalog.html">{escape(f)}/</a><br>' for f in folders)
    return Answer(200, f"<html><body>{links}</body></html>", "text/html")


def catalog(call: Call, p: dict[str, str]) -> Answer:
    req = _request(call, p, "catalogs")
    files = _ready(call, req)
    if p["ext"] == "xml":
        return Answer(200, responses.catalog_xml(req), "application/xml")
    links = "".join(
        f'<a href="catalog.html?dataset=ooi/{req.user}/{req.folder}/{n}">{escape(n)}</a><br>'
        for n in files
    )
    return Answer(200, f"<html><body>{links}</body></html>", "text/html")


def download(call: Call, p: dict[str, str]) -> Answer:
    req = _request(call, p, "downloads")
    files = _ready(call, req)
    name = p["name"]
    if name not in files:
        return Answer(404, "Not Found", TEXT)
    data = files[name].read_bytes()
    trunc = call.sim.fault(req.table, "truncated") if name.endswith(".nc") else None
    if trunc is not None and req.table in name:
        cut = data[: len(data) // 2]
        if trunc.get("mode") == "connection":
            return Answer(200, cut, NETCDF, length=len(data), close=True)
        data = cut
    return Answer(200, data, NETCDF)


# -- /sim control ----------------------------------------------------------------------------


def control(fn: Handler) -> Handler:
    """A missing or malformed parameter of a control call is a 400, not a 500."""

    def wrapped(call: Call, p: dict[str, str]) -> Answer:
        try:
            return fn(call, p)
        except (KeyError, ValueError) as exc:
            raise Reply(400, {"message": f"bad control request: {exc}"}) from None

    return wrapped


@control
def sim_state(call: Call, p: dict[str, str]) -> Answer:
    sim = call.sim
    with sim.lock:
        return Answer(
            200,
            {
                "now": sim.now.isoformat(),
                "streams": {t: s.describe() for t, s in sim.streams.items()},
                "requests": [
                    {"requestUUID": r.uuid, "table": r.table, "state": sim.request_state(r)}
                    for r in sim.requests.values()
                ],
                "counters": sim.counter_snapshot(),
                "peak_calls": sim.peak_calls,
            },
        )


@control
def sim_counters(call: Call, p: dict[str, str]) -> Answer:
    return Answer(200, call.sim.counter_snapshot())


@control
def sim_reset_counters(call: Call, p: dict[str, str]) -> Answer:
    call.sim.reset_counters()
    return Answer(200, {})


@control
def sim_advance(call: Call, p: dict[str, str]) -> Answer:
    now = call.sim.advance(float(call.query.get("seconds", 86400)))
    return Answer(200, {"now": now.isoformat()})


@control
def sim_set_fault(call: Call, p: dict[str, str]) -> Answer:
    table = call.query["table"]
    call.sim.set_fault(table, call.query["fault"], **call.json())
    return Answer(200, {"table": table, "faults": list(call.sim.streams[table].faults)})


@control
def sim_clear_fault(call: Call, p: dict[str, str]) -> Answer:
    call.sim.clear_fault(call.query["table"], call.query.get("fault"))
    return Answer(200, {"table": call.query["table"]})


@control
def sim_toc_remove(call: Call, p: dict[str, str]) -> Answer:
    call.sim.remove_from_toc(call.query["table"])
    return Answer(200, {"table": call.query["table"], "listed": False})


@control
def sim_toc_return(call: Call, p: dict[str, str]) -> Answer:
    call.sim.return_to_toc(call.query["table"])
    return Answer(200, {"table": call.query["table"], "listed": True})


@control
def sim_reprocess(call: Call, p: dict[str, str]) -> Answer:
    q = call.query
    call.sim.reprocess(q["table"], _dt(q.get("begin")), _dt(q.get("end")))
    return Answer(200, {"table": q["table"]})


def _dt(text: str | None) -> datetime | None:
    return parse_ooi_time(text) if text else None


INV = M2M + "/12576/sensor/inv"
INSTRUMENT = INV + "/{site}/{node}/{sensor}"
EVENTS = M2M + "/12587/events/deployment/inv/{site}/{node}/{sensor}"
RESULTS = "/{user}/{folder}"

ROUTES: tuple[Route, ...] = (
    # M2M sensor inventory: the fixed words come before the segments they look like
    route("GET", INV, sites),
    route("GET", INV + "/toc", table_of_contents),
    route("GET", INV + "/{site}", nodes),
    route("GET", INV + "/{site}/{node}", sensors),
    route("GET", INSTRUMENT, methods),
    route("GET", INSTRUMENT + "/metadata", metadata),
    route("GET", INSTRUMENT + "/metadata/times", metadata_times),
    route("GET", INSTRUMENT + "/{method}", stream_names),
    route("GET", INSTRUMENT + "/{method}/{stream}", data_request),
    route("GET", M2M + "/12575/stream/byname/{name}", stream_byname),
    route("GET", EVENTS, deployment_numbers),
    route("GET", EVENTS + "/{number}", deployment_records),
    route("GET", M2M + "/12580/anno/find", annotations),
    # THREDDS and the async results folder
    route("GET", "/async_results" + RESULTS + "/status.txt", status_txt),
    route("GET", "/thredds/catalog/ooi/{user}/catalog.{ext:xml|html}", account_catalog),
    route("GET", "/thredds/catalog/ooi" + RESULTS + "/catalog.{ext:xml|html}", catalog),
    route("GET", "/thredds/{service:fileServer|dodsC}/ooi" + RESULTS + "/{name}", download),
    # control
    route("GET", "/sim/state", sim_state, auth=False),
    route("GET", "/sim/counters", sim_counters, auth=False),
    route("POST|DELETE", "/sim/counters", sim_reset_counters, auth=False),
    route("POST", "/sim/advance", sim_advance, auth=False),
    route("POST", "/sim/fault", sim_set_fault, auth=False),
    route("DELETE", "/sim/fault", sim_clear_fault, auth=False),
    route("POST", "/sim/reprocess", sim_reprocess, auth=False),
    route("DELETE", "/sim/toc", sim_toc_remove, auth=False),
    route("POST", "/sim/toc", sim_toc_return, auth=False),
)

"""HTTP side of the OOINet simulator: routes for M2M (``/api/m2m``), THREDDS and ``/sim``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from data_vent.core.timeutil import parse_ooi_time, to_ntp_seconds
from data_vent.ooi.sim_request import SimRequest

if TYPE_CHECKING:  # annotations only: at run time the simulator imports this module
    from data_vent.ooi.simulator import SimStream, Simulator

API = "/api/m2m/"
_SAFE_USER = re.compile(r"[^A-Za-z0-9_.@-]")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: Simulator


def make_server(sim: Simulator, host: str, port: int) -> ThreadingHTTPServer:
    server = _Server((host, port), Handler)
    server.sim = sim
    return server


class HTTPAnswer(Exception):
    def __init__(self, status: int, body: Any, ctype: str = "application/json"):
        self.status, self.body, self.ctype = status, body, ctype


def _not_found(table: str) -> HTTPAnswer:
    return HTTPAnswer(
        404,
        {
            "message": f"{table} not found in OOI Database. "
            "It may be that this stream has been discontinued."
        },
    )


def _no_results(rid: str) -> HTTPAnswer:
    inner = {"message": "Query returned no results for primary stream", "requestUUID": rid}
    return HTTPAnswer(
        404, {"message": {"status": json.dumps(inner, indent=2) + "\n"}, "status_code": 404}
    )


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if path.startswith("/sim/"):
                self._control(method, path[5:], query)
            user = self._user()
            if path.startswith(API):
                self._m2m(path[len(API) :], query, user)
            elif path.startswith("/thredds/") or path.startswith("/async_results/"):
                self._thredds(path, user)
            raise HTTPAnswer(404, {"message": f"no such path {path}"})
        except _Done:
            pass
        except HTTPAnswer as ans:
            self._send(ans.status, ans.body, ans.ctype)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: Any, ctype: str, length: int | None = None) -> None:
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body, indent=1).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header(
                "Content-Length", str(length if length is not None else len(data))
            )
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _user(self) -> str:
        """Folder name for async results; the token is never echoed anywhere."""
        header = self.headers.get("Authorization", "")
        user = ""
        if header.startswith("Basic "):
            try:
                user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                user = ""
        if not user and self.sim.require_auth:
            raise HTTPAnswer(401, {"message": "Authentication required", "status_code": 401})
        if not user:
            return "anonymous"
        # Like OOINet, name the results folder after the *account*, not the API user name
        # (a credential): a stable pseudonym stands in for the account's e-mail.
        return "account-" + hashlib.sha256(user.encode()).hexdigest()[:10]

    # -- M2M -----------------------------------------------------------------------------

    def _m2m(self, rest: str, q: dict[str, str], user: str) -> None:
        sim = self.sim
        p = [x for x in rest.split("/") if x]
        if p[:3] == ["12576", "sensor", "inv"]:
            self._sensor_inv(p[3:], q, user)
        if p[:3] == ["12575", "stream", "byname"] and len(p) == 4:
            streams = [s for s in sim.streams.values() if s.name.stream == p[3]]
            if not streams:
                raise HTTPAnswer(404, {"message": f"stream {p[3]} not found"})
            raise HTTPAnswer(200, _stream_byname(p[3]))
        if p[:4] == ["12587", "events", "deployment", "inv"] and len(p) in (7, 8):
            streams = sim.instrument_streams(p[4], p[5], p[6])
            if not streams:
                raise HTTPAnswer(404, {"message": f"{'-'.join(p[4:7])} not found"})
            self._faults(streams)
            s = streams[0]
            deps = sorted(set(s.deployment_of(s.times(s.t0, sim.now_ntp)).tolist()))
            if len(p) == 7:
                raise HTTPAnswer(200, deps)
            raise HTTPAnswer(
                200, [_deployment_record(s, n) for n in deps if p[7] == "-1" or str(n) == p[7]]
            )
        if p[:3] == ["12580", "anno", "find"]:
            raise HTTPAnswer(200, [])
        raise HTTPAnswer(404, {"message": f"unknown M2M path {rest}"})

    def _faults(self, streams: list[SimStream]) -> None:
        """API-level faults of any of ``streams``: 500, maintenance HTML, slowness."""
        sim = self.sim
        for s in streams:
            slow = sim.fault(s.table, "slow")
            if slow is not None:
                time.sleep(float(slow.get("seconds", 5.0)))
        for s in streams:
            if sim.fault(s.table, "http_500") is not None:
                raise HTTPAnswer(500, {"message": "Internal Server Error", "status_code": 500})
            if sim.fault(s.table, "maintenance") is not None:
                raise HTTPAnswer(200, _MAINT, "text/html; charset=utf-8")

    def _sensor_inv(self, p: list[str], q: dict[str, str], user: str) -> None:
        sim = self.sim
        live = [s for s in sim.streams.values() if "discontinued" not in s.faults]
        names = [s.name for s in live]
        if len(p) == 0:
            raise HTTPAnswer(200, sorted({n.site for n in names}))
        if len(p) == 1:
            raise HTTPAnswer(200, sorted({n.node for n in names if n.site == p[0]}))
        if len(p) == 2:
            raise HTTPAnswer(
                200, sorted({n.sensor for n in names if (n.site, n.node) == (p[0], p[1])})
            )
        site, node, sensor = p[0], p[1], p[2]
        streams = sim.instrument_streams(site, node, sensor)
        refdes = f"{site}-{node}-{sensor}"
        if len(p) >= 4 and p[3] == "metadata":
            sim.count("metadata_times" if p[4:] == ["times"] else "metadata", refdes)
            if not streams:
                raise HTTPAnswer(404, {"message": f"{refdes} not found in OOI Database."})
            self._faults(streams)
            alive = [s for s in streams if "discontinued" not in s.faults]
            if not alive:
                raise _not_found(refdes)
            entries = [e for s in alive if (e := s.summary(sim.now_ntp))]
            if q.get("partition") == "true":
                for e in entries:
                    e.update(
                        {
                            "bin": int(
                                to_ntp_seconds(parse_ooi_time(e["beginTime"])) // 86400 * 86400
                            ),
                            "store": "cass",
                        }
                    )
            if p[4:] == ["times"]:
                raise HTTPAnswer(200, entries)
            raise HTTPAnswer(
                200,
                {
                    "times": entries,
                    "parameters": [
                        {"particleKey": v, "stream": s.name.stream, "pdId": f"PD{i}"}
                        for s in alive
                        for i, v in enumerate(
                            ["time", "deployment", "sea_water_temperature"], 7
                        )
                    ],
                },
            )
        if len(p) == 3:
            raise HTTPAnswer(
                200, sorted({s.name.method for s in streams if "discontinued" not in s.faults})
            )
        if len(p) == 4:
            raise HTTPAnswer(
                200,
                sorted(
                    {
                        s.name.stream
                        for s in streams
                        if s.name.method == p[3] and "discontinued" not in s.faults
                    }
                ),
            )
        if len(p) == 5:
            table = f"{refdes}-{p[3]}-{p[4]}"
            self._data_request(table, q, user)
        raise HTTPAnswer(404, {"message": f"unknown sensor inventory path {'/'.join(p)}"})

    def _data_request(self, table: str, q: dict[str, str], user: str) -> None:
        sim = self.sim
        stream = sim.streams.get(table)
        estimate = q.get("estimate_only") == "true"
        sim.count("estimates" if estimate else "data_requests", table)
        if stream is None:
            raise _not_found(table)
        self._faults([stream])
        if "discontinued" in stream.faults:
            raise _not_found(table)
        try:
            begin = to_ntp_seconds(parse_ooi_time(q["beginDT"])) if "beginDT" in q else 0.0
            end = to_ntp_seconds(parse_ooi_time(q["endDT"])) if "endDT" in q else sim.now_ntp
        except ValueError as exc:
            raise HTTPAnswer(
                400, {"message": f"bad beginDT/endDT: {exc}", "status_code": 400}
            ) from None
        if q.get("email") in ("None", ""):
            raise HTTPAnswer(400, {"message": "invalid email 'None'", "status_code": 400})
        if q.get("format", "application/netcdf") != "application/netcdf":
            raise HTTPAnswer(
                400, {"message": "simulator serves format=application/netcdf only"}
            )
        if not len(stream.times(begin, min(end, sim.now_ntp))):
            raise _no_results(str(uuid.uuid4()))
        host = f"http://{self.headers.get('Host') or sim.host_url.split('//', 1)[1]}"
        if estimate:
            fake = SimRequest(
                "",
                table,
                begin,
                min(end, sim.now_ntp),
                user,
                "estimate",
                0.0,
                None,
                False,
                False,
            )
            ans = sim.async_answer(fake, host, stream)
            ans["requestUUID"] = ""
            raise HTTPAnswer(200, ans)
        provenance = q.get("include_provenance", "false") == "true"
        raise HTTPAnswer(200, sim.create_request(stream, begin, end, user, host, provenance))

    # -- THREDDS -------------------------------------------------------------------------

    def _thredds(self, path: str, user: str) -> None:
        sim = self.sim
        m = re.fullmatch(r"/async_results/([^/]+)/([^/]+)/status\.txt", path)
        if m:
            req = self._req(m[1], m[2], "status")
            state = sim.request_state(req)
            if state == "pending":
                raise HTTPAnswer(404, "Not Found", "text/plain")
            if state == "failed":
                raise HTTPAnswer(
                    200, "Request failed: Stream Engine error (simulated)\n", "text/plain"
                )
            sim.materialize_request(req)
            raise HTTPAnswer(200, "complete\n", "text/plain")
        m = re.fullmatch(r"/thredds/catalog/ooi/([^/]+)/([^/]+)/catalog\.(xml|html)", path)
        if m:
            req = self._req(m[1], m[2], "catalogs")
            if sim.request_state(req) != "ready":
                raise HTTPAnswer(404, "Not Found", "text/plain")
            sim.materialize_request(req)
            if m[3] == "html":
                links = "".join(
                    f'<a href="catalog.html?dataset=ooi/{req.user}/{req.folder}/'
                    f'{n}">{escape(n)}</a><br>'
                    for n in req.files or {}
                )
                raise HTTPAnswer(200, f"<html><body>{links}</body></html>", "text/html")
            raise HTTPAnswer(200, _catalog_xml(req), "application/xml")
        m = re.fullmatch(r"/thredds/(?:fileServer|dodsC)/ooi/([^/]+)/([^/]+)/([^/]+)", path)
        if m:
            req = self._req(m[1], m[2], "downloads")
            if sim.request_state(req) != "ready":
                raise HTTPAnswer(404, "Not Found", "text/plain")
            files = sim.materialize_request(req)
            if m[3] not in files:
                raise HTTPAnswer(404, "Not Found", "text/plain")
            data = files[m[3]].read_bytes()
            trunc = sim.fault(req.table, "truncated") if m[3].endswith(".nc") else None
            if trunc is not None and req.table in m[3]:
                cut = data[: len(data) // 2]
                if trunc.get("mode") == "connection":
                    self._send(200, cut, "application/x-netcdf", length=len(data))
                    self.close_connection = True
                    raise _Done
                data = cut
            raise HTTPAnswer(200, data, "application/x-netcdf")
        raise HTTPAnswer(404, "Not Found", "text/plain")

    def _req(self, user: str, folder: str, counter: str) -> SimRequest:
        req = self.sim.find_request(user, folder)
        if req is None:
            raise HTTPAnswer(404, "Not Found", "text/plain")
        self.sim.count(counter, req.table)
        return req

    # -- control -------------------------------------------------------------------------

    def _control(self, method: str, cmd: str, q: dict[str, str]) -> None:
        sim = self.sim
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        try:
            if cmd == "state" and method == "GET":
                raise HTTPAnswer(200, _state(sim))
            if cmd == "counters" and method == "GET":
                raise HTTPAnswer(200, sim.counter_snapshot())
            if cmd == "counters" and method in ("POST", "DELETE"):
                sim.reset_counters()
                raise HTTPAnswer(200, {})
            if cmd == "advance" and method == "POST":
                now = sim.advance(float(q.get("seconds", 86400)))
                raise HTTPAnswer(200, {"now": now.isoformat()})
            if cmd == "fault" and method == "POST":
                sim.set_fault(q["table"], q["fault"], **body)
                raise HTTPAnswer(
                    200, {"table": q["table"], "faults": list(sim.streams[q["table"]].faults)}
                )
            if cmd == "fault" and method == "DELETE":
                sim.clear_fault(q["table"], q.get("fault"))
                raise HTTPAnswer(200, {"table": q["table"]})
            if cmd == "reprocess" and method == "POST":
                sim.reprocess(q["table"], _dt(q.get("begin")), _dt(q.get("end")))
                raise HTTPAnswer(200, {"table": q["table"]})
        except (KeyError, ValueError) as exc:
            raise HTTPAnswer(400, {"message": f"bad control request: {exc}"}) from None
        raise HTTPAnswer(404, {"message": f"unknown control {method} /sim/{cmd}"})


class _Done(HTTPAnswer):
    def __init__(self) -> None:
        super().__init__(0, b"")


def _dt(text: str | None) -> datetime | None:
    return parse_ooi_time(text) if text else None


def _state(sim: Simulator) -> dict[str, Any]:
    with sim.lock:
        return {
            "now": sim.now.isoformat(),
            "streams": {
                t: {"first": s.first.isoformat(), "interval": s.interval, "faults": s.faults}
                for t, s in sim.streams.items()
            },
            "requests": [
                {"requestUUID": r.uuid, "table": r.table, "state": sim.request_state(r)}
                for r in sim.requests.values()
            ],
            "counters": sim.counter_snapshot(),
        }


def _catalog_xml(req: SimRequest) -> str:
    path = f"ooi/{req.user}/{req.folder}"
    items = []
    for name in sorted(req.files or {}):
        items.append(
            f"    <dataset name={quoteattr(name)} ID={quoteattr(path + '/' + name)} "
            f"urlPath={quoteattr(path + '/' + name)}>\n"
            f'      <dataSize units="bytes">{req.sizes[name]}</dataSize>\n'
            f'      <date type="modified">2024-01-01T00:00:00Z</date>\n'
            "    </dataset>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<catalog xmlns="http://www.unidata.ucar.edu/namespaces/thredds/InvCatalog/v1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" name="THREDDS Server Default Catalog" '
        'version="1.0.1">\n'
        '  <service name="all" serviceType="Compound" base="">\n'
        '    <service name="odap" serviceType="OpenDAP" base="/thredds/dodsC/" />\n'
        '    <service name="http" serviceType="HTTPServer" base="/thredds/fileServer/" />\n'
        "  </service>\n"
        f"  <dataset name={quoteattr(req.folder)} ID={quoteattr(path)}>\n"
        '    <metadata inherited="true"><serviceName>all</serviceName></metadata>\n'
        + "".join(items)
        + "  </dataset>\n</catalog>\n"
    )


def _stream_byname(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": abs(hash(name)) % 10000,
        "stream_type": {"value": "Science"},
        "stream_content": {"value": "Data Products"},
        "parameters": [
            {"name": "time", "id": 7, "unit": {"value": "seconds since 1900-01-01"}},
            {"name": "sea_water_temperature", "id": 908, "unit": {"value": "deg_C"}},
        ],
        "dependencies": [],
    }


def _deployment_record(s: SimStream, n: int) -> dict[str, Any]:
    from data_vent.core.timeutil import from_ntp_seconds

    start = from_ntp_seconds(s.t0 + (n - 1) * s.deployment_days * 86400)
    epoch = datetime(1970, 1, 1)
    return {
        "@class": ".XDeployment",
        "deploymentNumber": n,
        "eventStartTime": int((start - epoch).total_seconds() * 1000),
        "eventStopTime": None,
        "referenceDesignator": s.name.refdes,
        "location": {"latitude": 44.3695, "longitude": -124.954, "depth": 0.0},
    }


_MAINT = (
    "<!DOCTYPE html><html><head><title>OOINet Maintenance</title></head><body>"
    "<h1>OOINet is undergoing scheduled maintenance</h1>"
    "<p>The Ocean Observatories Initiative data portal will be back shortly.</p>"
    "</body></html>"
)

"""The simulated OOINet on a real HTTP server on loopback, and the standalone command."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from data_vent.core.timeutil import utcnow
from data_vent.simulator.ooinet import OOINet
from data_vent.simulator.routes import Answer, Call, dispatch

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: OOINet
    host_url: str


class Handler(BaseHTTPRequestHandler):
    """Turns each request into a :class:`Call` for the route table, writes its answer."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        host = self.headers.get("Host")
        call = Call(
            sim=self.server.sim,
            method=method,
            path=unquote(parts.path),
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
            host_url=f"http://{host}" if host else self.server.host_url,
        )
        api = not call.path.startswith("/sim/")  # control calls are not OOI's load
        if api:
            call.sim.call_started()
        try:
            self._send(dispatch(call))
        finally:
            if api:
                call.sim.call_finished()

    def _send(self, ans: Answer) -> None:
        body = ans.body
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body, indent=1).encode()
        try:
            self.send_response(ans.status)
            self.send_header("Content-Type", ans.ctype)
            length = ans.length if ans.length is not None else len(data)
            self.send_header("Content-Length", str(length))
            for name, value in ans.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if ans.close:
            self.close_connection = True


class Simulator(OOINet):
    """The simulated OOINet; ``start()`` serves it and returns the M2M base URL."""

    def __init__(
        self,
        streams: Any = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        **kwargs: Any,
    ):
        if host not in LOOPBACK and not allow_remote:
            raise ValueError(
                f"simulator refuses to bind {host!r}: loopback only unless allow_remote=True"
            )
        super().__init__(streams, **kwargs)
        self.host, self.port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None
        self.host_url: str = ""

    def start(self) -> str:
        """Start serving in a background thread; return the M2M base URL."""
        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_url = f"http://{host}:{self.port}"
        self._server.sim, self._server.host_url = self, self.host_url
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


def serve_forever(
    port: int = 8090,
    config_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    *,
    start: datetime | None = None,
    ready_delay: float = 3.0,
    allow_remote: bool = False,
    require_auth: bool = False,
) -> None:
    """Run the simulator in the foreground (``data-vent simulator``) until interrupted.

    The clock starts at ``start``, by default now: a harvester pointed at it sees data as
    recent as the wall clock, and status shows no invented source lag.
    """
    sim = Simulator(
        config_dir,
        start=start or utcnow().replace(microsecond=0),
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

"""OOI M2M client: one ``requests.Session`` with Basic auth, timeouts and retries.

Every failure becomes a typed :mod:`data_vent.core.errors` error whose message names the URL
(credentials stripped) and what to do. Retries (urllib3 ``Retry``, exponential backoff with
jitter) cover connection errors, read timeouts, 5xx and 429 on GET, which is all M2M uses; a
``Retry-After`` (429, 503) is honoured up to ``ooi_retry_after_max`` seconds. 401/403 are
never retried: they are the operator's to fix (``OOIAuthError``, exit 2).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from data_vent.core.errors import (
    OOIAuthError,
    OOIDownloadError,
    OOINoData,
    OOINotFound,
    OOIRequestFailed,
    OOIUnavailable,
)
from data_vent.core.timeutil import format_ooi_time
from data_vent.core.vocab import RequestStatus
from data_vent.ooi.names import parse_refdes, parse_table
from data_vent.ooi.responses import (
    AsyncResponse,
    StreamTimes,
    parse_annotations,
    parse_deployment_numbers,
    parse_deployment_records,
    parse_inventory,
    parse_metadata_times,
    parse_stream_byname,
    parse_toc,
)
from data_vent.ooi.thredds import (
    Listing,
    ThreddsFile,
    ThreddsFolder,
    catalog_xml_url,
    parse_catalog,
    parse_catalog_refs,
    split_listing,
)
from data_vent.settings import Settings

if TYPE_CHECKING:
    from data_vent.ooi.ratelimit import CallLimiter

log = logging.getLogger(__name__)

SENSOR_PORT = "12576"
PRELOAD_PORT = "12575"
ANNO_PORT = "12580"
EVENTS_PORT = "12587"
_RETRY_STATUS = (429, 500, 502, 503, 504)
_NOT_PROCESSED = (429,)
"""Statuses that say the request was not processed: safe to retry even a data request."""


class _CappedRetry(Retry):
    """urllib3's ``Retry``, honouring ``Retry-After`` up to ``retry_after_cap`` seconds (a
    server asking for an hour must not stall a worker for an hour; urllib3's own
    ``retry_after_max`` is recent and defaults to 6 h)."""

    retry_after_cap: float = 120.0

    def get_retry_after(self, response) -> float | None:  # type: ignore[override]
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.retry_after_cap)


def _retry_class(cap: float) -> type[Retry]:
    return type("CappedRetry", (_CappedRetry,), {"retry_after_cap": float(cap)})


def redact_url(url: str) -> str:
    """Drop any ``user:password@`` from a URL so it can go in a message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class StatusProbe:
    """``status.txt`` probe: ``pending`` (absent), ``ready`` or ``failed`` (with its text)."""

    state: RequestStatus
    text: str = ""


def parse_error_body(body: Any) -> tuple[str, str]:
    """Classify an OOI error JSON -> (``nodata``|``notfound``|``other``, message).

    Shapes seen: ``{"message": {"status": "<json text>"}, "status_code": 404}`` and
    ``{"message": "<table> not found in OOI Database. ... discontinued."}``.
    """
    msg: Any = body.get("message", body) if isinstance(body, dict) else body
    if isinstance(msg, dict) and "status" in msg:
        inner = msg["status"]
        with contextlib.suppress(ValueError):
            inner = json.loads(inner) if isinstance(inner, str) else inner
        msg = inner.get("message", inner) if isinstance(inner, dict) else inner
    text = " ".join(str(msg).split())
    low = text.lower()
    if "no results" in low or "no data" in low:
        return "nodata", text
    if "not found" in low or "discontinued" in low:
        return "notfound", text
    return "other", text


class OOIClient:
    """Typed access to the OOI M2M API, THREDDS and ``status.txt``: a public client.

    The harvest uses ``metadata_times``, ``request_data``, ``request_status``, ``listing``
    and ``download``; the rest of the M2M surface is here for operators and scripts and is
    tested against the simulator like the rest: ``inventory`` (sites, nodes, sensors,
    methods, streams), ``stream_byname`` (preload), ``deployments``/``deployment`` (events),
    ``annotations``, ``estimate`` (a data request's size, no request made) and ``catalog``.
    """

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        limiter: CallLimiter | None = None,
    ):
        self.settings = settings
        self.limiter = limiter
        """Shared cap on concurrent calls (every worker on the state DB); None: no cap."""
        parts = urlsplit(settings.ooi_url.rstrip("/"))
        url_user, url_pass = parts.username, parts.password
        self.base_url = redact_url(settings.ooi_url.rstrip("/"))
        self.timeout = (settings.ooi_connect_timeout, settings.ooi_read_timeout)
        self.session = session or requests.Session()
        user = settings.ooi_username.get_secret_value() if settings.ooi_username else url_user
        token = settings.ooi_token.get_secret_value() if settings.ooi_token else url_pass
        if user and token:
            self.session.auth = (user, token)
        retry = _retry_class(settings.ooi_retry_after_max)(
            total=max(0, settings.ooi_retries),
            connect=max(0, settings.ooi_retries),
            read=max(0, settings.ooi_retries),
            status=max(0, settings.ooi_retries),
            other=0,
            backoff_factor=settings.ooi_backoff,
            backoff_jitter=settings.ooi_backoff / 2,
            backoff_max=max(settings.ooi_backoff * 60, 1.0),
            status_forcelist=_RETRY_STATUS,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # A data request is not idempotent: OOI may have queued the job before a 5xx or a
        # read timeout, and a blind retry would queue a second one. Retry it only when the
        # connection was never made; otherwise fail and let the next run ask again.
        self._once = requests.Session()
        self._once.auth = self.session.auth
        once = HTTPAdapter(
            max_retries=retry.new(
                read=0, status_forcelist=_NOT_PROCESSED, total=max(0, settings.ooi_retries)
            ),
            pool_maxsize=4,
        )
        self._once.mount("http://", once)
        self._once.mount("https://", once)

    # -- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        self.session.close()
        self._once.close()

    def __enter__(self) -> OOIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        url = f"{self.base_url}/{path.lstrip('/')}"
        return f"{url}?{urlencode(params)}" if params else url

    def _slot(self) -> contextlib.AbstractContextManager:
        """One of the shared OOI call slots, held until the answer has been read."""
        return self.limiter.slot() if self.limiter is not None else contextlib.nullcontext()

    def _get(self, url: str, *, stream: bool = False, once: bool = False) -> requests.Response:
        """GET ``url``; a streamed answer must be read inside the caller's own ``_slot``."""
        if stream:
            return self._send(url, stream=True, once=once)
        with self._slot():
            return self._send(url, stream=False, once=once)

    def _send(self, url: str, *, stream: bool, once: bool) -> requests.Response:
        shown = redact_url(url)
        session = self._once if once else self.session
        try:
            return session.get(url, timeout=self.timeout, stream=stream)
        except requests.exceptions.ConnectionError as exc:
            what = (
                "timed out"
                if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc)
                else "is unreachable"
            )
            raise OOIUnavailable(
                f"OOI {what} at {shown} after {self.settings.ooi_retries} retries; "
                "check DATA_VENT_OOI_URL and the network, or try again later"
            ) from None
        except requests.exceptions.Timeout:
            raise OOIUnavailable(
                f"OOI timed out at {shown} (read timeout {self.timeout[1]} s); "
                "try again later or raise DATA_VENT_OOI_READ_TIMEOUT"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise OOIUnavailable(
                f"OOI request to {shown} failed ({type(exc).__name__}); try again later"
            ) from None

    def _check(self, resp: requests.Response, url: str) -> None:
        """Map an HTTP error status to a typed error."""
        shown = redact_url(url)
        code = resp.status_code
        if code < 400:
            return
        where = {"url": shown, "status_code": code}
        if code in (401, 403):
            given = self.session.auth is not None
            raise OOIAuthError(
                f"OOI refused the credentials ({code}) at {shown}; "
                + (
                    "check OOI_USERNAME and OOI_TOKEN (your OOINet API user and token)"
                    if given
                    else "no credentials are set: set OOI_USERNAME and OOI_TOKEN"
                ),
                **where,
            )
        if code == 429:
            raise OOIUnavailable(
                f"OOI is rate limiting (429) at {shown} after "
                f"{self.settings.ooi_retries} retries; try again later",
                **where,
            )
        if code >= 500:
            raise OOIUnavailable(
                f"OOI answered {code} at {shown} after {self.settings.ooi_retries} retries; "
                "try again later",
                **where,
            )
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:300]
        kind, text = parse_error_body(body)
        said = {**where, "ooi_message": text[:200]}
        if kind == "nodata":
            raise OOINoData(f"OOI has no data at {shown}: {text[:200]}", **said)
        if code == 404 or kind == "notfound":
            raise OOINotFound(f"OOI does not know {shown} ({code}): {text[:200]}", **said)
        raise OOIRequestFailed(f"OOI refused {shown} ({code}): {text[:200]}", **said)

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, once: bool = False
    ) -> Any:
        """GET an M2M path and return its JSON; HTML or non-JSON -> OOIUnavailable.

        ``once``: no retry after the request may have reached OOI (non-idempotent calls).
        """
        url = self.url(path, params)
        resp = self._get(url, once=once)
        self._check(resp, url)
        ctype = resp.headers.get("Content-Type", "")
        head = resp.text.lstrip()[:1]
        if "html" in ctype.lower() or head == "<":
            raise OOIUnavailable(
                f"OOI answered an HTML page at {redact_url(url)} (maintenance?); "
                "try again later"
            )
        try:
            body = resp.json()
        except ValueError:
            raise OOIUnavailable(
                f"OOI answered non-JSON ({ctype or 'no content type'}) at {redact_url(url)}; "
                "try again later"
            ) from None
        code = body.get("status_code") if isinstance(body, dict) else None
        if isinstance(code, int) and code >= 400:
            resp.status_code = code
            self._check(resp, url)
        return body

    # -- inventory and metadata ----------------------------------------------------------

    def inventory(self, *parts: str) -> list[str]:
        """``12576/sensor/inv[/site[/node[/sensor[/method]]]]`` -> names at that level."""
        body = self.get_json("/".join([SENSOR_PORT, "sensor", "inv", *parts]))
        return parse_inventory(body)

    def toc(self) -> dict[str, StreamTimes]:
        """OOI's table of contents (``12576/sensor/inv/toc``): every stream it still lists,
        by table name; a stream absent from it is discontinued."""
        return parse_toc(self.get_json(f"{SENSOR_PORT}/sensor/inv/toc"))

    def metadata_times(self, refdes: str, partition: bool = False) -> list[StreamTimes]:
        """Begin, end and count of every stream of an instrument: one call per instrument."""
        site, node, sensor = parse_refdes(refdes)
        body = self.get_json(
            f"{SENSOR_PORT}/sensor/inv/{site}/{node}/{sensor}/metadata/times",
            {"partition": "true"} if partition else None,
        )
        return parse_metadata_times(body)

    def stream_byname(self, stream: str) -> dict[str, Any]:
        return parse_stream_byname(self.get_json(f"{PRELOAD_PORT}/stream/byname/{stream}"))

    def deployments(self, refdes: str) -> list[int]:
        site, node, sensor = parse_refdes(refdes)
        body = self.get_json(f"{EVENTS_PORT}/events/deployment/inv/{site}/{node}/{sensor}")
        return parse_deployment_numbers(body)

    def deployment(self, refdes: str, number: int = -1) -> list[dict[str, Any]]:
        site, node, sensor = parse_refdes(refdes)
        body = self.get_json(
            f"{EVENTS_PORT}/events/deployment/inv/{site}/{node}/{sensor}/{number}"
        )
        return parse_deployment_records(body)

    def annotations(
        self, refdes: str, begin: datetime | None = None, end: datetime | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"refdes": refdes}
        if begin is not None:
            params["beginDT"] = int(_epoch_ms(begin))
        if end is not None:
            params["endDT"] = int(_epoch_ms(end))
        return parse_annotations(self.get_json(f"{ANNO_PORT}/anno/find", params))

    # -- data requests -------------------------------------------------------------------

    def data_request_params(
        self,
        begin: datetime,
        end: datetime,
        *,
        include_annotations: bool = False,
        include_provenance: bool = True,
        estimate_only: bool = False,
    ) -> dict[str, str]:
        params = {
            "beginDT": format_ooi_time(begin),
            "endDT": format_ooi_time(end),
            "format": "application/netcdf",
            "include_provenance": "true" if include_provenance else "false",
        }
        if include_annotations:
            params["include_annotations"] = "true"
        if estimate_only:
            params["estimate_only"] = "true"
        return params

    def request_data(
        self,
        table: str,
        begin: datetime,
        end: datetime,
        *,
        include_annotations: bool = False,
        include_provenance: bool = True,
        estimate_only: bool = False,
    ) -> AsyncResponse:
        """Start an async NetCDF request for ``table`` over [begin, end] (or estimate it)."""
        t = parse_table(table)
        params = self.data_request_params(
            begin,
            end,
            include_annotations=include_annotations,
            include_provenance=include_provenance,
            estimate_only=estimate_only,
        )
        path = f"{SENSOR_PORT}/sensor/inv/{t.site}/{t.node}/{t.sensor}/{t.method}/{t.stream}"
        body = self.get_json(path, params, once=not estimate_only)
        if estimate_only and isinstance(body, dict) and not body.get("requestUUID"):
            # OOI sizes an empty range without a requestUUID: nothing to request
            raise OOINoData(
                f"OOI estimates no data for {table} from {params['beginDT']} to "
                f"{params['endDT']} (no requestUUID)",
                url=redact_url(self.url(path, params)),
                ooi_message="estimate without requestUUID",
            )
        return AsyncResponse.from_json(body)

    def estimate(self, table: str, begin: datetime, end: datetime) -> AsyncResponse:
        """What a request would cost, queueing nothing; ``OOINoData`` when the range holds
        no data (OOI answers an estimate without a requestUUID)."""
        return self.request_data(table, begin, end, estimate_only=True)

    def request_status(self, status_url: str) -> StatusProbe:
        """Probe ``status.txt``: absent (404) -> pending, else ready unless it says failed."""
        resp = self._get(status_url)
        if resp.status_code == 404:
            return StatusProbe(RequestStatus.PENDING)
        self._check(resp, status_url)
        text = resp.text.strip()
        low = text.lower()
        if "fail" in low or "error" in low:
            return StatusProbe(RequestStatus.FAILED, text[:500])
        return StatusProbe(RequestStatus.READY, text[:500])

    def catalog(self, catalog_or_output_url: str) -> list[ThreddsFile]:
        """Every file of a request folder, from its ``catalog.xml``."""
        return parse_catalog(*self._catalog_xml(catalog_or_output_url, " (yet)"))

    def folders(self, catalog_url: str) -> list[ThreddsFolder]:
        """The sub-folders of a THREDDS catalog: an account's request folders."""
        return parse_catalog_refs(*self._catalog_xml(catalog_url))

    def _catalog_xml(self, catalog_url: str, note: str = "") -> tuple[bytes, str]:
        """A THREDDS folder's ``catalog.xml`` and its URL, read one way for files and
        sub-folders; ``OOINotFound`` (``note`` ending its message) when there is none."""
        url = catalog_xml_url(catalog_url)
        resp = self._get(url)
        if resp.status_code == 404:
            raise OOINotFound(f"THREDDS catalog {redact_url(url)} does not exist{note}")
        self._check(resp, url)
        return resp.content, url

    def listing(self, catalog_or_output_url: str, table: str) -> Listing:
        """``table``'s data and provenance files; dependency streams' files set aside."""
        return split_listing(self.catalog(catalog_or_output_url), table)

    def download(self, file: ThreddsFile, dest_dir: str | Path, chunk: int = 1 << 20) -> Path:
        """Stream ``file`` to ``dest_dir`` under a temp name; rename after the size check."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        final = dest_dir / file.name
        tmp = dest_dir / f".{file.name}.part-{os.getpid()}"
        with self._slot():  # one call slot for the whole transfer
            return self._stream_to(file, tmp, final, chunk)

    def _stream_to(self, file: ThreddsFile, tmp: Path, final: Path, chunk: int) -> Path:
        shown = redact_url(file.url)
        resp = self._get(file.url, stream=True)
        try:
            self._check(resp, file.url)
            written = 0
            with open(tmp, "wb") as fh:
                for block in resp.iter_content(chunk):
                    fh.write(block)
                    written += len(block)
        except requests.exceptions.RequestException as exc:
            tmp.unlink(missing_ok=True)
            raise OOIDownloadError(
                f"download of {shown} broke off ({type(exc).__name__}); retry the harvest"
            ) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            resp.close()
        if file.size is not None and abs(written - file.size) > file.size_tolerance:
            tmp.unlink(missing_ok=True)
            raise OOIDownloadError(
                f"download of {shown} has {written} bytes, the catalog lists {file.size}; "
                "the file is truncated or changed, retry the harvest"
            )
        os.replace(tmp, final)
        return final


def _epoch_ms(value: datetime) -> float:
    from data_vent.core.timeutil import to_naive_utc

    return (to_naive_utc(value) - datetime(1970, 1, 1)).total_seconds() * 1000

"""Async OOI requests as persistent state (rows in ``state.requests``), not a process waiting.

A run starts a request or resumes the outstanding one for the same asset and range, checks
``status.txt`` a bounded time, and otherwise moves on (the asset is ``waiting``); the next run
picks the same request up again, so OOI is never asked twice for the same data.

Status: ``pending`` -> ``ready`` (files listed) -> ``done``; or ``failed`` / ``expired``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from data_vent.core.errors import OOINotFound
from data_vent.core.snapshot import RequestRecord
from data_vent.core.timeutil import to_naive_utc, utcnow
from data_vent.core.vocab import RequestStatus
from data_vent.ooi.thredds import ThreddsFile
from data_vent.state import requests as rows

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from data_vent.ooi.client import OOIClient

DEFAULT_EXPIRY = timedelta(days=14)
"""OOI removes async results after a few weeks; an older request is asked again."""


def find_outstanding(
    engine: Engine, asset_key: str, begin: datetime | None, end: datetime | None
) -> RequestRecord | None:
    """The newest ``pending``/``ready`` request for this asset and exact range."""
    return rows.find_open(engine, asset_key, _naive(begin), _naive(end))


def outstanding_requests(engine: Engine, asset_key: str | None = None) -> list[RequestRecord]:
    return rows.open_requests(engine, asset_key)


def ensure_request(
    engine: Engine,
    client: OOIClient,
    asset_key: str,
    begin: datetime,
    end: datetime,
    run_id: str,
    *,
    table: str | None = None,
    include_annotations: bool = False,
    expiry: timedelta = DEFAULT_EXPIRY,
) -> RequestRecord:
    """Reuse the outstanding request for (asset, begin, end) or ask OOI for a new one.

    ``table`` defaults to ``asset_key`` (a stream store's key is its table name). A new
    request is estimated first. Raises ``OOINoData`` when OOI has nothing in the range (the
    estimate has no requestUUID, or the request finds no results), ``OOINotFound`` when
    discontinued.
    """
    now = utcnow()
    existing = find_outstanding(engine, asset_key, begin, end)
    if existing is not None:
        if existing.expires_at is None or existing.expires_at > now:
            return existing
        _update(engine, existing, status=RequestStatus.EXPIRED)
    # Ask for an estimate first, as the real API intends: an empty range is answered
    # without a requestUUID (OOINoData), and no job is queued for it.
    client.estimate(table or asset_key, begin, end)
    answer = client.request_data(
        table or asset_key, begin, end, include_annotations=include_annotations
    )
    return rows.insert_request(
        engine,
        **_new_row(asset_key, begin, end, run_id, now),
        status=RequestStatus.PENDING,
        request_uuid=answer.request_uuid,
        output_url=answer.output_url or (answer.all_urls[0] if answer.all_urls else None),
        status_url=answer.status_url,
        next_check_at=now,
        expires_at=now + expiry,
    )


def adopt_finished(
    engine: Engine,
    asset_key: str,
    begin: datetime,
    end: datetime,
    run_id: str,
    *,
    output_url: str,
    status_url: str,
    files: list[ThreddsFile],
) -> RequestRecord:
    """Record a finished request found in the account's folder as ``ready`` (no OOI call):
    the harvest then downloads its files as it would a request of its own."""
    return rows.insert_request(
        engine,
        **_new_row(asset_key, begin, end, run_id, utcnow()),
        status=RequestStatus.READY,
        output_url=output_url,
        status_url=status_url,
        files=[f.to_dict() for f in files],
    )


def last_output_url(engine: Engine) -> str | None:
    """The results folder of the newest request OOI answered (any asset)."""
    return rows.last_output_url(engine)


def check_request(
    engine: Engine, client: OOIClient, req: RequestRecord, *, table: str | None = None
) -> RequestRecord:
    """Probe a ``pending`` request once: ready (files stored), failed, expired or pending."""
    if req.status != RequestStatus.PENDING:
        return req
    now = utcnow()
    if req.expires_at is not None and req.expires_at <= now:
        return _update(
            engine, req, status=RequestStatus.EXPIRED, error="expired before it was ready"
        )
    if not req.status_url:
        return _update(
            engine, req, status=RequestStatus.FAILED, error="OOI gave no status URL"
        )
    status = client.request_status(req.status_url)
    if status.state == RequestStatus.PENDING:
        return _update(engine, req, next_check_at=now)
    if status.state == RequestStatus.FAILED:
        return _update(
            engine, req, status=RequestStatus.FAILED, error=f"OOI: {status.text[:300]}"
        )
    try:
        listing = client.listing(req.output_url or req.status_url, table or req.asset_key)
    except OOINotFound as exc:
        return _update(engine, req, status=RequestStatus.EXPIRED, error=str(exc))
    files = [f.to_dict() for f in listing.data + listing.provenance]
    return _update(engine, req, status=RequestStatus.READY, files=files, error=None)


def wait_until_ready(
    engine: Engine,
    client: OOIClient,
    req: RequestRecord,
    max_wait: float,
    poll: float,
    *,
    table: str | None = None,
) -> RequestRecord:
    """Check until the request leaves ``pending`` or ``max_wait`` s pass (then pending)."""
    deadline = time.monotonic() + max(0.0, max_wait)
    while True:
        req = check_request(engine, client, req, table=table)
        remaining = deadline - time.monotonic()
        if req.status != RequestStatus.PENDING or remaining <= 0:
            return req
        time.sleep(min(max(poll, 0.01), remaining))


def mark_done(engine: Engine, req: RequestRecord) -> RequestRecord:
    return _update(engine, req, status=RequestStatus.DONE)


def mark_failed(engine: Engine, req: RequestRecord, error: str) -> RequestRecord:
    return _update(engine, req, status=RequestStatus.FAILED, error=error[:2000])


def request_files(req: RequestRecord, kind: str = "data") -> list[ThreddsFile]:
    """The stored files of a ready request (``data`` or ``provenance``), in harvest order."""
    return [ThreddsFile.from_dict(d) for d in req.files or [] if d.get("kind") == kind]


def _new_row(
    asset_key: str, begin: datetime, end: datetime, run_id: str, now: datetime
) -> dict[str, object]:
    """What every new request row records, the requests a run asks OOI for and the
    finished ones it adopts alike: the asset and range (naive UTC), the run, made ``now``."""
    return dict(
        asset_key=asset_key,
        range_begin=_naive(begin),
        range_end=_naive(end),
        created_at=now,
        updated_at=now,
        run_id=run_id,
    )


def _update(engine: Engine, req: RequestRecord, **values: object) -> RequestRecord:
    return rows.update_request(engine, req.id, **values)


def _naive(value: datetime | None) -> datetime | None:
    return to_naive_utc(value) if value is not None else None

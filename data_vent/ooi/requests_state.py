"""Async OOI requests as persistent state (``OOIRequest`` rows), not a process waiting.

A run starts a request or resumes the outstanding one for the same asset and range, checks
``status.txt`` a bounded time, and otherwise moves on (the asset is ``waiting``); the next run
picks the same request up again, so OOI is never asked twice for the same data.

Status: ``pending`` -> ``ready`` (files listed) -> ``done``; or ``failed`` / ``expired``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select

from data_vent.ooi.errors import OOINotFound
from data_vent.ooi.thredds import ThreddsFile
from data_vent.state.db import session_scope
from data_vent.state.models import OOIRequest
from data_vent.timeutil import to_naive_utc, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from data_vent.ooi.client import OOIClient

OUTSTANDING = ("pending", "ready")
DEFAULT_EXPIRY = timedelta(days=14)
"""OOI removes async results after a few weeks; an older request is asked again."""


def find_outstanding(
    engine: Engine, asset_key: str, begin: datetime | None, end: datetime | None
) -> OOIRequest | None:
    """The newest ``pending``/``ready`` request for this asset and exact range."""
    with session_scope(engine) as s:
        stmt = (
            select(OOIRequest)
            .where(OOIRequest.asset_key == asset_key)
            .where(col(OOIRequest.status).in_(OUTSTANDING))
            .where(OOIRequest.range_begin == _naive(begin))
            .where(OOIRequest.range_end == _naive(end))
            .order_by(col(OOIRequest.id).desc())
        )
        return s.exec(stmt).first()


def outstanding_requests(engine: Engine, asset_key: str | None = None) -> list[OOIRequest]:
    with session_scope(engine) as s:
        stmt = select(OOIRequest).where(col(OOIRequest.status).in_(OUTSTANDING))
        if asset_key is not None:
            stmt = stmt.where(OOIRequest.asset_key == asset_key)
        return list(s.exec(stmt.order_by(col(OOIRequest.id))))


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
) -> OOIRequest:
    """Reuse the outstanding request for (asset, begin, end) or ask OOI for a new one.

    ``table`` defaults to ``asset_key`` (a stream store's key is its table name). Raises
    ``OOINoData`` when OOI has nothing in the range, ``OOINotFound`` when discontinued.
    """
    now = utcnow()
    existing = find_outstanding(engine, asset_key, begin, end)
    if existing is not None:
        if existing.expires_at is None or existing.expires_at > now:
            return existing
        _update(engine, existing, status="expired")
    answer = client.request_data(
        table or asset_key, begin, end, include_annotations=include_annotations
    )
    req = OOIRequest(
        asset_key=asset_key,
        range_begin=_naive(begin),
        range_end=_naive(end),
        status="pending",
        request_uuid=answer.request_uuid,
        output_url=answer.output_url or (answer.all_urls[0] if answer.all_urls else None),
        status_url=answer.status_url,
        created_at=now,
        updated_at=now,
        next_check_at=now,
        expires_at=now + expiry,
        run_id=run_id,
    )
    with session_scope(engine) as s:
        s.add(req)
        s.flush()
        s.refresh(req)
    return req


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
) -> OOIRequest:
    """Record a finished request found in the account's folder as ``ready`` (no OOI call):
    the harvest then downloads its files as it would a request of its own."""
    now = utcnow()
    req = OOIRequest(
        asset_key=asset_key,
        range_begin=_naive(begin),
        range_end=_naive(end),
        status="ready",
        output_url=output_url,
        status_url=status_url,
        files=[f.to_dict() for f in files],
        created_at=now,
        updated_at=now,
        run_id=run_id,
    )
    with session_scope(engine) as s:
        s.add(req)
        s.flush()
        s.refresh(req)
    return req


def last_output_url(engine: Engine) -> str | None:
    """The results folder of the newest request OOI answered (any asset)."""
    with session_scope(engine) as s:
        stmt = (
            select(OOIRequest.output_url)
            .where(col(OOIRequest.output_url).is_not(None))
            .where(col(OOIRequest.request_uuid).is_not(None))
            .order_by(col(OOIRequest.id).desc())
            .limit(1)
        )
        return s.exec(stmt).first()


def check_request(
    engine: Engine, client: OOIClient, req: OOIRequest, *, table: str | None = None
) -> OOIRequest:
    """Probe a ``pending`` request once: ready (files stored), failed, expired or pending."""
    if req.status != "pending":
        return req
    now = utcnow()
    if req.expires_at is not None and req.expires_at <= now:
        return _update(engine, req, status="expired", error="expired before it was ready")
    if not req.status_url:
        return _update(engine, req, status="failed", error="OOI gave no status URL")
    status = client.request_status(req.status_url)
    if status.state == "pending":
        return _update(engine, req, next_check_at=now)
    if status.state == "failed":
        return _update(engine, req, status="failed", error=f"OOI: {status.text[:300]}")
    try:
        listing = client.listing(req.output_url or req.status_url, table or req.asset_key)
    except OOINotFound as exc:
        return _update(engine, req, status="expired", error=str(exc))
    files = [f.to_dict() for f in listing.data + listing.provenance]
    return _update(engine, req, status="ready", files=files, error=None)


def wait_until_ready(
    engine: Engine,
    client: OOIClient,
    req: OOIRequest,
    max_wait: float,
    poll: float,
    *,
    table: str | None = None,
) -> OOIRequest:
    """Check until the request leaves ``pending`` or ``max_wait`` s pass (then pending)."""
    deadline = time.monotonic() + max(0.0, max_wait)
    while True:
        req = check_request(engine, client, req, table=table)
        remaining = deadline - time.monotonic()
        if req.status != "pending" or remaining <= 0:
            return req
        time.sleep(min(max(poll, 0.01), remaining))


def mark_done(engine: Engine, req: OOIRequest) -> OOIRequest:
    return _update(engine, req, status="done")


def mark_failed(engine: Engine, req: OOIRequest, error: str) -> OOIRequest:
    return _update(engine, req, status="failed", error=error[:2000])


def request_files(req: OOIRequest, kind: str = "data") -> list[ThreddsFile]:
    """The stored files of a ready request (``data`` or ``provenance``), in harvest order."""
    return [ThreddsFile.from_dict(d) for d in req.files or [] if d.get("kind") == kind]


def _update(engine: Engine, req: OOIRequest, **values: object) -> OOIRequest:
    with session_scope(engine) as s:
        row = s.get(OOIRequest, req.id)
        if row is None:
            raise LookupError(f"OOI request row {req.id} vanished from the state DB")
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = utcnow()
        s.add(row)
        s.flush()
        s.refresh(row)
        return row


def _naive(value: datetime | None) -> datetime | None:
    return to_naive_utc(value) if value is not None else None

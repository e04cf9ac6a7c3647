"""The rows of asynchronous OOI requests (``ooi_request``); the request logic is ``ooi/``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from data_vent.core.snapshot import RequestRecord
from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import OPEN_REQUEST_STATES, RequestStatus
from data_vent.state.models import OOIRequest

R = OOIRequest.__table__


def request_record(row: Mapping[str, Any]) -> RequestRecord:
    """A ``ooi_request`` row (as a mapping) as a plain record."""
    return RequestRecord(**{c.name: row[c.name] for c in R.columns})


def find_open(
    engine: Engine, asset_key: str, begin: datetime | None, end: datetime | None
) -> RequestRecord | None:
    """The newest open (pending/ready) request for this asset and exact range."""
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(R)
                .where(R.c.asset_key == asset_key)
                .where(R.c.status.in_([str(s) for s in OPEN_REQUEST_STATES]))
                .where(R.c.range_begin == begin)
                .where(R.c.range_end == end)
                .order_by(R.c.id.desc())
            )
            .mappings()
            .first()
        )
    return request_record(row) if row is not None else None


def open_requests(engine: Engine, asset_key: str | None = None) -> list[RequestRecord]:
    """Open requests (of one asset, or all), oldest first."""
    stmt = select(R).where(R.c.status.in_([str(s) for s in OPEN_REQUEST_STATES]))
    if asset_key is not None:
        stmt = stmt.where(R.c.asset_key == asset_key)
    with engine.connect() as conn:
        return [request_record(r) for r in conn.execute(stmt.order_by(R.c.id)).mappings()]


def last_output_url(engine: Engine) -> str | None:
    """The results folder URL of the newest request OOI answered (any asset)."""
    stmt = (
        select(R.c.output_url)
        .where(R.c.output_url.is_not(None))
        .where(R.c.request_uuid.is_not(None))
        .order_by(R.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.execute(stmt).scalar()


def insert_request(engine: Engine, **values: Any) -> RequestRecord:
    """Store a new request; returns it as stored (with its id)."""
    now = utcnow()
    values.setdefault("created_at", now)
    values.setdefault("updated_at", now)
    values.setdefault("files", [])
    values["status"] = str(values.get("status", RequestStatus.PENDING))
    with engine.begin() as conn:
        rid = conn.execute(insert(R).values(**values)).inserted_primary_key[0]
        row = conn.execute(select(R).where(R.c.id == rid)).mappings().one()
    return request_record(row)


def update_request(engine: Engine, request_id: int, **values: Any) -> RequestRecord:
    """Change a stored request; returns it as stored now."""
    if "status" in values:
        values["status"] = str(values["status"])
    with engine.begin() as conn:
        conn.execute(
            update(R).where(R.c.id == request_id).values(**values, updated_at=utcnow())
        )
        row = conn.execute(select(R).where(R.c.id == request_id)).mappings().first()
    if row is None:
        raise LookupError(f"OOI request row {request_id} vanished from the state DB")
    return request_record(row)

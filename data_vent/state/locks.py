"""Cross-process serialization of the few transactions many runs start at once."""

from __future__ import annotations

import zlib

from sqlalchemy import text
from sqlalchemy.engine import Connection

ASSET_ROWS = "asset-rows"
"""The one lock of every transaction that writes many asset (or observe-error) rows at once:
the spec sync, recording observations, recording observe failures. Two such transactions in
different lock names updated the same rows in different orders and deadlocked."""


def serialize(conn: Connection, name: str) -> None:
    """Make this transaction the only one named ``name`` at a time, across processes.

    For read-then-write transactions that many runs start together (the schema migration,
    the spec sync, recording observations). SQLite needs nothing: every transaction there
    begins IMMEDIATE, so writers are serialized already. PostgreSQL takes a transaction-level
    advisory lock, released at commit or rollback.
    """
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"data-vent:{name}".encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

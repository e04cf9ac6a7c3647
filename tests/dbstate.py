"""Helpers of the read-only tests: what a state DB holds, read without writing, and a
SELECT-only PostgreSQL role."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url

from tests.processes import run_cli

ROOT = Path(__file__).parent.parent


def db_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the DB has (whatever its schema revision), read on a
    read-only engine."""
    from data_vent.state.db import make_read_engine

    engine = make_read_engine(url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with engine.connect() as conn:
            meta = MetaData()
            meta.reflect(conn)
            for table in meta.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                out[table.name] = [
                    tuple(r) for r in conn.execute(select(table).order_by(*order))
                ]
        return out
    finally:
        engine.dispose()


def sqlite_file(url: str) -> Path | None:
    from data_vent.settings import sqlite_path

    parsed = make_url(url)
    return Path(sqlite_path(parsed)) if parsed.get_backend_name() == "sqlite" else None


def fingerprint(url: str) -> tuple[str | None, dict[str, list[tuple[Any, ...]]]]:
    """(sha256 of the SQLite file, or None on PostgreSQL; every row)."""
    path = sqlite_file(url)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path else None
    return digest, db_rows(url)


def dv(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh process (on ``env`` if given, e.g. a laptop's
    bare environment)."""
    return run_cli(*args, columns=250, timeout=180, cwd=cwd, environ=env)


def one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


@contextmanager
def select_only_role(pg_url: str) -> Iterator[str]:
    """A PostgreSQL login role that may only SELECT in ``pg_url``'s database: its URL."""
    import psycopg

    url = make_url(pg_url)
    role = f"dv_ro_{uuid.uuid4().hex[:8]}"
    dsn = f"host={url.host} port={url.port or 5432} user=postgres dbname={url.database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CONNECT ON DATABASE "{url.database}" TO "{role}"')
        conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    try:
        yield url.set(username=role).render_as_string(hide_password=False)
    finally:
        from data_vent.state.db import dispose_all

        dispose_all()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(f'DROP OWNED BY "{role}"')
        admin = f"host={url.host} port={url.port or 5432} user=postgres dbname=test"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')

"""Engine and sessions for the state DB, on SQLite (default) or PostgreSQL.

SQLite loses read-modify-write updates under concurrent threads unless every transaction
takes the write lock up front; so: WAL, a 30 s busy timeout and ``BEGIN IMMEDIATE`` on every
transaction. PostgreSQL needs none of this (updates there are atomic statements or use
``SELECT ... FOR UPDATE``).

Read-only commands (``status``, ``why``, ``plan`` ...) get a *read engine* instead: the
SQLite file opened ``mode=ro`` with ``query_only``, PostgreSQL sessions with
``default_transaction_read_only``; it never migrates, so it works with SELECT-only
credentials and cannot write by accident.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

from data_vent.core.errors import BadInput, DataVentError, NoStateDB, StateDBUnavailable
from data_vent.settings import sqlite_path

log = logging.getLogger(__name__)

_ENGINES: dict[str, Engine] = {}
_READ_ENGINES: dict[str, Engine] = {}
_UPGRADED: set[str] = set()
_LOCK = threading.Lock()


CONNECT_ATTEMPTS = 5
"""Tries to open one PostgreSQL connection (the server restarting, or at its connection
limit while many workers start): backoff 0.5, 1, 2, 4 s between them."""


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except Exception as exc:
        raise BadInput(f"invalid database URL {url!r}: {exc}; set DATA_VENT_DB_URL") from None


def describe_url(url: str) -> str:
    """The DB for messages: a SQLite file's path, or the URL without its password."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return sqlite_path(parsed) or ":memory:"
    return parsed.render_as_string(hide_password=True)


def make_engine(
    url: str, connect_timeout: float = 10.0, pool_size: int = 10, max_overflow: int = 20
) -> Engine:
    """A new engine for ``url``; SQLite engines get WAL + busy timeout + BEGIN IMMEDIATE.

    PostgreSQL engines serve many workers: a connect timeout (a host that drops packets
    fails, never hangs), a bounded pool per process, connections checked before use
    (``pool_pre_ping``: one dropped by the server or a proxy is replaced, not handed out)
    and recycled after 30 min, and connecting retried with backoff.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        db = sqlite_path(parsed)
        if db and parsed.query.get("uri") not in ("true", "1"):
            try:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise BadInput(
                    f"cannot create the folder of the state DB {db}: {exc.strerror}; "
                    "fix DATA_VENT_HOME or DATA_VENT_DB_URL"
                ) from None
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _make_sqlite_safe(engine)
        return engine
    args = {"connect_timeout": max(1, round(connect_timeout))}
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=60,
        connect_args=args,
    )
    _retry_connect(engine)
    return engine


def _retry_connect(engine: Engine) -> None:
    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _conn_rec, cargs, cparams):  # pragma: no cover - driver hook
        delay = 0.5
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return dialect.dbapi.connect(*cargs, **cparams)
            except dialect.dbapi.OperationalError as exc:
                if attempt == CONNECT_ATTEMPTS - 1 or _not_transient(exc):
                    raise
                log.warning("state DB connection failed (%s); retrying", type(exc).__name__)
                time.sleep(delay)
                delay *= 2
        return None


def _not_transient(exc: BaseException) -> bool:
    """Bad input (no such database, refused login): retrying cannot help."""
    low = str(exc).lower()
    return "does not exist" in low or "password authentication failed" in low


def db_error(url: str, exc: BaseException) -> DataVentError:
    """One line for a database error: bad input (no such database, refused login, not a
    database file) or the server not answering; the URL shown without its password."""
    shown = make_url(url).render_as_string(hide_password=True)
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    low = text.lower()
    if "does not exist" in low and "database" in low:
        return BadInput(
            f"state DB {shown}: that database does not exist; create it or fix "
            "DATA_VENT_DB_URL"
        )
    if "password authentication failed" in low or ("role" in low and "does not exist" in low):
        return BadInput(
            f"state DB {shown} refused the login; fix the user in DATA_VENT_DB_URL"
        )
    if "file is not a database" in low or "unable to open database file" in low:
        return BadInput(
            f"state DB {shown}: not a usable SQLite file ({text[:80]}); fix DATA_VENT_DB_URL"
        )
    why = text[:160] or type(orig).__name__
    return StateDBUnavailable(
        f"state DB {shown} does not answer ({why}); check that it runs, or DATA_VENT_DB_URL"
    )


def _make_sqlite_safe(engine: Engine) -> None:
    _sqlite_hooks(
        engine,
        ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL", "foreign_keys=ON"),
        "BEGIN IMMEDIATE",
    )


def _sqlite_hooks(engine: Engine, pragmas: tuple[str, ...], begin: str) -> None:
    """Run ``pragmas`` on each new SQLite connection and open every transaction with
    ``begin``: pysqlite's own implicit BEGIN is turned off, so the lock a transaction takes
    is the one asked for."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in pragmas:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - driver hook
        conn.exec_driver_sql(begin)


def make_read_engine(url: str, connect_timeout: float = 10.0) -> Engine:
    """A new engine that only reads ``url``: nothing is created, migrated or written."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is None:
            raise BadInput("an in-memory SQLite state DB cannot be read by another command")
        if not Path(path).is_file():
            raise NoStateDB(
                f"no state DB at {path}: run `data-vent harvest` (or `data-vent db upgrade`) "
                "first, or set DATA_VENT_DB_URL to the harvest's database"
            )
        uri = f"file:{quote(str(Path(path).resolve()))}"

        def connect() -> sqlite3.Connection:
            try:
                conn = sqlite3.connect(
                    f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False
                )
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            except sqlite3.OperationalError:
                # A WAL file in a folder we may not write (no -shm to create): read it as
                # an immutable snapshot, which needs no lock file.
                conn = sqlite3.connect(
                    f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False
                )
            return conn

        engine = create_engine("sqlite://", creator=connect)
        # deferred BEGIN: one consistent read, no write lock
        _sqlite_hooks(engine, ("query_only=ON", "busy_timeout=30000"), "BEGIN")
        return engine
    options = "-c default_transaction_read_only=on"
    if parsed.query.get("options"):
        options = f"{parsed.query['options']} {options}"
    engine = create_engine(
        parsed.difference_update_query(["options"]),
        connect_args={"options": options, "connect_timeout": max(1, round(connect_timeout))},
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
    )
    _retry_connect(engine)
    return engine


def read_engine(url: str, connect_timeout: float = 10.0) -> Engine:
    """The process-wide read engine for ``url``, once its schema is known to be current.

    Raises ``NoStateDB`` when there is no data-vent schema yet, ``BadInput`` (exit 2) when
    the schema is older (or newer) than this data-vent's: reading it would give wrong
    answers, and a reader must not migrate.
    """
    with _LOCK:
        engine = _READ_ENGINES.get(url)
    if engine is not None:
        return engine
    engine = make_read_engine(url, connect_timeout)
    try:
        from data_vent.state.migrate import require_current

        require_current(engine, describe_url(url))
    except DBAPIError as exc:
        engine.dispose()
        raise db_error(url, exc) from None
    except BaseException:
        engine.dispose()
        raise
    with _LOCK:
        return _READ_ENGINES.setdefault(url, engine)


def get_engine(
    url: str,
    upgrade: bool = True,
    connect_timeout: float = 10.0,
    pool_size: int = 10,
    max_overflow: int = 20,
) -> Engine:
    """The process-wide engine for ``url``, upgraded to the latest schema on first use
    (the pool settings apply when this process first opens ``url``)."""
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url, connect_timeout, pool_size, max_overflow)
    if upgrade:
        try:
            init_db(engine)
        except DBAPIError as exc:
            raise db_error(url, exc) from None
    return engine


def init_db(engine: Engine) -> None:
    """Bring the schema to the latest migration (once per engine per process)."""
    key = str(engine.url)
    if key in _UPGRADED:
        return
    from data_vent.state.migrate import upgrade

    upgrade(engine)
    _UPGRADED.add(key)


def dispose_all() -> None:
    with _LOCK:
        for engine in (*_ENGINES.values(), *_READ_ENGINES.values()):
            engine.dispose()
        _ENGINES.clear()
        _READ_ENGINES.clear()
        _UPGRADED.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

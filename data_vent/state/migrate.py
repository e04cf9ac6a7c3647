"""Alembic migrations, run programmatically (``data-vent db upgrade``, or on first use)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from data_vent.core.errors import BadInput, NoStateDB
from data_vent.state.locks import serialize

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade ``engine``'s DB; returns (before, after) revisions."""
    before = current_revision(engine)
    if revision == "head" and before == head_revision():
        return before, before
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        serialize(conn, "migrate")  # runs started together on an empty DB: one migrates
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(engine)


def require_current(engine: Engine, where: str) -> str:
    """The DB's revision, if it is this data-vent's head; else one line saying what to do.

    Reads only (``alembic_version``), so it works on a read-only connection; a database
    error propagates (``state.db.read_engine`` names it).
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return current
    if current is None:
        raise NoStateDB(
            f"the state DB {where} has no data-vent schema: run `data-vent db upgrade` "
            "(or a harvest), or set DATA_VENT_DB_URL to the harvest's database"
        )
    script = ScriptDirectory.from_config(alembic_config())
    known = {s.revision for s in script.walk_revisions()}
    if current in known:
        raise BadInput(
            f"the state DB {where} has an older schema (revision {current}, this data-vent "
            f"reads {head}): run `data-vent db upgrade`"
        )
    raise BadInput(
        f"the state DB {where} has schema revision {current}, unknown to this data-vent "
        f"(it reads {head}): upgrade data-vent"
    )

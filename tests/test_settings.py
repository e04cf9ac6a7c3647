"""The settings a user reads about are the settings the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_vent.settings import SettingsError, check_env

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_settings() -> list[str]:
    """Every ``DATA_VENT_*`` name in the README's Settings table rows."""
    rows = [
        line for line in README.read_text().splitlines() if line.startswith("| `DATA_VENT_")
    ]
    return sorted({re.match(r"\| `(DATA_VENT_[A-Z0-9_]+)`", r).group(1) for r in rows})


def test_every_documented_setting_is_accepted() -> None:
    names = readme_settings()
    assert "DATA_VENT_WORKER_NAME" in names and len(names) > 20
    for name in names:
        check_env({name: "x"})  # raises SettingsError on an unknown name


def test_an_unknown_setting_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(SettingsError, match="DATA_VENT_WORKER_NAM.*DATA_VENT_WORKER_NAME"):
        check_env({"DATA_VENT_WORKER_NAM": "wA"})


def test_read_only_commands_connect_with_the_db_connect_timeout(pg_url: str, tmp_path: Path):
    """A hung PostgreSQL took 58 s to report to `status`: its read engine ignored
    DATA_VENT_DB_CONNECT_TIMEOUT and used 10 s per attempt. libpq reports the timeout used."""
    from data_vent.demo import DEMO_CONFIGS
    from data_vent.run.workspace import Workspace
    from data_vent.settings import Settings
    from data_vent.state.db import dispose_all, get_engine

    get_engine(pg_url)  # a current schema, as a harvest leaves it
    dispose_all()
    settings = Settings(
        home=tmp_path / "home", db_url=pg_url, config_dir=DEMO_CONFIGS, db_connect_timeout=3
    )
    try:
        for load in (Workspace.from_state_db, lambda s: Workspace.load(s, read_only=True)):
            ws = load(settings)
            assert ws.read_only and ws.engine is not None
            conn = ws.engine.raw_connection()
            try:
                assert conn.driver_connection.info.get_parameters()["connect_timeout"] == "3"
            finally:
                conn.close()
            dispose_all()
    finally:
        dispose_all()

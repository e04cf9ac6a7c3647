"""Shared fixtures: an isolated DATA_VENT_HOME per test, state DBs on SQLite and PostgreSQL,
one real local Prefect server per test session, and a one-stream harvest config."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Fixture plugins the test modules import names from before pytest loads them: registered
# here, before any of them is imported, their asserts are rewritten all the same.
pytest.register_assert_rewrite("tests.conftest_ooi", "tests.store_fixtures")

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

DATA = Path(__file__).parent / "data"
CONFIGS = DATA / "configs"
PG_ADMIN_URL = os.environ.get(
    "DATA_VENT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


SERVER_FIXTURES = frozenset({"prefect_server", "sim", "client", "s3_server", "s3_bucket"})
"""Fixtures that start a server: a test using one is in the slow lane by itself."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lanes: ``-m "not slow"`` leaves out every test that starts a server or subprocess
    (marked by hand, or through the fixtures above), and runs in well under a minute."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own home, DB and storage; no outside DATA_VENT_* leaks in."""
    for key in list(os.environ):
        if key.startswith("DATA_VENT_") and key != "DATA_VENT_TEST_PG_URL":
            monkeypatch.delenv(key)
    for key in ("OOI_USERNAME", "OOI_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DATA_VENT_HOME", str(home))
    yield home
    from data_vent.state.db import dispose_all

    dispose_all()


@pytest.fixture
def stream_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """``stream_config(table)``: the harvest config (upstream format) of one OOI stream in
    ``tmp_path/configs``, made this test's config folder; returns the folder."""
    from data_vent.ooi.names import parse_table

    folder = tmp_path / "configs"

    def write(table: str) -> Path:
        n = parse_table(table)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{table}.yaml").write_text(
            f"instrument: {n.site}-{n.node}-{n.sensor}\n"
            f"stream: {{method: {n.method}, name: {n.stream}}}\n"
        )
        monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(folder))
        return folder

    return write


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"no PostgreSQL on 127.0.0.1:5432 ({type(exc).__name__}: {exc})"


_PG_SKIP = _pg_available()
if _PG_SKIP:  # say it where CI output shows it
    print(f"\n[data-vent tests] PostgreSQL tests will be skipped: {_PG_SKIP}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Skipped where no server answers, except in CI (CI=true), where that is a failure: the
    shared-state tests must not go green by skipping their PostgreSQL half."""
    if _PG_SKIP:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {_PG_SKIP}")
        pytest.skip(_PG_SKIP)
    import psycopg

    name = f"dv_{uuid.uuid4().hex[:10]}"
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    from data_vent.state.db import dispose_all

    dispose_all()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state DB URL, once on SQLite and once on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def prefect_db_template(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """A migrated Prefect database, made once per test run and shared by the xdist workers
    (their base temp folders share a parent): see ``tests.processes.migrated_prefect_db``."""
    from tests.processes import migrated_prefect_db

    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker: share with the others
        root = root.parent
    return migrated_prefect_db(root)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real local Prefect server (ephemeral API) for the whole test session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield

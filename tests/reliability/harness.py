"""Running the real ``data-vent`` entry point and checking what it leaves behind.

``run_main`` calls ``data_vent.cli.main`` in this process (argv and environment set, exit
code from ``SystemExit``), with stdout/stderr captured at the file-descriptor level
(pytest's ``capfd``), so that a C library printing to fd 2 counts too. ``run_process``
starts ``python -m data_vent`` for what needs its own process (a Prefect flow run).
``state_of`` is everything a failed command must leave untouched: every row of the state
DB and every file of the stores.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import run_cli

ROOT = Path(__file__).resolve().parents[2]
CLEARED = ("DATA_VENT_", "OOI_USERNAME", "OOI_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]

    def one_error_line(self) -> str:
        """The single line on stderr (asserted to be one, an ``error:``, no traceback)."""
        assert "Traceback" not in self.err, self.err
        lines = self.err_lines
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{self.err}"
        assert lines[0].startswith("error: "), lines[0]
        return lines[0]


def run_main(
    args: list[str],
    env: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Result:
    """The console entry point in this process, under exactly ``env`` (DATA_VENT_*, OOI_*)."""
    from data_vent.cli import main
    from data_vent.state.db import dispose_all

    with monkeypatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(CLEARED) and key != "DATA_VENT_TEST_PG_URL":
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setattr(sys, "argv", ["data-vent", *args])
        capfd.readouterr()
        try:
            main()
            code: Any = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capfd.readouterr()
        dispose_all()
    return Result(code if isinstance(code, int) else 1, out, err)


def run_process(args: list[str], env: dict[str, str], timeout: float = 180) -> Result:
    """``python -m data_vent`` in a fresh process, on the session's Prefect API if any."""
    from prefect.settings import PREFECT_API_URL

    inherited = (*CLEARED, "PREFECT_LOGGING", "_DATA_VENT")  # the child's CLI sets its own
    base = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    api = PREFECT_API_URL.value()
    res = run_cli(
        *args,
        timeout=timeout,
        environ={**base, **env, "PYTHONPATH": str(ROOT)},
        **({"PREFECT_API_URL": api} if api else {}),
    )
    return Result(res.returncode, res.stdout, res.stderr)


def db_rows(db: Path, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every table of a SQLite state DB, sorted (read-only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0] not in skip
        ]
        return {
            t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables
        }
    finally:
        con.close()


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime_ns)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def state_of(home: Path, skip_tables: tuple[str, ...] = ()) -> dict[str, Any]:
    """The state DB's rows and the stores' files under ``home``."""
    return {"db": db_rows(home / "state.db", skip_tables), "stores": files_of(home / "stores")}

"""Child processes the tests start: the ``data-vent`` CLI, a real ``prefect server`` on
loopback, commands run in the repository root; one place for how each is started, waited for
and stopped. Standard library and httpx only: ``benchmarks/harvest_day.py`` imports it too."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_cli(
    *args: str,
    columns: int = 200,
    timeout: float = 120,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **env: str | None,
) -> subprocess.CompletedProcess:
    """The real console entry point (``python -m data_vent ARGS``) in a fresh process, on
    ``environ`` (default: this process's, with the checkout importable) and a terminal
    ``columns`` wide, whatever pytest-xdist set; ``env`` adds variables (None removes one)."""
    base = environ if environ is not None else {**os.environ, "PYTHONPATH": str(ROOT)}
    full = {**base, "COLUMNS": str(columns)}
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return subprocess.run(
        [sys.executable, "-m", "data_vent", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=timeout,
    )


def run_in_repo(
    args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """``args`` in the repository root, output captured as text; no stdin, so that a
    command that prompts fails instead of hanging."""
    return subprocess.run(
        args,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_exe() -> str:
    """This venv's ``prefect`` (the one whose server and client versions match)."""
    exe = BIN / "prefect"
    return str(exe) if exe.exists() else (shutil.which("prefect") or "prefect")


def prefect_env(home: Path, *, drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This process's environment for a Prefect server or CLI of its own: none of our
    ``PREFECT_*`` settings (nor variables starting with ``drop``), its home at ``home``, no
    analytics, no prompts, on loopback; ``extra`` adds or overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", *drop))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_CLI_PROMPT="false",
        PREFECT_SERVER_API_HOST="127.0.0.1",
    )
    env.update(extra)
    return env


def migrated_prefect_db(folder: Path) -> Path:
    """A Prefect database with every migration applied, made once in ``folder`` (a lock file
    lets parallel test workers share it). A new Prefect home seeded with a copy starts its
    server in ~10 s instead of ~20 s: Prefect migrates a new database on first start."""
    db = folder / "prefect-template" / "prefect.db"
    with (folder / "prefect-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.exists():
            work = folder / "prefect-template.tmp"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            res = subprocess.run(
                [prefect_exe(), "--no-prompt", "server", "database", "upgrade", "-y"],
                env=prefect_env(work),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if res.returncode != 0:
                raise RuntimeError(f"prefect server database upgrade failed: {res.stderr}")
            work.rename(db.parent)
    return db


def seeded_prefect_home(home: Path, template: Path) -> Path:
    """``home``, a new Prefect home whose database is a copy of the migrated ``template``."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, home / "prefect.db")
    return home


def start_prefect_server(port: int, env: dict[str, str], log: BinaryIO) -> subprocess.Popen:
    """``prefect server start`` on 127.0.0.1:``port``, the API only, in a session of its own
    so that :func:`stop` ends its whole process group."""
    return subprocess.Popen(
        [prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        + ["--no-ui", "--no-services", "--analytics-off"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def healthy(api: str) -> bool:
    """Whether the Prefect API at ``api`` answers its health check."""
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(api: str, proc: subprocess.Popen, timeout: float, every: float) -> bool:
    """Poll the server ``proc`` serves at ``api`` until it is healthy (True), or it exits or
    ``timeout`` s pass (False): a server that died is not waited for to the end."""
    deadline = time.monotonic() + timeout
    while not healthy(api):
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group of ``proc`` (started in its own session), SIGKILL after
    ``grace`` s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass

"""Kill the writer (SIGKILL, a subprocess) at random instants; every store must repair.

The fault is a random delay before the kill; the assertions go through what a reader sees
(before repair), ``repair()`` and a reopen, then a resumed write must give exactly the rows
of an uninterrupted run.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from data_vent.store import StreamStore
from data_vent.store.commit import JOURNAL, read_journal
from data_vent.store.location import Location

try:
    from tests import store_fixtures as F
except ImportError:
    import store_fixtures as F

pytest_plugins = [F.__name__]

TARGET = 1 << 15  # small chunks (512 rows): many objects, many instants to be killed at
CHILD = f"""
import sys, time
from data_vent.store import StreamStore
url, mode, *paths = sys.argv[1:]
store = StreamStore(url, chunk_target_bytes={TARGET})
print("ready", flush=True)
t0 = time.perf_counter()
if mode == "append":
    store.append_files(paths)
else:
    store.rebuild_from_files(paths)
print("done", time.perf_counter() - t0, flush=True)
"""


def _child(url: str, mode: str, paths: list[Path]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, mode, *map(str, paths)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_line(proc: subprocess.Popen, prefix: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line
            if not line and proc.poll() is not None:
                break
    raise AssertionError(f"child did not print {prefix!r}")


def _load(url: str) -> xr.Dataset:
    ds = xr.open_zarr(url, consolidated=True, mask_and_scale=False, decode_times=False)
    return ds.load().drop_attrs()


def _same(ds: xr.Dataset, ref: xr.Dataset) -> bool:
    try:
        xr.testing.assert_identical(ds, ref)
        return True
    except AssertionError:
        return False


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-refs")
    old = root / "old"
    StreamStore(str(old), chunk_target_bytes=TARGET).append_files([F.GLIDER_CTD[0]])
    new = root / "new"
    shutil.copytree(old, new)
    proc = _child(str(new), "append", [F.GLIDER_CTD[1]])
    _wait_line(proc, "ready")
    duration = float(_wait_line(proc, "done").split()[1])
    proc.wait(timeout=60)
    return {
        "old": old,
        "old_ds": _load(str(old)),
        "new_ds": _load(str(new)),
        "duration": duration,
    }


# A regression guard over fixed seeds; the statistics are benchmarks/kill_trials.py's
# (100 kills of four writers a run).
TRIALS = [("append", i) for i in range(8)] + [("rebuild", i) for i in range(5)]


@pytest.mark.parametrize(("mode", "seed"), TRIALS)
@pytest.mark.slow  # writer subprocesses
def test_kill_at_random_instant(refs, tmp_path, mode, seed):
    rng = random.Random(1000 * (mode == "rebuild") + seed)
    url = str(tmp_path / "store")
    shutil.copytree(refs["old"], url)
    paths = [F.GLIDER_CTD[1]] if mode == "append" else [F.GLIDER_CTD[0], F.GLIDER_CTD[1]]
    proc = _child(url, mode, paths)
    _wait_line(proc, "ready")
    span = refs["duration"] * (1.3 if mode == "append" else 2.5)
    time.sleep(rng.uniform(0, span))  # the fault, not synchronisation
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    old, new = refs["old_ds"], refs["new_ds"]
    entry = read_journal(Location(url))
    # a plain consumer sees the old or the new version, never a mix
    try:
        seen = _load(url)
    except Exception:
        seen = None
        assert entry is not None and entry.get("state") == "publishing", "store unreadable"
    if seen is not None:
        assert _same(seen, old) or _same(seen, new)

    store = StreamStore(url, chunk_target_bytes=TARGET)
    store.repair()
    assert not Path(url, JOURNAL).exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]
    after = _load(url)
    assert _same(after, old) or _same(after, new)
    t = after["time"].values
    assert np.all(np.diff(t) > 0)
    # no chunk left beyond the committed length
    rows = after.sizes["time"]
    for arr in Path(url).iterdir():
        if arr.is_dir():
            for chunk in arr.iterdir():
                if not chunk.name.startswith("."):
                    first = int(chunk.name.split(".")[0])
                    assert first * _chunk_len(arr) < max(rows, 1) or not _timed(arr)

    # resuming gives exactly the rows of an uninterrupted run
    out = store.append_files(paths) if mode == "append" else store.rebuild_from_files(paths)
    assert out.rows_total == new.sizes["time"]
    assert _same(_load(url), new)


def _chunk_len(arr: Path) -> int:
    import json

    return json.loads((arr / ".zarray").read_text())["chunks"][0]


def _timed(arr: Path) -> bool:
    import json

    return json.loads((arr / ".zattrs").read_text())["_ARRAY_DIMENSIONS"][:1] == ["time"]

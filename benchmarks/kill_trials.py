"""kill -9 at random instants of every way a store is written, then resume; count the damage.

Run: ``python benchmarks/kill_trials.py --trials 100`` (about 10 minutes on 2 idle cores).

Four kinds of trial, in turn, each with real new data:

* ``ingest``  -- ``data-vent ingest KEY part_k.nc`` (the CLI, through the write path: lease,
  store append, the attempt recorded), the next part of an OOI-shaped stream each time;
* ``append``  -- the store writer alone (``StreamStore.append_files``) with the next part;
* ``rebuild`` -- ``data-vent ingest KEY --rebuild`` every part so far plus a new one;
* ``harvest`` -- a daily harvest's steps (sync, repair, observe, plan, materialize: the
  flow's body without Prefect) against the OOI simulator, whose clock moves on each time.

Each trial starts the writer in a child process, waits for it to be ready (imports done),
kills it (SIGKILL) after a random delay drawn over the length of an uninterrupted run,
records what a plain reader sees at that moment, then *resumes*: runs the same operation
again to completion in this process (ingest and rebuild through the same write path, which
waits for the dead writer's lease to expire and repairs the store under it; the harvest
repairs before it plans), and checks every store against the data it must hold:

* ``torn``: time-dimensioned arrays of different lengths, or ``time`` not increasing;
* ``duplicated``: a time value stored twice;
* ``lost``: an expected row missing (the killed write *and* the resume both ran);
* ``unreadable``: the store does not open with ``xarray.open_zarr(consolidated=True)``;
* ``db_mismatch``: the state DB's last success disagrees with the store's rows.

All five must be 0. Kills are aimed in turn anywhere in the operation, inside a store write
(after the first journal appears, within one write's length) and, for rebuilds, inside the
publish window. ``killed mid-write`` counts kills that left a store journal (the kill
interrupted a store write, not the imports, the OOI request or the bookkeeping), ``killed
mid-publish`` those in a rebuild's publish window; ``unreadable at kill`` (before the resume)
counts stores a reader could not open right after the kill: a rebuild killed while
publishing gives readers an error instead of a mix, by design, repaired by the next run (the
resume) before it plans.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from data_vent.core.timeutil import to_ntp_seconds, utcnow  # noqa: E402
from data_vent.settings import Settings  # noqa: E402
from data_vent.simulator.synthetic import FileSpec, write_stream_file  # noqa: E402
from data_vent.store.commit import JOURNAL  # noqa: E402

KEY = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
HARVESTED = (
    "CE02SHBP-LJ01D-06-CTDBPN106-streamed-ctdbp_no_sample",
    "RS01SBPS-PC01A-4A-DOSTAD103-streamed-do_stable_sample",
    "RS03AXPS-PC03A-4B-PHSENA302-streamed-phsen_data_record",
)
KINDS = ("ingest", "append", "rebuild", "harvest")
DAMAGE = ("torn", "duplicated", "lost", "unreadable", "db_mismatch")
PART_ROWS = 4000
CHUNK_BYTES = 1 << 14  # small chunks: many objects, many instants to be killed at
JOURNAL_POLL = 0.002
LEASE = {"DATA_VENT_LEASE_SECONDS": "2", "DATA_VENT_LEASE_RENEW_SECONDS": "0.5"}

# The child: imports, says "ready", then does one operation (argv: kind, args...).
CHILD = f"""
import sys, time
kind, *args = sys.argv[1:]
if kind == "cli":
    from data_vent.cli import main
elif kind == "append":
    from data_vent.store import StreamStore
else:
    sys.path.insert(0, {str(ROOT)!r} + "/benchmarks")
    from kill_trials import harvest_once
print("ready", flush=True)
t0 = time.perf_counter()
if kind == "cli":
    sys.argv = ["data-vent", *args]
    try:
        main()
    except SystemExit as exc:
        if exc.code:
            raise
elif kind == "append":
    StreamStore(args[0], chunk_target_bytes={CHUNK_BYTES}).append_files(args[1:])
else:
    harvest_once()
print("done", time.perf_counter() - t0, flush=True)
"""


def harvest_once(settings: Settings | None = None) -> dict:
    """The daily flow's steps, without Prefect: sync, repair, observe, plan, materialize."""
    from data_vent.run.runner import new_run_id
    from data_vent.run.workspace import Workspace

    ws = Workspace.load(settings or Settings())
    run_id = new_run_id()
    ws.sync()
    ws.repair(run_id)
    ws.observe()
    return ws.execute(ws.plan(), run_id)


def phase(urls: list[str]) -> str | None:
    """What the stores at ``urls`` are in: a rebuild's ``publish``, a ``write``, or None."""
    out = None
    for url in urls:
        try:
            text = Path(url, JOURNAL).read_text()
        except (FileNotFoundError, NotADirectoryError):
            continue
        if '"publishing"' in text:
            return "publish"
        out = "write"
    return out


def mean_segment(samples: list[tuple[float, str | None]], states: set[str]) -> float:
    """Mean length of the runs of consecutive samples whose state is in ``states``."""
    spans, start, last = [], None, None
    for t, state in samples:
        if state in states:
            start = t if start is None else start
            last = t
        elif start is not None:
            spans.append(last - start + JOURNAL_POLL)
            start = None
    if start is not None:
        spans.append(last - start + JOURNAL_POLL)
    return sum(spans) / len(spans) if spans else 0.0


class Bench:
    """Two homes (state DB + stores): one for the ingested stream, one for the harvest."""

    def __init__(self, work: Path, rng: random.Random):
        self.work, self.rng = work, rng
        self.parts_dir = work / "parts"
        self.parts_dir.mkdir(parents=True)
        base = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATA_VENT_CHUNK_TARGET_BYTES": str(CHUNK_BYTES),
            "DATA_VENT_OOI_POLL_INTERVAL": "0.05",
            "DATA_VENT_LEASE_WAIT": "30",
            **LEASE,
        }
        self.env: dict[str, dict[str, str]] = {}
        for name in ("ingest", "harvest"):
            (work / name / "configs").mkdir(parents=True)
            self.env[name] = {
                **base,
                "DATA_VENT_HOME": str(work / name / "home"),
                "DATA_VENT_CONFIG_DIR": str(work / name / "configs"),
            }
        self.t0 = to_ntp_seconds(datetime(2024, 1, 1))
        self.parts: list[Path] = []
        self.raw_parts: list[Path] = []
        self.durations: dict[str, float] = {}
        self.windows: dict[str, dict[str, float]] = {}
        self.sim = None

    def home(self, name: str) -> Path:
        return Path(self.env[name]["DATA_VENT_HOME"])

    def settings(self, name: str) -> Settings:
        env = self.env[name]
        return Settings(
            **{
                k.removeprefix("DATA_VENT_").lower(): v
                for k, v in env.items()
                if k.startswith("DATA_VENT_")
            }
        )

    # ------------------------------------------------------------------ data
    def new_part(self, folder: str, index: int) -> Path:
        t = self.t0 + (index * PART_ROWS + np.arange(PART_ROWS, dtype="f8")) * 1.0
        path = self.parts_dir / f"{folder}-{index:04d}.nc"
        return write_stream_file(path, FileSpec(KEY, t, 1))

    def setup(self) -> None:
        from data_vent.demo import DEMO_CONFIGS
        from data_vent.simulator import Simulator

        harvest_configs = Path(self.env["harvest"]["DATA_VENT_CONFIG_DIR"])
        for table in HARVESTED:
            shutil.copy(DEMO_CONFIGS / f"{table}.yaml", harvest_configs)
        Path(self.env["ingest"]["DATA_VENT_CONFIG_DIR"], f"{KEY}.yaml").write_text(
            "instrument: CE04OSPS-SF01B-2A-CTDPFA107\n"
            "stream: {method: streamed, name: ctdpf_sbe43_sample}\n"
        )
        start = (utcnow() - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        self.sim = Simulator(
            harvest_configs, ready_delay=0.0, start=start, workdir=self.work / "sim"
        )
        self.env["harvest"]["DATA_VENT_OOI_URL"] = self.sim.start()
        # a killed harvester resets its connections: not the simulator's error to print
        self.sim._server.handle_error = lambda request, address: None

    # ------------------------------------------------------------------ children
    def child(self, kind: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, kind, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env["harvest" if kind == "harvest" else "ingest"],
        )

    @staticmethod
    def wait_line(proc: subprocess.Popen, prefix: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line
            if not line and proc.poll() is not None:
                raise RuntimeError(f"child exited {proc.returncode} before {prefix!r}")
        raise RuntimeError(f"child did not print {prefix!r}")

    def op_args(self, kind: str, index: int) -> tuple[str, list[str]]:
        """The child's command for trial ``index`` of ``kind`` (its new data made here)."""
        if kind == "ingest":
            self.parts.append(self.new_part("ingest", len(self.parts)))
            return "cli", ["ingest", KEY, str(self.parts[-1])]
        if kind == "append":
            raw = self.work / "raw"
            self.raw_parts.append(self.new_part("raw", len(self.raw_parts)))
            return "append", [str(raw), str(self.raw_parts[-1])]
        if kind == "rebuild":
            self.parts.append(self.new_part("ingest", len(self.parts)))
            return "cli", ["ingest", KEY, "--rebuild", *map(str, self.parts)]
        self.sim.advance(24 * 3600)
        return "harvest", []

    def resume(self, kind: str, args: list[str]) -> float:
        """The same operation again, to completion, in this process (no kill); seconds."""
        from data_vent.run.ingest import ingest
        from data_vent.run.workspace import Workspace
        from data_vent.store import StreamStore

        t0 = time.perf_counter()
        if kind == "cli":
            files = [Path(a) for a in args[2:] if a != "--rebuild"]
            ws = Workspace.load(self.settings("ingest"))
            ingest(ws, KEY, files, rebuild="--rebuild" in args)
        elif kind == "append":
            StreamStore(args[0], chunk_target_bytes=CHUNK_BYTES).append_files(args[1:])
        else:
            harvest_once(self.settings("harvest"))
        return time.perf_counter() - t0

    def calibrate(self, kind: str) -> None:
        """An uninterrupted run of ``kind`` after a first one (which creates the stores):
        its duration once the child is ready, and how long one store write lasts (a journal
        present) and one rebuild publish (a journal in state ``publishing``), on average."""
        for _ in range(2):
            child_kind, args = self.op_args(kind, 0)
            urls = list(self.expected(kind))
            proc = self.child(child_kind, *args)
            self.wait_line(proc, "ready")
            samples: list[tuple[float, str | None]] = []
            stop = threading.Event()

            def watch(urls=urls, samples=samples, stop=stop) -> None:
                while not stop.is_set():
                    samples.append((time.monotonic(), phase(urls)))
                    time.sleep(JOURNAL_POLL)

            watcher = threading.Thread(target=watch)
            watcher.start()
            seconds = float(self.wait_line(proc, "done").split()[1])
            stop.set()
            watcher.join()
            proc.wait(timeout=60)
        self.durations[kind] = seconds
        self.windows[kind] = {
            "write": mean_segment(samples, {"write", "publish"}),
            "publish": mean_segment(samples, {"publish"}),
        }

    def aim(self, kind: str, index: int) -> str:
        """Where trial ``index`` kills: anywhere in the operation, inside a store write, or
        (rebuilds) inside the publish window, in turn."""
        modes = (
            ["anywhere", "write", "publish"] if kind == "rebuild" else ["anywhere", "write"]
        )
        mode = modes[(index // len(KINDS)) % len(modes)]
        return mode if mode == "anywhere" or self.windows[kind][mode] else "anywhere"

    def kill_delay(self, kind: str, mode: str, proc: subprocess.Popen) -> float:
        """Seconds from now to the kill; for an aimed kill, first wait for its phase."""
        if mode == "anywhere":
            return self.rng.uniform(0, self.durations[kind] * 1.2)
        urls = list(self.expected(kind))
        wanted = {"write", "publish"} if mode == "write" else {"publish"}
        deadline = time.monotonic() + self.durations[kind] * 3
        while time.monotonic() < deadline and proc.poll() is None:
            if phase(urls) in wanted:
                break
            time.sleep(JOURNAL_POLL)
        return self.rng.uniform(0, self.windows[kind][mode] * 1.2)

    # ------------------------------------------------------------------ checks
    def expected(self, kind: str) -> dict[str, np.ndarray]:
        if kind == "append":
            return {str(self.work / "raw"): self.times_of(self.raw_parts)}
        if kind in ("ingest", "rebuild"):
            return {str(self.home("ingest") / "stores" / KEY): self.times_of(self.parts)}
        out = {}
        for table in HARVESTED:
            s = self.sim.streams[table]
            out[str(self.home("harvest") / "stores" / table)] = s.times(s.t0, self.sim.now_ntp)
        return out

    def times_of(self, parts: list[Path]) -> np.ndarray:
        idx = [int(p.stem.split("-")[1]) for p in parts]
        return np.concatenate(
            [self.t0 + (i * PART_ROWS + np.arange(PART_ROWS, dtype="f8")) for i in idx]
        )

    @staticmethod
    def readable(url: str) -> bool:
        try:
            xr.open_zarr(url, consolidated=True, decode_times=False).close()
            return True
        except Exception:
            return False

    def check(self, url: str, want: np.ndarray, db: str | None) -> Counter[str]:
        bad: Counter[str] = Counter()
        if not self.readable(url):
            bad["unreadable"] += 1
            return bad
        group = zarr.open_consolidated(url, mode="r", zarr_format=2)
        t = np.asarray(group["time"][...])
        for _name, arr in group.arrays():
            dims = arr.attrs.get("_ARRAY_DIMENSIONS", [])
            if dims[:1] == ["time"] and arr.shape[0] != t.size:
                bad["torn"] += 1
                break
        else:
            if t.size > 1 and np.any(np.diff(t) < 0):
                bad["torn"] += 1
        if np.unique(t).size < t.size:
            bad["duplicated"] += 1
        if np.setdiff1d(np.round(want, 3), np.round(t, 3)).size:
            bad["lost"] += 1
        if db is not None and self.db_rows(db, Path(url).name) != t.size:
            bad["db_mismatch"] += 1
        return bad

    def db_rows(self, home: str, key: str) -> int | None:
        from data_vent.state.db import get_engine
        from data_vent.state.materializations import previous_state

        prev = previous_state(get_engine(self.settings(home).resolved_db_url()), key)
        return prev.rows if prev else None

    # ------------------------------------------------------------------ one trial
    def trial(self, kind: str, index: int) -> tuple[Counter[str], bool]:
        child_kind, args = self.op_args(kind, index)
        proc = self.child(child_kind, *args)
        self.wait_line(proc, "ready")
        time.sleep(self.kill_delay(kind, self.aim(kind, index), proc))  # the fault
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed = proc.returncode == -signal.SIGKILL
        want = self.expected(kind)
        at_kill = all(self.readable(u) for u in want if Path(u).exists())
        at = phase(list(want))
        seconds = self.resume(child_kind, args)
        if kind == "rebuild":  # it grows with every part: kill within the next one's span
            grown = seconds / self.durations[kind]
            if grown > 1:
                self.durations[kind] = seconds
                self.windows[kind] = {k: v * grown for k, v in self.windows[kind].items()}
        db = {"append": None, "harvest": "harvest"}.get(kind, "ingest")
        bad: Counter[str] = Counter()
        for url, times in want.items():
            bad += self.check(url, times, db)
        if killed:
            bad["killed"] += 1
            bad["killed mid-write"] += at is not None
            bad["killed mid-publish"] += at == "publish"
        return bad, at_kill


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=100, help="kill trials in all (>= 4)")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = ap.parse_args()
    rng = random.Random(opts.seed)
    work = Path(tempfile.mkdtemp(prefix="dv-kill-"))
    bench = Bench(work, rng)
    started = time.monotonic()
    try:
        bench.setup()
        for kind in KINDS:
            bench.calibrate(kind)
        print(
            "uninterrupted runs (s), whole / one store write: "
            + ", ".join(
                f"{k} {v:.2f} / {bench.windows[k]['write']:.2f}"
                for k, v in bench.durations.items()
            )
            + f"; a rebuild's publish {bench.windows['rebuild']['publish']:.3f}",
            flush=True,
        )
        totals: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        for i in range(opts.trials):
            kind = KINDS[i % len(KINDS)]
            bad, readable_at_kill = bench.trial(kind, i)
            totals[kind]["trials"] += 1
            totals[kind]["unreadable at kill"] += not readable_at_kill
            totals[kind].update(bad)
            damage = {k: v for k, v in bad.items() if k in DAMAGE}
            if damage:
                print(f"trial {i} ({kind}): {damage}", flush=True)
        cols = ["trials", "killed", "killed mid-write", "killed mid-publish", *DAMAGE]
        cols.append("unreadable at kill")
        print(f"\n{'writer':<9}" + "".join(f"{c:>{len(c) + 2}}" for c in cols))
        grand: Counter[str] = Counter()
        for kind, c in totals.items():
            grand.update(c)
            print(f"{kind:<9}" + "".join(f"{c[col]:>{len(col) + 2}}" for col in cols))
        print(f"{'all':<9}" + "".join(f"{grand[col]:>{len(col) + 2}}" for col in cols))
        print(f"\n{time.monotonic() - started:.0f} s; work folder {work}")
    finally:
        if bench.sim is not None:
            bench.sim.stop()
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Asset kinds the core tests register themselves (the core knows nothing of OOI).

* ``tests.kinds:FileSource``: an observable source whose state tests write to
  ``$DATA_VENT_HOME/sources.json`` ({key: {begin, end, count}}).
* ``tests.kinds:FileCatalog``: a ``FileAsset`` with ``partial_inputs_ok`` (like the catalog).
* ``tests.kinds:FileAsset``: writes ``<storage>/<key>.json`` from its inputs; fails while
  ``$DATA_VENT_HOME/fail/<key with / as __>`` exists; with ``config.hold`` it waits (bounded)
  for ``$DATA_VENT_HOME/release`` so lease tests can hold it mid-materialization.

``three_levels`` writes the small graph of these kinds that several test files run.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import yaml

from data_vent.assets.kinds import (
    AssetKind,
    MaterializeContext,
    MaterializeResult,
    Observation,
    as_url,
)


def _flag(home: Path, name: str, key: str) -> Path:
    return home / name / key.replace("/", "__")


def write_sources(home: Path, sources: dict[str, tuple[str, str, int]]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    data = {k: {"begin": b, "end": e, "count": c} for k, (b, e, c) in sources.items()}
    (home / "sources.json").write_text(json.dumps(data))


class FileSource(AssetKind):
    name = "tests.kinds:FileSource"
    observable = True

    def observe(self, specs, settings, engine):
        path = settings.home / "sources.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        out = []
        for spec in specs:
            d = data.get(spec.key)
            if d:
                out.append(
                    Observation(
                        spec.key,
                        datetime.fromisoformat(d["begin"]),
                        datetime.fromisoformat(d["end"]),
                        d["count"],
                    )
                )
        calls = settings.home / "observe_calls"
        calls.write_text(str(int(calls.read_text() or 0) + 1 if calls.exists() else 1))
        return out


class FileAsset(AssetKind):
    name = "tests.kinds:FileAsset"

    def _path(self, spec, settings) -> Path:
        return Path(settings.resolved_storage()) / f"{spec.key}.json"

    def exists(self, spec, settings) -> bool:
        return self._path(spec, settings).exists()

    def location(self, spec, settings) -> str:
        return as_url(str(self._path(spec, settings)))

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        home = ctx.settings.home
        if ctx.spec.config.get("hold"):
            (home / "started").mkdir(parents=True, exist_ok=True)
            _flag(home, "started", ctx.spec.key).write_text(str(time.time()))
            deadline = time.monotonic() + float(ctx.spec.config.get("hold_timeout", 30))
            while not (home / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        if _flag(home, "fail", ctx.spec.key).exists():
            raise RuntimeError(f"asked to fail {ctx.spec.key}")
        inputs = {k: iv.data_version for k, iv in sorted(ctx.inputs.items())}
        version = hashlib.sha256(
            json.dumps([inputs, ctx.spec.config_hash], sort_keys=True).encode()
        ).hexdigest()[:12]
        path = self._path(ctx.spec, ctx.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"inputs": inputs, "action": ctx.action}))
        ends = [iv.observation.end_time for iv in ctx.inputs.values() if iv.observation]
        begins = [iv.observation.begin_time for iv in ctx.inputs.values() if iv.observation]
        counts = [iv.observation.count for iv in ctx.inputs.values() if iv.observation]
        log = home / "materialized.log"
        with log.open("a") as fh:
            fh.write(f"{ctx.spec.key} {ctx.action}\n")
        return MaterializeResult(
            data_version=version,
            time_min=min(begins) if begins else None,
            time_max=max(ends) if ends else None,
            rows=sum(counts) if counts else None,
        )


class FileCatalog(FileAsset):
    """A ``FileAsset`` that, like the real catalog, works with whatever inputs exist."""

    name = "tests.kinds:FileCatalog"
    partial_inputs_ok = True


DAY1 = {
    "src/a": ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 100),
    "src/b": ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 50),
}
"""The first day of the two sources of :func:`three_levels`, for :func:`write_sources`."""


def three_levels(folder: Path, *, catalog: bool = False, hold: str | None = None) -> None:
    """src/a -> a, src/b -> b; (a, b) -> ab -> top: three levels of materialized assets,
    the graph the flow, CLI and reliability tests share. ``catalog``: also (a, b) -> cat,
    which takes partial inputs; ``hold``: that asset waits for ``$DATA_VENT_HOME/release``
    mid-materialization."""
    folder.mkdir(parents=True, exist_ok=True)
    src, file = FileSource.name, FileAsset.name
    assets = [
        {"key": "src/a", "kind": src, "observable": True},
        {"key": "src/b", "kind": src, "observable": True},
        {"key": "a", "kind": file, "deps": ["src/a"]},
        {"key": "b", "kind": file, "deps": ["src/b"]},
        {"key": "ab", "kind": file, "deps": ["a", "b"]},
        {"key": "top", "kind": file, "deps": ["ab"]},
    ]
    if catalog:
        assets.append({"key": "cat", "kind": FileCatalog.name, "deps": ["a", "b"]})
    for item in assets:
        if item["key"] == hold:
            item["config"] = {"hold": True, "hold_timeout": 60}
    (folder / "graph.yaml").write_text(yaml.safe_dump({"assets": assets}))

"""Crash-safe commits of a Zarr v2 store (local folder or S3).

The commit point is one object: ``.zmetadata`` (consolidated metadata). Consumers open the
store with ``xarray.open_zarr(url, consolidated=True)``, which reads only ``.zmetadata`` for
shapes, dtypes and attributes, so the version they see is exactly the committed one. Writing
``.zmetadata`` is atomic on both back ends (local: temp file + ``os.replace``; S3: one PUT).

Append (in place)::

    1. repair()                         # finish or undo any earlier crashed write
    2. PUT  .data-vent-journal.json     # {"op": "append", ...}: "a write may be in progress"
    3. write chunks beyond the committed length (a partial last chunk is rewritten with its
       committed prefix unchanged, atomically), create new arrays, update per-array
       .zarray/.zattrs (shapes) -- invisible to consolidated readers
    4. checks (read back from the store), blocking the commit
    5. PUT  .zmetadata                  # COMMIT POINT
    6. DELETE journal

Repair (run before every write, or by ``StreamStore.repair()``): if a journal exists, the
committed ``.zmetadata`` is the truth; per-array ``.zarray``/``.zattrs`` and root metadata
are rewritten from it, arrays it does not list are deleted, chunks wholly beyond the committed
shape are deleted, then the journal is deleted. A crash before step 5 therefore rolls back to
the previous version, a crash after it rolls forward (the metadata already matches). If no
``.zmetadata`` was ever committed the store is wiped. Garbage rows inside the last partial
chunk beyond the committed length are never visible and are overwritten by the next append.

Rebuild (beside, then publish)::

    1. PUT journal {"op": "rebuild", "state": "staging", "staging": <url>}
    2. build the complete new version at ``<url>.staging-<id>`` (a sibling), run the checks
    3. PUT journal {"state": "publishing", "keys": [every key of the new version]}
    4. DELETE .zmetadata                # consolidated readers now fail to open: no mix
    5. move every new key into place; delete old keys the new version lacks
    6. PUT  .zmetadata (the new one)    # COMMIT POINT
    7. delete staging, DELETE journal

Repair of a rebuild: state ``staging`` -> delete the staging copy (the live store was not
touched); state ``publishing`` -> redo steps 4-7 (idempotent: moved keys are already in
place and the key list is in the journal).

Limits: one writer per store at a time. A repair run while another process writes would undo
that write, so every write and every repair goes through the runner's write path
(``run.runner.write_asset``), which holds the asset's lease; ``repair_pending`` is the
repair entry point it calls, before every run's plan and for ``data-vent repair``.
Readers that use ``consolidated=True`` see a committed version; during a rebuild publish
they get an error instead of a mix, and a reader that opened the old version before a
rebuild publish and is still reading chunks may read new chunks (zarr v2 chunk keys are
fixed): reopen after a rebuild.
"""

from __future__ import annotations

import json
import re
from typing import Any

from data_vent.store.location import Location

ZMETA = ".zmetadata"
JOURNAL = ".data-vent-journal.json"
_CHUNK_KEY = re.compile(r"^\d+(\.\d+)*$")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=4, sort_keys=True, allow_nan=True).encode()


def read_json(loc: Location, rel: str) -> Any | None:
    raw = loc.read_bytes(rel)
    return None if raw is None else json.loads(raw)


def read_committed(loc: Location) -> dict[str, Any] | None:
    """The committed consolidated metadata (``{"metadata": {...}}``) or None."""
    return read_json(loc, ZMETA)


def write_journal(loc: Location, entry: dict[str, Any]) -> None:
    loc.write_atomic(JOURNAL, _dumps(entry))


def read_journal(loc: Location) -> dict[str, Any] | None:
    return read_json(loc, JOURNAL)


def build_zmetadata(loc: Location, arrays: list[str]) -> dict[str, Any]:
    """Consolidate root + the listed arrays' metadata as currently stored."""
    meta: dict[str, Any] = {}
    for key in (".zgroup", ".zattrs"):
        value = read_json(loc, key)
        if value is not None:
            meta[key] = value
    for name in arrays:
        for key in (".zarray", ".zattrs"):
            value = read_json(loc, f"{name}/{key}")
            if value is not None:
                meta[f"{name}/{key}"] = value
    return {"metadata": meta, "zarr_consolidated_format": 1}


def commit(loc: Location, zmeta: dict[str, Any]) -> None:
    """The commit point: one atomic write."""
    loc.write_atomic(ZMETA, _dumps(zmeta))


def committed_arrays(zmeta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in zmeta["metadata"].items():
        if key.endswith("/.zarray"):
            out[key[: -len("/.zarray")]] = value
    return out


def _chunk_beyond(key: str, zarray: dict[str, Any]) -> bool:
    parts = key.split(zarray.get("dimension_separator") or ".")
    try:
        idx = [int(p) for p in parts]
    except ValueError:
        return True
    shape, chunks = zarray["shape"], zarray["chunks"]
    if len(idx) != len(shape):
        return True
    return any(i * c >= s for i, c, s in zip(idx, chunks, shape, strict=True))


def restore_to_committed(loc: Location) -> None:
    """Make every object of the store agree with the committed ``.zmetadata``."""
    zmeta = read_committed(loc)
    keys = loc.list_keys()
    if zmeta is None:
        loc.delete([k for k in keys if k != JOURNAL])
        return
    meta = zmeta["metadata"]
    arrays = committed_arrays(zmeta)
    stale: list[str] = []
    for key in keys:
        if key in (ZMETA, JOURNAL):
            continue
        top, _, rest = key.partition("/")
        if not rest:
            if key in meta:
                if read_json(loc, key) != meta[key]:
                    loc.write_atomic(key, _dumps(meta[key]))
            else:
                stale.append(key)
        elif top not in arrays:
            stale.append(key)
        elif rest in (".zarray", ".zattrs"):
            if key not in meta:
                stale.append(key)
            elif read_json(loc, key) != meta[key]:
                loc.write_atomic(key, _dumps(meta[key]))
        elif "/" in rest or not _CHUNK_KEY.match(rest) or _chunk_beyond(rest, arrays[top]):
            stale.append(key)
    for key in (".zgroup", ".zattrs"):
        if key in meta and key not in keys:
            loc.write_atomic(key, _dumps(meta[key]))
    for name in arrays:
        for sub in (".zarray", ".zattrs"):
            key = f"{name}/{sub}"
            if key in meta and key not in keys:
                loc.write_atomic(key, _dumps(meta[key]))
    loc.delete(stale)


def publish(loc: Location, staging: Location, keys: list[str]) -> None:
    """Steps 4-7 of a rebuild; safe to run again after a crash at any point."""
    loc.delete([ZMETA])
    present = set(staging.list_keys())
    for key in keys:
        if key == ZMETA:
            continue
        if key in present:
            staging.move(key, loc)
    wanted = set(keys) | {JOURNAL}
    loc.delete([k for k in loc.list_keys() if k not in wanted])
    zmeta = read_committed(staging)
    if zmeta is None:  # moved already in an earlier attempt? It never is: it goes last.
        raise RuntimeError(f"staging copy {staging.url} lost its {ZMETA}")
    commit(loc, zmeta)
    staging.remove_all()
    loc.delete([JOURNAL])


def describe_pending(entry: dict[str, Any]) -> str:
    """What repairing a journal ``entry`` does, in words (for the run report and history)."""
    if entry.get("op") == "rebuild":
        if entry.get("state") == "publishing":
            return "finished publishing an interrupted rebuild (rolled forward)"
        return "discarded an interrupted rebuild's staging copy (store unchanged)"
    return f"rolled back an interrupted {entry.get('op', 'write')}"


def repair_pending(loc: Location) -> str | None:
    """Repair the store if a write was interrupted; what was done, or None if it was clean.

    The caller holds the asset's lease: a journal is then a *dead* writer's (the runner's
    ``repair`` path), never a live one's in-flight write.
    """
    entry = read_journal(loc)
    if entry is None:
        return None
    repair(loc)
    return describe_pending(entry)


def repair(loc: Location) -> bool:
    """Bring the store back to its last committed version. True if anything was pending."""
    entry = read_journal(loc)
    if entry is None:
        return False
    if entry.get("op") == "rebuild":
        staging = Location(entry["staging"], loc.storage_options)
        if entry.get("state") == "publishing":
            publish(loc, staging, entry["keys"])
            return True
        staging.remove_all()
        restore_to_committed(loc)
        loc.delete([JOURNAL])
        return True
    restore_to_committed(loc)
    loc.delete([JOURNAL])
    return True

"""Backfill a stream store from local OOI NetCDF files, under the harvest's append rules.

The store is written by the same code as a harvest and through the same write path
(``runner.write_asset``): under the asset's lease, so an ingest never writes beside a
harvest or another ingest (the second waits up to ``DATA_VENT_LEASE_WAIT``, then exits 1
naming the holder), and recorded as an attempt, so the planner sees the ingested coverage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from data_vent.assets.kinds import MaterializeContext, MaterializeResult
from data_vent.core.errors import BadInput
from data_vent.core.vocab import Action
from data_vent.run.runner import Provenance, WriteJob, new_run_id, write_asset
from data_vent.run.workspace import Workspace

if TYPE_CHECKING:
    from data_vent.store.writer import WriteOutcome

STREAM_KIND = "ooi_stream"


def ingest(
    ws: Workspace, asset: str, files: Sequence[Path], rebuild: bool = False
) -> WriteOutcome:
    """Write ``files`` into ``asset``'s store (appended, or the store rebuilt from them)."""
    if asset not in ws.specs:
        ws.select(asset)  # raises with suggestions
    spec = ws.specs[asset]
    if spec.kind != STREAM_KIND:
        raise BadInput(f"{asset} is a {spec.kind} asset; ingest takes a stream store")
    for f in files:
        if not f.is_file():
            raise BadInput(f"{f}: no such file")
    ws.sync()
    written: list[WriteOutcome] = []

    def work(ctx: MaterializeContext) -> MaterializeResult:
        from data_vent.store import StreamStore

        store = StreamStore(
            ctx.storage_url(),
            ws.settings.storage_options(),
            ws.settings.chunk_target_bytes,
            asset,
        )
        paths = [str(f) for f in files]
        outcome = store.rebuild_from_files(paths) if rebuild else store.append_files(paths)
        if outcome.needs_rebuild:
            raise BadInput(
                f"{asset}: these files need a rebuild ({outcome.rebuild_reason}); "
                "pass --rebuild with every file of the stream"
            )
        written.append(outcome)
        return MaterializeResult(
            data_version=outcome.data_version,
            time_min=outcome.time_min,
            time_max=outcome.time_max,
            rows=outcome.rows_total,
            metadata={
                "ingest": [f.name for f in files],
                "rows_added": outcome.rows_added,
                "rules_applied": outcome.rules_applied,
            },
        )

    job = WriteJob(
        spec,
        new_run_id(),
        Action.REBUILD if rebuild else Action.APPEND,
        wait=ws.settings.lease_wait,
        provenance=Provenance.NONE,
        raise_errors=True,
    )
    write_asset(job, ws.specs, ws.settings, ws.engine, work)
    return written[0]

"""Backfill a stream store from local OOI NetCDF files, under the harvest's append rules.

The store is written by the same code as a harvest, and the attempt is recorded as one,
so the planner sees the ingested coverage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from data_vent.core.errors import BadInput
from data_vent.core.records import MaterializationRecord
from data_vent.core.vocab import Action, Outcome
from data_vent.run.runner import new_run_id
from data_vent.run.workspace import Workspace
from data_vent.state.materializations import record_materialization

if TYPE_CHECKING:
    from data_vent.store import WriteOutcome

STREAM_KIND = "ooi_stream"


def ingest(
    ws: Workspace, asset: str, files: Sequence[Path], rebuild: bool = False
) -> WriteOutcome:
    """Write ``files`` into ``asset``'s store (appended, or the store rebuilt from them)."""
    from data_vent.store import ingest_files

    if asset not in ws.specs:
        ws.select(asset)  # raises with suggestions
    spec = ws.specs[asset]
    if spec.kind != STREAM_KIND:
        raise BadInput(f"{asset} is a {spec.kind} asset; ingest takes a stream store")
    for f in files:
        if not f.is_file():
            raise BadInput(f"{f}: no such file")
    ws.sync()
    action = Action.REBUILD if rebuild else Action.APPEND
    attempt = MaterializationRecord(
        asset,
        new_run_id(),
        action,
        code_version=spec.code_version,
        config_hash=spec.config_hash,
    )
    outcome = ingest_files(
        f"{ws.settings.resolved_storage()}/{asset}",
        [str(f) for f in files],
        ws.settings.storage_options(),
        mode=str(action),
        chunk_target_bytes=ws.settings.chunk_target_bytes,
        table=asset,
    )
    if outcome.needs_rebuild:
        raise BadInput(
            f"{asset}: these files need a rebuild ({outcome.rebuild_reason}); "
            "pass --rebuild with every file of the stream"
        )
    record_materialization(
        ws.engine,
        attempt.finish(
            Outcome.SUCCESS,
            data_version=outcome.data_version,
            time_min=outcome.time_min,
            time_max=outcome.time_max,
            rows=outcome.rows_total,
            details={
                "ingest": [f.name for f in files],
                "rows_added": outcome.rows_added,
                "rules_applied": outcome.rules_applied,
            },
        ),
    )
    return outcome

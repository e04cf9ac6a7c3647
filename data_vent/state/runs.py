"""Run reports: each run's outcomes, written once when it finishes.

A parent run that fanned its plan out over child runs reads its children's reports here:
the state DB is what every worker shares, whatever runs the flows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from data_vent.core.timeutil import utcnow
from data_vent.state.models import RunReport

R = RunReport.__table__


def record_run(
    engine: Engine,
    run_id: str,
    outcomes: Mapping[str, Mapping[str, Any]],
    *,
    ok: bool,
    title: str = "",
    parent_run_id: str | None = None,
    flow_run_id: str | None = None,
) -> None:
    """Write (or, for a retried run id, replace) the run's report."""
    row = {
        "run_id": run_id,
        "parent_run_id": parent_run_id,
        "flow_run_id": flow_run_id,
        "title": title[:300],
        "finished_at": utcnow(),
        "ok": ok,
        "outcomes": json.loads(json.dumps(dict(outcomes), default=str)),
    }
    with engine.begin() as conn:
        conn.execute(delete(R).where(R.c.run_id == run_id))
        conn.execute(insert(R).values(**row))


def run_reports(engine: Engine, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The reports of ``run_ids`` that exist (a run that crashed wrote none)."""
    ids = list(run_ids)
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(R).where(R.c.run_id.in_(ids))).mappings()
        return {r["run_id"]: dict(r) for r in rows}

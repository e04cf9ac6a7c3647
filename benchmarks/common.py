"""What the benchmarks share: their settings in a temp folder, and a state DB written in bulk
as a finished harvest leaves it (setting up thousands of assets through the runner would take
longer than what is measured).

Imported as ``common`` (a benchmark's own folder is on ``sys.path`` when it runs); it loads
no Prefect, so a benchmark can still point Prefect at a server of its own afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine

from data_vent.core.spec import AssetSpec
from data_vent.state.models import Asset, Materialization


def settings_values(tmp: Path, db_url: str | None, ooi_url: str) -> dict[str, Any]:
    """Settings of a run in ``tmp``: home, stores and harvest configs there, the state DB at
    ``db_url`` (default: a SQLite file there), OOI at ``ooi_url`` (the simulator)."""
    return dict(
        home=tmp / "home",
        db_url=db_url or f"sqlite:///{tmp / 'state.db'}",
        storage=str(tmp / "stores"),
        config_dir=tmp / "configs",
        ooi_url=ooi_url,
    )


def success_row(
    key: str, spec: AssetSpec, inputs: dict[str, Any], run_id: str, **values: Any
) -> dict[str, Any]:
    """A successful full build of ``key`` on ``inputs`` at the spec's current code and
    config (so the planner sees it fresh), for :func:`record_successes`; ``values`` adds
    or overrides columns (times, ...)."""
    return {
        "asset_key": key,
        "run_id": run_id,
        "status": "success",
        "action": "full",
        "reasons": [],
        "code_version": spec.code_version,
        "config_hash": spec.config_hash,
        "input_versions": inputs,
        "data_version": f"v-{key}",
        "rows": 1000,
        "details": {},
        **values,
    }


def record_successes(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` as materializations (1000 a statement) and make each asset's row its
    last success and last attempt, as the runner would have."""
    m, a = Materialization.__table__, Asset.__table__
    with engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(m), rows[i : i + 1000])
        ids = {
            r.asset_key: r.id
            for r in conn.execute(m.select().with_only_columns(m.c.asset_key, m.c.id))
        }
        for key, mid in ids.items():
            conn.execute(
                update(a)
                .where(a.c.key == key)
                .values(last_success_id=mid, last_attempt_id=mid)
            )

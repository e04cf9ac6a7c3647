"""A second process for the concurrency tests: ``python -m tests.lease_worker MODE ...``.

* ``materialize DB_URL KEY``: materialize the ``tests.kinds:FileAsset`` asset ``KEY`` (config
  ``{hold: true}``: it waits for ``$DATA_VENT_HOME/release``) through
  ``runner.materialize_asset``; prints the outcome as JSON.
* ``counter DB_URL KEY N READY GO``: create file READY, wait (bounded) for file GO, then
  increment ``asset.code_version`` of KEY N times, each a read-modify-write transaction.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from data_vent.core.plan import PlanItem
from data_vent.core.records import Reason
from data_vent.core.spec import AssetSpec
from data_vent.settings import get_settings
from data_vent.state.db import get_engine
from data_vent.state.models import Asset
from tests.polling import poll_until

A = Asset.__table__


def held_spec(key: str) -> AssetSpec:
    return AssetSpec(key, "tests.kinds:FileAsset", config={"hold": True, "hold_timeout": 60})


def increment(engine: Engine, key: str) -> None:
    """One read-modify-write transaction on ``asset.code_version`` (FOR UPDATE on PG)."""
    with engine.begin() as conn:
        value = conn.execute(
            select(A.c.code_version).where(A.c.key == key).with_for_update()
        ).scalar_one()
        conn.execute(update(A).where(A.c.key == key).values(code_version=str(int(value) + 1)))


def main(argv: list[str]) -> None:
    mode, db_url, key = argv[:3]
    engine = get_engine(db_url)
    if mode == "materialize":
        from data_vent.run.runner import materialize_asset

        spec = held_spec(key)
        item = PlanItem(key, "full", [Reason("missing")])
        out = materialize_asset(item, {key: spec}, get_settings(), engine, f"run-{key}")
        print(json.dumps(out.to_json()), flush=True)
    elif mode == "counter":
        n, ready, go = int(argv[3]), Path(argv[4]), Path(argv[5])
        ready.write_text("ready")
        poll_until(go.exists, 30, every=0.005, what=f"{go} to appear")
        for _ in range(n):
            increment(engine, key)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

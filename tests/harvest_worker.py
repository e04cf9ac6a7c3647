"""A harvest in a process of its own, without Prefect: ``python -m tests.harvest_worker``.

Settings come from the environment (DATA_VENT_*). Sync, observe, plan and run the plan with
``DATA_VENT_CONCURRENCY`` threads, each asset as soon as its inputs are done; prints the
outcome counts as JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from data_vent.core.plan import PlanItem
from data_vent.run import runner
from data_vent.run.workspace import Workspace


def main() -> None:
    ws = Workspace.load()
    ws.sync()
    ws.observe()
    plan = ws.plan()
    run_id = runner.new_run_id()
    with ThreadPoolExecutor(ws.settings.concurrency) as pool:

        def start(item: PlanItem, done) -> None:
            pool.submit(
                runner.materialize_asset, item, ws.specs, ws.settings, ws.engine, run_id
            ).add_done_callback(lambda f: done(f.result))

        outcomes = ws.execute(plan, run_id, start)
    print(json.dumps(Counter(str(o.status) for o in outcomes.values())), flush=True)


if __name__ == "__main__":
    main()

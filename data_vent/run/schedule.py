"""Dependency-driven execution: each asset starts as soon as its own planned inputs are done.

Running a plan generation by generation made one stream waiting on OOI hold back every other
stream's derived assets. Here an item waits only for its planned ancestors; the executor
(threads in this process, Prefect tasks, a Dask cluster) is whatever ``start`` hands it to.
"""

from __future__ import annotations

import heapq
import queue
from collections.abc import Callable, Mapping, Sequence

import networkx as nx
from sqlalchemy.engine import Engine

from data_vent.core.plan import PlanItem
from data_vent.run.runner import AssetOutcome, blocked_by, skip

Done = Callable[[AssetOutcome | Callable[[], AssetOutcome]], None]
Start = Callable[[PlanItem, Done], None]
"""Start one item; when it is done call the given function (from any thread) with its
outcome, or with a function returning it, called in the scheduler's own thread (a future's
result must not be read in the executor's callback thread)."""


def run_as_ready(
    items: Sequence[PlanItem],
    graph: nx.DiGraph,
    engine: Engine,
    run_id: str,
    start: Start,
    partial_inputs_ok: set[str] | None = None,
    max_running: int | None = None,
    prior: Mapping[str, AssetOutcome] | None = None,
    flow_run_id: str | None = None,
) -> dict[str, AssetOutcome]:
    """Run ``items`` (in plan order): an item starts once every planned ancestor finished,
    unless one of them keeps it from running (then it is skipped and recorded, as before).

    At most ``max_running`` started at once (None: all that are ready). ``prior``: outcomes
    of planned ancestors run elsewhere (a fan-out's child runs). Outcomes of ``items`` come
    back in plan order.
    """
    order = {it.key: i for i, it in enumerate(items)}
    by_key = {it.key: it for it in items}
    dependents: dict[str, list[str]] = {k: [] for k in order}
    remaining: dict[str, int] = {}
    for key in order:
        planned_up = [a for a in nx.ancestors(graph, key) if a in order]
        remaining[key] = len(planned_up)
        for anc in planned_up:
            dependents[anc].append(key)
    ready = [(order[k], k) for k, n in remaining.items() if n == 0]
    heapq.heapify(ready)
    finished: queue.Queue[AssetOutcome | Callable[[], AssetOutcome]] = queue.Queue()
    outcomes: dict[str, AssetOutcome] = {}
    running = 0

    def done(out: AssetOutcome) -> None:
        outcomes[out.key] = out
        for dep in dependents[out.key]:
            remaining[dep] -= 1
            if remaining[dep] == 0:
                heapq.heappush(ready, (order[dep], dep))

    while len(outcomes) < len(order):
        while ready and (max_running is None or running < max_running):
            _, key = heapq.heappop(ready)
            item = by_key[key]
            tolerant = key in (partial_inputs_ok or ())
            seen = {**(prior or {}), **outcomes}
            up = blocked_by(item, graph, seen, tolerant)
            if up is not None:
                done(skip(item, up[0], up[1], seen, engine, run_id, flow_run_id))
                continue
            start(item, finished.put)
            running += 1
        if len(outcomes) == len(order):
            break
        got = finished.get()
        running -= 1
        done(got() if callable(got) else got)
    return {k: outcomes[k] for k in order}

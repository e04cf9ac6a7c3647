"""Repair what killed writers left: before every run's plan, and ``data-vent repair``.

A writer killed mid-write leaves its store's journal (``store.commit``) and, since every
write holds the asset's lease, a lease row that stops being renewed and expires. A store
killed in a rebuild's publish window has no ``.zmetadata`` at all: unreadable, and planned
as ``missing`` if nobody repairs it first. So each run repairs before it plans, through the
one write path (``runner.write_asset``: the asset's lease, the attempt recorded with action
``repair``), and never a store whose lease a live holder has: that journal is an in-flight
write, not a wreck.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from data_vent.assets.kinds import AssetKind, MaterializeContext, MaterializeResult, get_kind
from data_vent.core.errors import LeaseHeld
from data_vent.core.snapshot import LeaseRecord
from data_vent.core.spec import AssetSpec
from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import Action, Outcome
from data_vent.run.runner import (
    AssetOutcome,
    Provenance,
    WriteJob,
    locked,
    notify,
    one_line,
    redact,
    write_asset,
)
from data_vent.settings import Settings
from data_vent.state.leases import lease_records

PROBE_THREADS = 8
"""Stores probed for a journal at once (one small read each; S3 latency, not CPU)."""


def _repairable(kind: AssetKind) -> bool:
    return type(kind).needs_repair is not AssetKind.needs_repair


def pending_repairs(
    specs: Mapping[str, AssetSpec],
    settings: Settings,
    engine: Engine,
    keys: Iterable[str] | None = None,
    check_storage: bool = True,
) -> dict[str, str]:
    """Assets (of ``keys``, or all) a killed writer left, and how we know.

    A lease row past its expiry is a writer that died holding it (known from the DB alone);
    with ``check_storage``, a store journal with no live lease holder is one too. A journal
    under a live lease is that writer's write in progress: not listed.
    """
    keys = [k for k in (specs if keys is None else keys) if not specs[k].observable]
    now = utcnow()
    rows = lease_records(engine, keys)
    out: dict[str, str] = {
        k: f"its writer ({rec.describe()}) died holding its lease"
        for k, rec in rows.items()
        if not rec.live(now)
    }
    if not check_storage:
        return out
    probe = [
        k
        for k in keys
        if k not in out and k not in rows and _repairable(get_kind(specs[k].kind))
    ]

    def has_journal(key: str) -> bool:
        spec = specs[key]
        return get_kind(spec.kind).needs_repair(spec, settings)

    with ThreadPoolExecutor(max_workers=PROBE_THREADS) as pool:
        for key, found in zip(probe, pool.map(has_journal, probe), strict=True):
            if found:
                out[key] = "an interrupted write left its journal"
    return out


def _repair_work(ctx: MaterializeContext) -> MaterializeResult | str | None:
    """Repair under the lease. Recorded (action ``repair``) with the output as it now is and
    the last success's inputs: a repair changes no input, it finishes or undoes a write."""
    spec = ctx.spec
    kind = get_kind(spec.kind)
    done = kind.repair(spec, ctx.settings)
    if done is None:
        return None  # a dead writer's lease, nothing half-written: the lease is freed
    result = kind.output_state(spec, ctx.settings) if kind.exists(spec, ctx.settings) else None
    if result is None:  # no version was ever committed: nothing to record
        return f"{done}; no committed version"
    result.metadata = {**result.metadata, "repaired": done}
    return result


def repair_assets(
    specs: Mapping[str, AssetSpec],
    settings: Settings,
    engine: Engine,
    run_id: str,
    keys: Iterable[str] | None = None,
    wait: float = 0.0,
) -> dict[str, AssetOutcome]:
    """Repair every asset a killed writer left (see ``pending_repairs``), each under its
    lease; an asset a live writer holds is left to it (``locked``)."""
    out: dict[str, AssetOutcome] = {}
    for key, why in sorted(pending_repairs(specs, settings, engine, keys).items()):
        job = WriteJob(
            specs[key], run_id, Action.REPAIR, wait=wait, provenance=Provenance.PREVIOUS
        )
        try:
            res = write_asset(job, specs, settings, engine, _repair_work)
        except LeaseHeld as exc:
            res = locked(key, Action.REPAIR, [], exc)
        except Exception as exc:  # reported; the run goes on (its plan sees the store)
            message = redact(one_line(exc), settings)
            res = AssetOutcome(key, Outcome.FAILED, Action.REPAIR, error=message)
        res.details.setdefault("found", why)
        notify("repaired", res)
        out[key] = res
    return out


def held_by_live(engine: Engine, keys: Iterable[str]) -> dict[str, LeaseRecord]:
    """The assets among ``keys`` a live writer holds right now."""
    now = utcnow()
    return {k: r for k, r in lease_records(engine, keys).items() if r.live(now)}

"""Executing a plan, without Prefect: the one write path of an asset, and the generation loop.

``flows.py`` wraps these in Prefect tasks; tests and the core call them directly. Every write
of an asset (``write_asset``: harvest, materialize, ingest, rebuild, repair) runs under the
asset's DB lease (``run.lease``), so two runs, even in two processes, never write one asset at
once; the plan is re-checked under the lease, so an asset another run made fresh meanwhile is
skipped ("done by run R"); an asset another live run holds is ``locked``: its work, not a
failure. A crashed holder's lease expires within ``DATA_VENT_LEASE_SECONDS``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

import networkx as nx
from sqlalchemy.engine import Engine

from data_vent.assets.kinds import MaterializeContext, MaterializeResult, get_kind
from data_vent.core.errors import BadInput, LeaseHeld
from data_vent.core.plan import NO_SUCCESS, PlanItem
from data_vent.core.records import (
    InputVersion,
    MaterializationRecord,
    Reason,
    input_version_record,
)
from data_vent.core.snapshot import LeaseRecord
from data_vent.core.spec import AssetSpec
from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import Action, Outcome, ReasonCode, SkipCause
from data_vent.graph.planner import own_reasons, strongest_action
from data_vent.run.lease import HeldLease, hold_lease
from data_vent.settings import Settings
from data_vent.state.materializations import (
    last_success_ref,
    last_success_versions,
    previous_state,
    record_materialization,
)
from data_vent.state.observations import latest_observations
from data_vent.state.snapshot import read_snapshot

log = logging.getLogger("data_vent")


@dataclass
class AssetOutcome:
    key: str
    status: Outcome
    action: Action | str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    rows: int | None = None
    time_max: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# Progress listeners (the CLI's progress bar); called from worker threads.
_LISTENERS: list[Callable[[str, Any], None]] = []


def add_listener(fn: Callable[[str, Any], None]) -> None:
    _LISTENERS.append(fn)


def remove_listener(fn: Callable[[str, Any], None]) -> None:
    if fn in _LISTENERS:
        _LISTENERS.remove(fn)


def notify(event: str, payload: Any) -> None:
    for fn in list(_LISTENERS):
        try:
            fn(event, payload)
        except Exception:  # a broken progress bar must not break a harvest
            log.debug("listener failed", exc_info=True)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def redact(text: str, settings: Settings) -> str:
    """Remove secret values from a message before it is logged or stored."""
    for secret in (
        settings.ooi_username,
        settings.ooi_token,
        settings.s3_key,
        settings.s3_secret,
    ):
        if secret is not None:
            value = secret.get_secret_value()
            if value and len(value) >= 3:
                text = text.replace(value, "***")
    return text


def one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def current_inputs(
    engine: Engine, spec: AssetSpec, specs: Mapping[str, AssetSpec]
) -> dict[str, InputVersion]:
    """Inputs as they are *now* (upstream may have been rematerialized in this run)."""
    sources = [d for d in spec.deps if specs[d].observable]
    others = [d for d in spec.deps if not specs[d].observable]
    out: dict[str, InputVersion] = {}
    for key, obs in latest_observations(engine, sources).items():
        out[key] = InputVersion(key, obs.data_version, obs)
    for key in sources:
        out.setdefault(key, InputVersion(key, None, None))
    versions = last_success_versions(engine, others)
    for key in others:
        out[key] = InputVersion(key, versions.get(key))
    return out


class Provenance(StrEnum):
    """What a write records as the inputs of the version it made."""

    INPUTS = "inputs"
    """The inputs as they are now (a harvest, a materialization)."""
    NONE = "none"
    """None (an ingest of local files: the planner then sees OOI's news as new)."""
    PREVIOUS = "previous"
    """The last success's, unchanged (a repair changes no input, only finishes a write)."""


@dataclass
class WriteJob:
    """One write of one asset, as the runner's single write path takes it."""

    spec: AssetSpec
    run_id: str
    action: Action | str
    reasons: list[Reason] = field(default_factory=list)
    basis: int | None = None
    """``PlanItem.basis``: re-checked under the lease if another run succeeded since."""
    wait: float = 0.0
    """Seconds to wait for another live writer's lease before ``LeaseHeld``."""
    provenance: Provenance = Provenance.INPUTS
    raise_errors: bool = False
    """Re-raise a failure after recording it (ingest) instead of returning it (a run)."""
    flow_run_id: str | None = None
    """Prefect's flow-run id when the write runs inside a flow (recorded with it)."""
    impatient: Container[str] = ()
    """Run ids whose leases are not waited for (they outlasted a wait of this run already)."""


Work = Callable[[MaterializeContext], MaterializeResult | str | None]
"""What the write does once the lease is held: a result to record, or (nothing to record)
None when there was nothing to do, a note when it changed something no version records."""


def _on_wait(key: str) -> Callable[[LeaseRecord | None], None]:
    def told(rec: LeaseRecord | None) -> None:
        notify("lease_wait", {"key": key, "holder": rec.describe() if rec else None})

    return told


def write_asset(
    job: WriteJob,
    specs: Mapping[str, AssetSpec],
    settings: Settings,
    engine: Engine,
    work: Work,
) -> AssetOutcome:
    """THE write path of every asset: harvest, materialize, ingest, rebuild and repair.

    Take the asset's lease (waiting ``job.wait`` s for a live holder, else ``LeaseHeld``),
    re-check the plan under it, run ``work``, record the attempt with its provenance, and
    release the lease. Nothing writes a store any other way.
    """
    key = job.spec.key
    waited_from = time.monotonic()
    with hold_lease(
        engine, key, job.run_id, settings, job.wait, _on_wait(key), job.impatient
    ) as lease:
        waited = time.monotonic() - waited_from
        return _write_held(job, specs, settings, engine, work, lease, waited)


def _write_held(
    job: WriteJob,
    specs: Mapping[str, AssetSpec],
    settings: Settings,
    engine: Engine,
    work: Work,
    lease: HeldLease,
    waited: float,
) -> AssetOutcome:
    spec = job.spec
    attempt = MaterializationRecord(
        spec.key,
        job.run_id,
        job.action,
        list(job.reasons),
        code_version=spec.code_version,
        config_hash=spec.config_hash,
        flow_run_id=job.flow_run_id,
    )
    extra = {"waited_s": round(waited, 1)} if waited >= 1 else {}
    logger = logging.getLogger(f"data_vent.asset.{spec.key}")
    try:
        if job.basis is not None:
            checked = recheck(job, specs, settings, engine)
            if isinstance(checked, str):
                return done_elsewhere(job, checked, engine, extra)
            if checked is not None:
                attempt = replace(attempt, action=checked[0], reasons=checked[1])
        inputs = (
            current_inputs(engine, spec, specs) if job.provenance == Provenance.INPUTS else {}
        )
        ctx = MaterializeContext(
            spec=spec,
            action=attempt.action,
            reasons=list(attempt.reasons),
            inputs=inputs,
            previous=previous_state(engine, spec.key),
            settings=settings,
            engine=engine,
            run_id=job.run_id,
            logger=logger,
            renew_lease=lease.renew,
            all_specs=dict(specs),
        )
        result = work(ctx)
        if result is None or isinstance(result, str):
            note = result or "nothing to do"
            return _outcome(attempt, Outcome.SUCCESS, details={**extra, "note": note})
        if result.status == Outcome.WAITING:
            result.metadata = {**result.metadata, "has_output": ctx.previous is not None}
        record_materialization(engine, _finished(attempt, job, ctx, result))
        return _outcome(
            attempt,
            result.status,
            rows=result.rows,
            time_max=result.time_max.isoformat() if result.time_max else None,
            details={**extra, **result.metadata},
        )
    except Exception as exc:  # recorded, reported; a run goes on with the others
        if job.raise_errors and isinstance(exc, BadInput):
            raise  # the user's mistake (a bad file): nothing was written, nothing tried
        message = redact(one_line(exc), settings)
        logger.error("materialization of %s failed: %s", spec.key, message)
        record_materialization(engine, attempt.finish(Outcome.FAILED, error=message))
        if job.raise_errors:
            raise
        return _outcome(attempt, Outcome.FAILED, error=message, details=extra)


def _outcome(attempt: MaterializationRecord, status: Outcome, **values: Any) -> AssetOutcome:
    return AssetOutcome(
        attempt.asset_key,
        status,
        attempt.action,
        [r.to_json() for r in attempt.reasons],
        seconds=(utcnow() - attempt.started_at).total_seconds(),
        **values,
    )


def _finished(
    attempt: MaterializationRecord,
    job: WriteJob,
    ctx: MaterializeContext,
    result: MaterializeResult,
) -> MaterializationRecord:
    """The attempt ended by ``result``, with the provenance ``job`` asks for."""
    values: dict[str, Any] = {}
    if job.provenance == Provenance.INPUTS:
        inputs = {
            k: input_version_record(k, iv.data_version, iv.observation)
            for k, iv in ctx.inputs.items()
        }
        inputs.update(result.input_versions or {})
        values["input_versions"] = inputs
    elif job.provenance == Provenance.PREVIOUS and ctx.previous is not None:
        values.update(
            input_versions=ctx.previous.input_versions,
            code_version=ctx.previous.code_version,
            config_hash=ctx.previous.config_hash,
        )
    else:
        values["input_versions"] = dict(result.input_versions or {})
    return attempt.finish(
        result.status,
        data_version=result.data_version,
        time_min=result.time_min,
        time_max=result.time_max,
        rows=result.rows,
        details=result.metadata,
        **values,
    )


def recheck(
    job: WriteJob, specs: Mapping[str, AssetSpec], settings: Settings, engine: Engine
) -> str | tuple[Action, list[Reason]] | None:
    """Plan, then re-check under the lease: is the asset still stale as planned?

    None: nothing changed since the plan (or it was forced): go on as planned. A run id:
    another run made it fresh since the plan ("done by run R"). Otherwise the action and
    reasons of what is still stale now (e.g. an append instead of the planned full build).
    """
    ref = last_success_ref(engine, job.spec.key)
    if (ref[0] if ref else NO_SUCCESS) == job.basis:
        return None
    if any(r.code == ReasonCode.FORCED for r in job.reasons):
        return None
    spec = job.spec
    snap = read_snapshot(engine, {spec.key, *spec.deps})
    exists = get_kind(spec.kind).exists(spec, settings)
    own = own_reasons(spec, snap.state(spec.key), specs, snap, exists)
    if not own:
        return ref[1] if ref else None
    own += [r for r in job.reasons if r.code == ReasonCode.UPSTREAM_PLANNED]
    return strongest_action(own), own


def done_elsewhere(
    job: WriteJob, by_run: str, engine: Engine, extra: Mapping[str, Any]
) -> AssetOutcome:
    """Record and report an asset another run made fresh since this run planned it."""
    message = f"done by run {by_run}"
    details = {"skip": str(SkipCause.DONE_ELSEWHERE), "done_by": by_run, **extra}
    record_materialization(
        engine,
        MaterializationRecord(
            job.spec.key, job.run_id, job.action, job.reasons, flow_run_id=job.flow_run_id
        ).finish(Outcome.SKIPPED, error=message, details=details),
    )
    return AssetOutcome(
        job.spec.key,
        Outcome.SKIPPED,
        job.action,
        [r.to_json() for r in job.reasons],
        error=message,
        details=details,
    )


def locked(
    key: str, action: Action | str, reasons: list[dict], exc: LeaseHeld
) -> AssetOutcome:
    """An asset another live run holds: its work, reported, not a failure."""
    rec = exc.lease
    details: dict[str, Any] = {}
    if isinstance(rec, LeaseRecord):
        details = {"holder": rec.holder, "held_by_run": rec.run_id}
    return AssetOutcome(key, Outcome.LOCKED, action, reasons, error=str(exc), details=details)


_BUSY: OrderedDict[str, set[str]] = OrderedDict()
"""Per run: the other runs that kept an asset past this run's lease wait. They are on a long
job; their other assets are left to them at once instead of after another wait each. The
runs of a long-lived worker come and go: only the latest ``_BUSY_RUNS`` are remembered."""
_BUSY_RUNS = 64
_BUSY_LOCK = threading.Lock()


def _busy_runs(run_id: str) -> set[str]:
    with _BUSY_LOCK:
        busy = _BUSY.setdefault(run_id, set())
        _BUSY.move_to_end(run_id)
        while len(_BUSY) > _BUSY_RUNS:
            _BUSY.popitem(last=False)
        return busy


def materialize_asset(
    item: PlanItem,
    specs: Mapping[str, AssetSpec],
    settings: Settings,
    engine: Engine,
    run_id: str,
    flow_run_id: str | None = None,
) -> AssetOutcome:
    """Materialize one planned asset through the write path (the attempt recorded with the
    Prefect flow run it ran in, if any); another run's lease is waited for (bounded), then
    the asset is reported ``locked``."""
    spec = specs[item.key]
    busy = _busy_runs(run_id)
    job = WriteJob(
        spec,
        run_id,
        item.action,
        list(item.reasons),
        basis=item.basis,
        wait=settings.lease_wait,
        flow_run_id=flow_run_id,
        impatient=busy,
    )
    reasons = [r.to_json() for r in item.reasons]
    try:
        out = write_asset(job, specs, settings, engine, get_kind(spec.kind).materialize)
    except LeaseHeld as exc:
        out = locked(spec.key, item.action, reasons, exc)
        if isinstance(exc.lease, LeaseRecord) and exc.lease.run_id:
            busy.add(exc.lease.run_id)
    except Exception as exc:  # the lease itself failed (DB unreachable): nothing was written
        message = redact(one_line(exc), settings)
        log.error("could not take the lease of %s: %s", spec.key, message)
        out = AssetOutcome(spec.key, Outcome.FAILED, item.action, reasons, error=message)
    notify("asset_done", out)
    return out


def skip_cause(out: AssetOutcome) -> SkipCause | None:
    cause = out.details.get("skip") if out.status == Outcome.SKIPPED else None
    return SkipCause(cause) if cause in SkipCause.__members__.values() else None


def blocked_by(
    item: PlanItem,
    graph: nx.DiGraph,
    outcomes: Mapping[str, AssetOutcome],
    partial_inputs_ok: bool = False,
) -> tuple[str, SkipCause] | None:
    """The first planned ancestor that keeps ``item`` from running, and why; or None.

    A failed ancestor blocks. An ancestor another run holds (``locked``) leaves its
    dependents to that run. A ``waiting`` ancestor (OOI still preparing data) blocks only if
    it has no output yet. An ancestor found done by another run blocks nothing. Kinds that
    work with partial inputs (the catalog) are held back by failures only: they take the
    stores as they are committed.
    """
    for anc in sorted(nx.ancestors(graph, item.key)):
        out = outcomes.get(anc)
        if out is None:
            continue
        cause = skip_cause(out)
        if out.status == Outcome.FAILED or cause == SkipCause.UPSTREAM_FAILED:
            return anc, SkipCause.UPSTREAM_FAILED
        if partial_inputs_ok:
            continue
        if out.status == Outcome.LOCKED or cause == SkipCause.UPSTREAM_LOCKED:
            return anc, SkipCause.UPSTREAM_LOCKED
        if cause == SkipCause.UPSTREAM_WAITING or (
            out.status == Outcome.WAITING and not out.details.get("has_output")
        ):
            return anc, SkipCause.UPSTREAM_WAITING
    return None


def is_failure(out: AssetOutcome) -> bool:
    """Failed, or skipped because an input failed. Locked (another run's work), waiting
    on OOI, done by another run: not failures."""
    return out.status == Outcome.FAILED or skip_cause(out) == SkipCause.UPSTREAM_FAILED


SKIP_MESSAGES = {
    SkipCause.UPSTREAM_FAILED: "upstream failed",
    SkipCause.UPSTREAM_WAITING: "upstream waiting on OOI",
    SkipCause.UPSTREAM_LOCKED: "left to the run that holds its upstream",
}


def skip(
    item: PlanItem,
    upstream: str,
    cause: SkipCause,
    outcomes: Mapping[str, AssetOutcome],
    engine: Engine,
    run_id: str,
    flow_run_id: str | None = None,
) -> AssetOutcome:
    message = f"{SKIP_MESSAGES[cause]}: {upstream}"
    held = outcomes[upstream].details.get("held_by_run")
    details: dict[str, Any] = {"skip": str(cause), "upstream": upstream}
    if held:
        details["held_by_run"] = held
    record_materialization(
        engine,
        MaterializationRecord(
            item.key, run_id, item.action, item.reasons, flow_run_id=flow_run_id
        ).finish(Outcome.SKIPPED, error=message, details=details),
    )
    out = AssetOutcome(
        item.key,
        Outcome.SKIPPED,
        item.action,
        [r.to_json() for r in item.reasons],
        error=message,
        details=details,
    )
    notify("asset_done", out)
    return out


def execution_order(items: Sequence[PlanItem], run_id: str) -> list[PlanItem]:
    """The items of a generation in this run's own order (shuffled, seeded by the run id).

    Runs started together then begin on different assets and share the work through the
    leases, instead of queueing behind one another on the same asset.
    """
    order = list(items)
    random.Random(run_id).shuffle(order)
    return order


def reason_objects(reasons: Sequence[dict[str, Any]]) -> list[Reason]:
    return [Reason.from_json(r) for r in reasons]

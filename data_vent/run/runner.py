"""Executing a plan, without Prefect: one asset under its lease, and the generation loop.

``flows.py`` wraps these in Prefect tasks; tests and the core call them directly. Every asset
runs under a DB lease, so two runs (even in two processes) never materialize one asset at
once, and a crashed holder's lease simply expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx
from sqlalchemy.engine import Engine

from data_vent.assets.kinds import MaterializeContext, get_kind
from data_vent.core.plan import PlanItem
from data_vent.core.records import (
    InputVersion,
    MaterializationRecord,
    Reason,
    input_version_record,
)
from data_vent.core.spec import AssetSpec
from data_vent.core.timeutil import utcnow
from data_vent.core.vocab import Action, Outcome
from data_vent.settings import Settings
from data_vent.state import leases
from data_vent.state.materializations import (
    last_success_versions,
    previous_state,
    record_materialization,
)
from data_vent.state.observations import latest_observations

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


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


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


class _LeaseKeeper:
    """Renews a lease in the background while a long materialization runs."""

    def __init__(self, engine: Engine, key: str, holder: str, ttl: float):
        self.engine, self.key, self.holder, self.ttl = engine, key, holder, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.renew()

    def renew(self) -> None:
        try:
            leases.renew_lease(self.engine, self.key, self.holder, self.ttl)
        except Exception:
            log.warning("could not renew the lease of %s", self.key, exc_info=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def materialize_asset(
    item: PlanItem,
    specs: Mapping[str, AssetSpec],
    settings: Settings,
    engine: Engine,
    run_id: str,
    flow_run_id: str | None = None,
) -> AssetOutcome:
    """Materialize one planned asset under its lease and record the attempt (with the
    Prefect flow run it ran in, if any)."""
    spec = specs[item.key]
    attempt = MaterializationRecord(
        spec.key,
        run_id,
        item.action,
        item.reasons,
        code_version=spec.code_version,
        config_hash=spec.config_hash,
        flow_run_id=flow_run_id,
    )
    started = attempt.started_at
    reasons = [r.to_json() for r in item.reasons]
    holder = f"{holder_id()}:{run_id}"
    ttl = settings.lease_seconds
    if not leases.acquire_lease(engine, spec.key, holder, ttl, run_id):
        current = leases.lease_holder(engine, spec.key)
        who = current[0] if current else "another run"
        out = AssetOutcome(
            spec.key,
            Outcome.LOCKED,
            item.action,
            reasons,
            error=f"another run holds the lease ({who})",
        )
        notify("asset_done", out)
        return out
    logger = logging.getLogger(f"data_vent.asset.{spec.key}")
    try:
        with _LeaseKeeper(engine, spec.key, holder, ttl) as keeper:
            inputs = current_inputs(engine, spec, specs)
            ctx = MaterializeContext(
                spec=spec,
                action=item.action,
                reasons=item.reasons,
                inputs=inputs,
                previous=previous_state(engine, spec.key),
                settings=settings,
                engine=engine,
                run_id=run_id,
                logger=logger,
                renew_lease=keeper.renew,
                all_specs=dict(specs),
            )
            result = get_kind(spec.kind).materialize(ctx)
        input_versions = {
            k: input_version_record(k, iv.data_version, iv.observation)
            for k, iv in inputs.items()
        }
        if result.input_versions:
            input_versions.update(result.input_versions)
        record_materialization(
            engine,
            attempt.finish(
                result.status,
                input_versions=input_versions,
                data_version=result.data_version,
                time_min=result.time_min,
                time_max=result.time_max,
                rows=result.rows,
                details=result.metadata,
            ),
        )
        if result.status == Outcome.WAITING:
            result.metadata = {**result.metadata, "has_output": ctx.previous is not None}
        out = AssetOutcome(
            spec.key,
            result.status,
            item.action,
            reasons,
            rows=result.rows,
            time_max=result.time_max.isoformat() if result.time_max else None,
            seconds=(utcnow() - started).total_seconds(),
            details=result.metadata,
        )
    except Exception as exc:  # recorded, reported; the run goes on with the others
        message = redact(one_line(exc), settings)
        logger.error("materialization of %s failed: %s", spec.key, message)
        record_materialization(engine, attempt.finish(Outcome.FAILED, error=message))
        out = AssetOutcome(
            spec.key,
            Outcome.FAILED,
            item.action,
            reasons,
            error=message,
            seconds=(utcnow() - started).total_seconds(),
        )
    finally:
        leases.release_lease(engine, spec.key, holder)
    notify("asset_done", out)
    return out


def blocked_by(
    item: PlanItem,
    graph: nx.DiGraph,
    outcomes: Mapping[str, AssetOutcome],
    partial_inputs_ok: bool = False,
) -> str | None:
    """The first planned ancestor that keeps ``item`` from running, if any.

    Failed, skipped or locked-out ancestors block. A ``waiting`` ancestor (OOI still
    preparing data) blocks only if it has no output yet and ``item`` cannot do without it:
    an existing store is unchanged and valid, and the catalog takes whatever stores exist.
    """
    for anc in nx.ancestors(graph, item.key):
        out = outcomes.get(anc)
        if out is None:
            continue
        if out.status in (Outcome.FAILED, Outcome.SKIPPED, Outcome.LOCKED):
            return anc
        if (
            out.status == Outcome.WAITING
            and not out.details.get("has_output")
            and not (partial_inputs_ok)
        ):
            return anc
    return None


def is_failure(out: AssetOutcome) -> bool:
    """Failed, locked out, or skipped because of a failure (not because OOI is waiting)."""
    if out.status in (Outcome.FAILED, Outcome.LOCKED):
        return True
    return out.status == Outcome.SKIPPED and not (out.error or "").startswith(
        "upstream waiting"
    )


def skip(
    item: PlanItem,
    upstream: str,
    outcomes: Mapping[str, AssetOutcome],
    engine: Engine,
    run_id: str,
    flow_run_id: str | None = None,
) -> AssetOutcome:
    why = outcomes[upstream].status
    reason = {
        Outcome.FAILED: "upstream failed",
        Outcome.SKIPPED: "upstream failed",
        Outcome.WAITING: "upstream waiting on OOI",
    }.get(why, f"upstream {why}")
    message = f"{reason}: {upstream}"
    record_materialization(
        engine,
        MaterializationRecord(
            item.key, run_id, item.action, item.reasons, flow_run_id=flow_run_id
        ).finish(Outcome.SKIPPED, error=message),
    )
    out = AssetOutcome(
        item.key,
        Outcome.SKIPPED,
        item.action,
        [r.to_json() for r in item.reasons],
        error=message,
    )
    notify("asset_done", out)
    return out


def run_generations(
    generations: Sequence[Sequence[PlanItem]],
    graph: nx.DiGraph,
    engine: Engine,
    run_id: str,
    run_batch: Callable[[list[PlanItem]], list[AssetOutcome]],
    partial_inputs_ok: set[str] | None = None,
    flow_run_id: str | None = None,
) -> dict[str, AssetOutcome]:
    """Run generations in order; inside one, ``run_batch`` runs items concurrently.

    An item whose planned ancestor did not succeed is skipped (recorded), the others go on.
    """
    outcomes: dict[str, AssetOutcome] = {}
    for gen in generations:
        runnable = []
        for item in gen:
            up = blocked_by(item, graph, outcomes, item.key in (partial_inputs_ok or ()))
            if up is not None:
                outcomes[item.key] = skip(item, up, outcomes, engine, run_id, flow_run_id)
            else:
                runnable.append(item)
        for out in run_batch(runnable):
            outcomes[out.key] = out
    return outcomes


def reason_objects(reasons: Sequence[dict[str, Any]]) -> list[Reason]:
    return [Reason.from_json(r) for r in reasons]

"""The OOI asset kinds: the observable source (``ooi/<table>``) and the stream store.

A stream store's materialization is a pipeline of named stages:

1. ``choose_range``: from the store's end to the source's end (the whole stream on a full
   build or rebuild);
2. ``request_or_resume``: resume the outstanding OOI request; for a full build or rebuild
   take a finished request in the account's THREDDS folder that covers the range
   (``ooi/reuse.py``); else ask OOI once;
3. ``wait_for``: a bounded wait, else the request stays in the DB and the asset is
   ``waiting``;
4. ``download``: the request's files, into a scratch folder;
5. ``write``: normalise -> append or rebuild (crash-safe) -> checks, then provenance (data
   version, time coverage, rows).

A stage that ends the harvest early (OOI has nothing new, no files) raises ``Finished``.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from data_vent.assets.kinds import (
    AssetKind,
    MaterializeContext,
    MaterializeResult,
    as_url,
)
from data_vent.core.errors import (
    DataVentError,
    OOINoData,
    OOINotFound,
    OOIRequestFailed,
)
from data_vent.core.records import Observation, ObserveFailure, input_version_record
from data_vent.core.snapshot import RequestRecord
from data_vent.core.timeutil import to_naive_utc
from data_vent.core.vocab import Action, Outcome, ReasonCode, RequestStatus
from data_vent.ooi import requests_state as rq
from data_vent.ooi.client import OOIClient
from data_vent.ooi.ratelimit import limiter_for
from data_vent.settings import Settings

log = logging.getLogger("data_vent.ooi")

REBUILD_ACTIONS = (Action.FULL, Action.REBUILD)


class OOISourceKind(AssetKind):
    """An OOI stream as M2M reports it; one ``metadata/times`` call per instrument."""

    name = "ooi_source"
    observable = True

    def location(self, spec, settings) -> str:
        """The stream's M2M data endpoint (credentials go in a header, never the URL)."""
        from data_vent.ooi.client import SENSOR_PORT
        from data_vent.ooi.names import parse_table

        t = parse_table(spec.key.removeprefix("ooi/"))
        path = f"{SENSOR_PORT}/sensor/inv/{t.site}/{t.node}/{t.sensor}/{t.method}/{t.stream}"
        return f"{settings.ooi_url.rstrip('/')}/{path}"

    def observe(self, specs, settings, engine):
        """One entry per source: its observation, or why it could not be observed."""
        from data_vent.core.keys import source_key
        from data_vent.ooi.observe import observe_instruments

        tables = [s.key.removeprefix("ooi/") for s in specs]
        width = settings.observe_concurrency
        if settings.ooi_max_calls > 0:  # more threads than slots would only queue
            width = min(width, settings.ooi_max_calls)
        with OOIClient(settings, limiter=limiter_for(settings, engine)) as client:
            result = observe_instruments(client, tables, width)
        failures = [
            ObserveFailure(source_key(table), e.error, e.error_type)
            for e in result.errors
            for table in e.tables
        ]
        return [*result, *failures]


class OOIStreamKind(AssetKind):
    """One Zarr store per OOI stream, fed by its source."""

    name = "ooi_stream"

    def store(self, key: str, settings: Settings):
        from data_vent.store import StreamStore

        return StreamStore(
            f"{settings.resolved_storage()}/{key}",
            settings.storage_options(),
            settings.chunk_target_bytes,
            table=key,
        )

    def exists(self, spec, settings) -> bool:
        return self.store(spec.key, settings).exists()

    def needs_repair(self, spec, settings) -> bool:
        from data_vent.store.commit import read_journal

        return read_journal(self.store(spec.key, settings).loc) is not None

    def repair(self, spec, settings) -> str | None:
        from data_vent.store.commit import repair_pending

        return repair_pending(self.store(spec.key, settings).loc)

    def output_state(self, spec, settings) -> MaterializeResult | None:
        store = self.store(spec.key, settings)
        return _result(store, {}) if store.exists() else None

    def location(self, spec, settings) -> str:
        return as_url(f"{settings.resolved_storage()}/{spec.key}")

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        job = choose_range(ctx, self.store(ctx.spec.key, ctx.settings))
        try:
            with OOIClient(
                ctx.settings, limiter=limiter_for(ctx.settings, ctx.engine)
            ) as client:
                req = request_or_resume(job, client)
                req = wait_for(job, client, req)
                with tempfile.TemporaryDirectory(
                    prefix="dv-dl-",
                    dir=_download_dir(ctx.settings),
                    ignore_cleanup_errors=True,
                ) as tmp:
                    paths = download(job, client, req, Path(tmp))
                    return write(job, req, paths)
        except Finished as done:
            return done.result


class Finished(Exception):  # noqa: N818  (a stage's early result, not an error)
    """A stage ended the harvest early with this result (nothing new, OOI still busy)."""

    def __init__(self, result: MaterializeResult):
        super().__init__(result.status)
        self.result = result


@dataclass
class StreamJob:
    """What the stages share: the asset, its store, the source observation, the mode."""

    ctx: MaterializeContext
    store: Any
    source: str
    obs: Observation
    rebuild: bool
    reused: Any = None
    """The finished request of the account's folder the harvest took (``ooi.reuse``)."""

    @property
    def key(self) -> str:
        return self.ctx.spec.key


def choose_range(ctx: MaterializeContext, store: Any) -> StreamJob:
    """Repair the store, read the source's latest observation, and decide append or rebuild."""
    key = ctx.spec.key
    store.repair()
    src = next(d for d in ctx.spec.deps if ctx.all_specs[d].observable)
    obs = ctx.inputs[src].observation
    if obs is None or obs.end_time is None:
        raise DataVentError(
            f"{key}: OOI reports no data for this stream yet; run `data-vent observe`"
        )
    refresh = bool(ctx.spec.config.get("refresh")) and ctx.action != Action.APPEND
    rebuild = ctx.action in REBUILD_ACTIONS or not store.exists() or refresh
    return StreamJob(ctx, store, src, obs, rebuild)


def request_or_resume(job: StreamJob, client: OOIClient) -> RequestRecord:
    """The outstanding request of an earlier run (OOI is never asked twice), else a new one
    from the store's end (or the stream's begin on a rebuild) to the source's end."""
    engine, store, obs = job.ctx.engine, job.store, job.obs
    info = store.info()
    open_reqs = rq.outstanding_requests(engine, job.key)
    if open_reqs and job.rebuild and store.exists():
        open_reqs = _drop_superseded(engine, open_reqs, obs.begin_time)
    if open_reqs:
        req = open_reqs[-1]
        job.rebuild = not store.exists() or (
            info.time_min is not None
            and req.range_begin is not None
            and req.range_begin <= info.time_min
        )
        return req
    begin = obs.begin_time if job.rebuild or info.time_max is None else info.time_max
    if job.rebuild:
        job.reused = _finished_request(job, client, begin, obs.end_time)
    if job.reused is not None:
        found = job.reused
        return rq.adopt_finished(
            engine,
            job.key,
            begin,
            obs.end_time,
            job.ctx.run_id,
            output_url=found.catalog_url,
            status_url=found.status_url,
            files=found.listing.data + found.listing.provenance,
        )
    try:
        return rq.ensure_request(engine, client, job.key, begin, obs.end_time, job.ctx.run_id)
    except OOINoData as exc:
        if not store.exists():
            raise
        note = {"mode": "none", "note": "OOI: no new data", "ooi": _ooi_text(exc)}
        raise Finished(_result(store, note)) from None
    except OOINotFound as exc:
        raise OOINotFound(
            f"{job.key}: OOI no longer knows this stream (discontinued?); check it "
            "on OOINet and remove or disable its harvest config "
            f"[{_ooi_text(exc)}]",
            url=exc.url,
            status_code=exc.status_code,
            ooi_message=exc.ooi_message,
        ) from None


def wait_for(job: StreamJob, client: OOIClient, req: RequestRecord) -> RequestRecord:
    """Check the request for a bounded time: ready goes on, pending leaves it ``waiting``."""
    settings = job.ctx.settings
    job.ctx.renew_lease()
    req = rq.wait_until_ready(
        job.ctx.engine,
        client,
        req,
        settings.ooi_request_wait,
        settings.ooi_poll_interval,
        table=job.key,
    )
    if req.status == RequestStatus.PENDING:
        raise Finished(
            MaterializeResult(
                status=Outcome.WAITING,
                metadata={"request": req.request_uuid, "since": str(req.created_at)},
            )
        )
    if req.status != RequestStatus.READY:
        why = f": {req.error}" if req.error else ""
        raise OOIRequestFailed(f"{job.key}: OOI request {req.request_uuid} {req.status}{why}")
    return req


def download(
    job: StreamJob, client: OOIClient, req: RequestRecord, folder: Path
) -> list[Path]:
    """The request's data files, renewing the lease after each (downloads can be long)."""
    paths = []
    for f in rq.request_files(req, "data"):
        paths.append(client.download(f, folder))
        job.ctx.renew_lease()
    if not paths:
        rq.mark_done(job.ctx.engine, req)
        if not job.store.exists():
            raise DataVentError(
                f"{job.key}: OOI request {req.request_uuid} returned no file for this stream"
            )
        raise Finished(_result(job.store, {"mode": "none", "note": "no files"}))
    return paths


def write(job: StreamJob, req: RequestRecord, paths: list[Path]) -> MaterializeResult:
    """Append or rebuild the store from the files; close the request; the provenance."""
    store = job.store
    outcome = store.rebuild_from_files(paths) if job.rebuild else store.append_files(paths)
    rq.mark_done(job.ctx.engine, req)
    if outcome.needs_rebuild:
        raise DataVentError(
            f"{job.key}: needs a rebuild ({outcome.rebuild_reason}); "
            f"run `data-vent materialize {job.key} --refresh`"
        )
    meta = {
        "mode": outcome.mode,
        "request": req.request_uuid,
        "range": [str(req.range_begin), str(req.range_end)],
        "files": [p.name for p in paths],
        "rows_added": outcome.rows_added,
        "rules_applied": outcome.rules_applied,
    }
    if job.reused is not None:
        meta["reused_request"] = job.reused.details()
    return _result(store, meta, _harvested_input(job.source, job.obs, req))


def _result(store: Any, meta: dict, input_versions: dict | None = None) -> MaterializeResult:
    from data_vent.store.outcome import data_version

    info = store.info()
    return MaterializeResult(
        data_version=data_version(info.version, info.rows, info.time_max),
        time_min=info.time_min,
        time_max=info.time_max,
        rows=info.rows,
        metadata=meta,
        input_versions=input_versions,
    )


def _finished_request(job: StreamJob, client: OOIClient, begin, end):
    """A finished request of this stream in the account's THREDDS folder covering the
    range, unless OOI reprocessed the stream (its old results are what changed)."""
    from data_vent.ooi import reuse

    ctx = job.ctx
    reprocessed = any(r.code == ReasonCode.SOURCE_REPROCESSED for r in ctx.reasons)
    if begin is None or end is None or reprocessed:
        return None
    account = ctx.settings.ooi_results_url or reuse.account_url(rq.last_output_url(ctx.engine))
    if account is None:
        return None
    return reuse.find_finished(client, account, job.key, begin, end)


def _drop_superseded(
    engine: Any, open_reqs: list[RequestRecord], begin: datetime | None
) -> list[RequestRecord]:
    """A rebuild needs the whole stream: an outstanding request starting later (an
    append's range) cannot serve it, so it is closed instead of resumed."""
    want = to_naive_utc(begin) if begin is not None else None
    keep = []
    for req in open_reqs:
        if want is not None and req.range_begin is not None and req.range_begin > want:
            rq.mark_failed(engine, req, "superseded by a rebuild of the whole stream")
        else:
            keep.append(req)
    return keep


def _harvested_input(src: str, obs: Observation, req: RequestRecord) -> dict | None:
    """The source version actually harvested when a resumed request ends before the
    latest observation: its range end (count unknown), so the planner still sees
    ``source_advanced`` for the rest instead of believing the store caught up."""
    end = req.range_end
    if end is None or obs.end_time is None or end >= to_naive_utc(obs.end_time):
        return None
    harvested = Observation(obs.source_key, obs.begin_time, end, None)
    return {src: input_version_record(src, harvested.data_version, harvested)}


def _ooi_text(exc: OOINotFound | OOINoData) -> str:
    """OOI's own words from a typed error, kept short."""
    return " ".join((exc.ooi_message or str(exc)).split())[:200]


def _download_dir(settings: Settings) -> str:
    path = settings.home / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)

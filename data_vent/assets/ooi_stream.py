"""The OOI asset kinds: the observable source (``ooi/<table>``) and the stream store.

A stream store's materialization: request the range from the store's end to the source's
end (the whole stream on a full build or rebuild) -> wait a bounded time, or leave the
request in the DB and report ``waiting`` -> download the files -> normalise -> append or
rebuild (crash-safe) -> checks -> provenance (data version, time coverage, rows).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from data_vent.assets.kinds import (
    AssetKind,
    MaterializeContext,
    MaterializeResult,
    register_kind,
)
from data_vent.core.errors import DataVentError
from data_vent.core.records import Observation, input_version_record
from data_vent.core.timeutil import to_naive_utc
from data_vent.core.vocab import Action, Outcome, RequestStatus
from data_vent.settings import Settings

log = logging.getLogger("data_vent.ooi")

REBUILD_ACTIONS = (Action.FULL, Action.REBUILD)


class OOISourceKind(AssetKind):
    """An OOI stream as M2M reports it; one ``metadata/times`` call per instrument."""

    name = "ooi_source"
    observable = True

    def observe(self, specs, settings, engine):
        from data_vent.ooi.client import OOIClient
        from data_vent.ooi.observe import observe_instruments

        tables = [s.key.removeprefix("ooi/") for s in specs]
        with OOIClient(settings) as client:
            result = observe_instruments(client, tables, settings.observe_concurrency)
        if result.errors and not list(result):
            # nothing answered: say so once, rather than one line per instrument
            from data_vent.core.errors import OOIUnavailable

            first = result.errors[0]
            if first.error_type == "OOIUnavailable":
                raise OOIUnavailable(first.error)
        return list(result)


class OOIStreamKind(AssetKind):
    """One Zarr store per OOI stream, fed by its source."""

    name = "ooi_stream"

    def store(self, key: str, settings: Settings):
        from data_vent.store import StreamStore

        return StreamStore(
            f"{settings.resolved_storage()}/{key}",
            settings.storage_options(),
            settings.chunk_target_bytes,
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
        return self._result(store, {}) if store.exists() else None

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        from data_vent.core.errors import OOINoData, OOINotFound, OOIRequestFailed
        from data_vent.ooi import requests_state as rq
        from data_vent.ooi.client import OOIClient

        settings, key = ctx.settings, ctx.spec.key
        store = self.store(key, settings)
        store.repair()
        src = next(d for d in ctx.spec.deps if ctx.all_specs[d].observable)
        obs = ctx.inputs[src].observation
        if obs is None or obs.end_time is None:
            raise DataVentError(
                f"{key}: OOI reports no data for this stream yet; run `data-vent observe`"
            )
        info = store.info()
        rebuild = (
            ctx.action in REBUILD_ACTIONS
            or not store.exists()
            or bool(ctx.spec.config.get("refresh"))
            and ctx.action != Action.APPEND
        )
        with OOIClient(settings) as client:
            open_reqs = rq.outstanding_requests(ctx.engine, key)
            if open_reqs and rebuild and store.exists():
                open_reqs = _drop_superseded(ctx.engine, open_reqs, obs.begin_time)
            if open_reqs:  # resume what an earlier run asked for; never ask OOI twice
                req = open_reqs[-1]
                rebuild = not store.exists() or (
                    info.time_min is not None
                    and req.range_begin is not None
                    and req.range_begin <= info.time_min
                )
            else:
                begin = obs.begin_time if rebuild or info.time_max is None else info.time_max
                try:
                    req = rq.ensure_request(
                        ctx.engine, client, key, begin, obs.end_time, ctx.run_id
                    )
                except OOINoData:
                    if not store.exists():
                        raise
                    return self._result(store, {"mode": "none", "note": "OOI: no new data"})
                except OOINotFound as exc:
                    raise OOINotFound(
                        f"{key}: OOI no longer knows this stream (discontinued?); check it "
                        "on OOINet and remove or disable its harvest config "
                        f"[{_ooi_text(exc)}]"
                    ) from None
            ctx.renew_lease()
            req = rq.wait_until_ready(
                ctx.engine,
                client,
                req,
                settings.ooi_request_wait,
                settings.ooi_poll_interval,
                table=key,
            )
            if req.status == RequestStatus.PENDING:
                return MaterializeResult(
                    status=Outcome.WAITING,
                    metadata={"request": req.request_uuid, "since": str(req.created_at)},
                )
            if req.status != RequestStatus.READY:
                why = f": {req.error}" if req.error else ""
                raise OOIRequestFailed(
                    f"{key}: OOI request {req.request_uuid} {req.status}{why}"
                )
            files = rq.request_files(req, "data")
            tmp = Path(tempfile.mkdtemp(prefix="dv-dl-", dir=_download_dir(settings)))
            try:
                paths = []
                for f in files:
                    paths.append(client.download(f, tmp))
                    ctx.renew_lease()
                if not paths:
                    rq.mark_done(ctx.engine, req)
                    if not store.exists():
                        raise DataVentError(
                            f"{key}: OOI request {req.request_uuid} "
                            "returned no file for this stream"
                        )
                    return self._result(store, {"mode": "none", "note": "no files"})
                outcome = (
                    store.rebuild_from_files(paths) if rebuild else store.append_files(paths)
                )
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        if outcome.needs_rebuild:
            rq.mark_done(ctx.engine, req)
            raise DataVentError(
                f"{key}: needs a rebuild ({outcome.rebuild_reason}); "
                f"run `data-vent materialize {key} --refresh`"
            )
        rq.mark_done(ctx.engine, req)
        harvested = _harvested_input(src, obs, req)
        meta = {
            "mode": outcome.mode,
            "request": req.request_uuid,
            "range": [str(req.range_begin), str(req.range_end)],
            "files": [p.name for p in paths],
            "rows_added": outcome.rows_added,
            "rules_applied": outcome.rules_applied,
        }
        return self._result(store, meta, harvested)

    def _result(
        self, store, meta: dict, input_versions: dict | None = None
    ) -> MaterializeResult:
        from data_vent.store.writer import data_version

        info = store.info()
        return MaterializeResult(
            data_version=data_version(info.version, info.rows, info.time_max),
            time_min=info.time_min,
            time_max=info.time_max,
            rows=info.rows,
            metadata=meta,
            input_versions=input_versions,
        )


def _drop_superseded(engine, open_reqs: list, begin: datetime | None) -> list:
    """A rebuild needs the whole stream: an outstanding request starting later (an
    append's range) cannot serve it, so it is closed instead of resumed."""
    from data_vent.ooi import requests_state as rq

    want = to_naive_utc(begin) if begin is not None else None
    keep = []
    for req in open_reqs:
        if want is not None and req.range_begin is not None and req.range_begin > want:
            rq.mark_failed(engine, req, "superseded by a rebuild of the whole stream")
        else:
            keep.append(req)
    return keep


def _harvested_input(src: str, obs: Observation, req) -> dict | None:
    """The source version actually harvested when a resumed request ends before the
    latest observation: its range end (count unknown), so the planner still sees
    ``source_advanced`` for the rest instead of believing the store caught up."""
    end = req.range_end
    if end is None or obs.end_time is None or end >= to_naive_utc(obs.end_time):
        return None
    harvested = Observation(obs.source_key, obs.begin_time, end, None)
    return {src: input_version_record(src, harvested.data_version, harvested)}


def _ooi_text(exc: Exception) -> str:
    """OOI's own words from a typed error (the text after the URL), kept short."""
    tail = str(exc).split("): ", 1)[-1]
    return " ".join(tail.split())[:200]


def _download_dir(settings: Settings) -> str:
    path = settings.home / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


register_kind(OOISourceKind())
register_kind(OOIStreamKind())

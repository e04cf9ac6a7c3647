"""Derived assets, computed from the stream stores and downstream of them in the graph.

* ``<table>/availability``: rows per hour, day and month of one store, written as JSON to
  ``<storage>/_derived/<table>/availability.json``;
* ``catalog``: an intake catalog ``catalog.yaml`` of all stores (driver zarr, consolidated,
  storage options, the stream's metadata) with ``index.json`` and ``stats.json`` beside it.

Outputs live outside the stores' folders, so a store rebuild never touches them. They go
stale by ``upstream_changed`` (a store's data version moved) and are redone in the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import xarray as xr
import yaml
from fsspec.implementations.local import LocalFileSystem

from data_vent.assets.kinds import (
    AssetKind,
    MaterializeContext,
    MaterializeResult,
)
from data_vent.core.timeutil import utcnow
from data_vent.settings import Settings

DERIVED_DIR = "_derived"
PUBLIC_ATTRS = (
    "title",
    "summary",
    "institution",
    "source",
    "references",
    "comment",
    "Notes",
    "Owner",
    "stream",
    "node",
    "subsite",
    "sensor",
    "collection_method",
)
PRODUCT_ATTRS = (
    "long_name",
    "units",
    "comment",
    "data_product_identifier",
    "precision",
    "standard_name",
    "ancillary_variables",
    "coordinates",
)


def write_atomic(url: str, data: bytes, settings: Settings) -> None:
    """Write one object so readers see the old or the new content (tmp + move locally)."""
    fs, path = fsspec.core.url_to_fs(url, **settings.storage_options())
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    else:  # an S3 PUT of one object is atomic
        fs.pipe(path, data)


def exists_url(url: str, settings: Settings) -> bool:
    fs, path = fsspec.core.url_to_fs(url, **settings.storage_options())
    return fs.exists(path)


def open_store(url: str, settings: Settings) -> xr.Dataset:
    return xr.open_zarr(
        url,
        consolidated=True,
        storage_options=settings.storage_options() or None,
        decode_times=True,
    )


def _version(payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]


def availability_counts(times: np.ndarray) -> dict[str, dict[str, int]]:
    """Rows per hour, day and month of a datetime64 array."""
    idx = pd.DatetimeIndex(times)
    out: dict[str, dict[str, int]] = {}
    for name, fmt in (("hourly", "%Y-%m-%dT%H"), ("daily", "%Y-%m-%d"), ("monthly", "%Y-%m")):
        counts = pd.Series(1, index=idx.strftime(fmt)).groupby(level=0).sum()
        out[name] = {str(k): int(v) for k, v in counts.items()}
    return out


class AvailabilityKind(AssetKind):
    name = "availability"

    def output_url(self, key: str, settings: Settings) -> str:
        return f"{settings.resolved_storage()}/{DERIVED_DIR}/{key}.json"

    def exists(self, spec, settings) -> bool:
        return exists_url(self.output_url(spec.key, settings), settings)

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        (store_key,) = ctx.spec.deps
        with open_store(ctx.storage_url(store_key), ctx.settings) as ds:
            times = ds["time"].values
        counts = availability_counts(times)
        payload = {
            "asset": ctx.spec.key,
            "store": store_key,
            "store_data_version": ctx.inputs[store_key].data_version,
            "rows": int(times.size),
            "time_min": str(pd.Timestamp(times.min())) if times.size else None,
            "time_max": str(pd.Timestamp(times.max())) if times.size else None,
            **counts,
        }
        write_atomic(
            self.output_url(ctx.spec.key, ctx.settings),
            json.dumps(payload, indent=1).encode(),
            ctx.settings,
        )
        return MaterializeResult(
            data_version=_version(payload),
            time_min=pd.Timestamp(times.min()).to_pydatetime() if times.size else None,
            time_max=pd.Timestamp(times.max()).to_pydatetime() if times.size else None,
            rows=int(times.size),
            metadata={
                "hours": len(counts["hourly"]),
                "days": len(counts["daily"]),
                "months": len(counts["monthly"]),
            },
        )


class CatalogKind(AssetKind):
    name = "catalog"
    partial_inputs_ok = True  # lists the stores that exist; one waiting on OOI joins later

    def exists(self, spec, settings) -> bool:
        return exists_url(f"{settings.resolved_storage()}/catalog.yaml", settings)

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        settings = ctx.settings
        root = settings.resolved_storage()
        public_opts = {"anon": True} if root.startswith("s3://") else {}
        sources: dict[str, Any] = {}
        index: list[dict[str, Any]] = []
        stats: dict[str, Any] = {
            "streams": 0,
            "rows": 0,
            "bytes_uncompressed": 0,
            "by_site": {},
        }
        missing = []
        for key in sorted(ctx.spec.deps):
            url = ctx.storage_url(key)
            try:
                ds = open_store(url, settings)
            except (FileNotFoundError, KeyError, ValueError):
                missing.append(key)  # not harvested yet (e.g. waiting on OOI)
                continue
            spec = ctx.all_specs.get(key)
            tags = dict(spec.tags) if spec else {}
            rows = int(ds.sizes.get("time", 0))
            tmin = str(pd.Timestamp(ds["time"].values.min())) if rows else None
            tmax = str(pd.Timestamp(ds["time"].values.max())) if rows else None
            products = []
            for name, var in ds.data_vars.items():
                attrs = {k: _plain(var.attrs[k]) for k in PRODUCT_ATTRS if k in var.attrs}
                if attrs:
                    products.append({"reference_designator": name, **attrs})
            sources[key] = {
                "args": {"consolidated": True, "storage_options": public_opts, "urlpath": url},
                "description": f"OOI stream {key}"
                + (
                    f", Stream Engine {ds.attrs['stream_engine_version']}"
                    if "stream_engine_version" in ds.attrs
                    else ""
                ),
                "driver": "zarr",
                "metadata": {
                    "id": key,
                    "reference_designator": tags.get("instrument"),
                    "stream": tags.get("stream"),
                    "method": tags.get("method"),
                    "site": tags.get("site"),
                    "time_coverage_start": tmin,
                    "time_coverage_end": tmax,
                    "rows": rows,
                    "attributes": {
                        k: _plain(ds.attrs[k]) for k in PUBLIC_ATTRS if k in ds.attrs
                    },
                    "data_products": products,
                },
            }
            nbytes = int(sum(v.size * v.dtype.itemsize for v in ds.variables.values()))
            index.append(
                {
                    "key": key,
                    "urlpath": url,
                    "rows": rows,
                    "time_min": tmin,
                    "time_max": tmax,
                    "variables": len(ds.data_vars),
                }
            )
            site = tags.get("site", "?")
            stats["streams"] += 1
            stats["rows"] += rows
            stats["bytes_uncompressed"] += nbytes
            stats["by_site"].setdefault(site, {"streams": 0, "rows": 0})
            stats["by_site"][site]["streams"] += 1
            stats["by_site"][site]["rows"] += rows
            ds.close()
        stats["missing"] = missing
        catalog = {
            "description": "OOI Regional Cabled Array data streams harvested by data-vent.",
            "metadata": {"version": "0.1.0", "generated_by": "data-vent"},
            "name": "OOI Data Streams Catalog",
            "sources": sources,
        }
        version = _version([catalog, index, stats])
        generated = utcnow().isoformat()
        catalog["metadata"]["last_updated"] = generated
        write_atomic(f"{root}/index.json", json.dumps(index, indent=1).encode(), settings)
        write_atomic(f"{root}/stats.json", json.dumps(stats, indent=1).encode(), settings)
        write_atomic(
            f"{root}/catalog.yaml", yaml.safe_dump(catalog, sort_keys=False).encode(), settings
        )
        return MaterializeResult(
            data_version=version,
            rows=stats["rows"],
            metadata={"streams": stats["streams"], "missing": missing},
        )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value

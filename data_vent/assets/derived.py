"""Derived assets, computed from the stream stores and downstream of them in the graph.

* ``<table>/availability``: rows per hour, day and month of one store, written as JSON to
  ``<storage>/_derived/<table>/availability.json``, and a picture of it (rows per day over
  the stream's life, days without data marked) in ``availability.png`` beside it;
* ``catalog``: an intake catalog ``catalog.yaml`` of all stores (intake's catalog format 1,
  which intake 2 and 0.7 both open; driver zarr, consolidated, the storage options a reader
  needs and never a secret, local paths relative to the catalog, the stream's metadata),
  ``index.json`` and ``stats.json`` beside it, and a STAC catalog under ``stac/`` (one
  collection per site, one item per stream with its Zarr asset; see ``data_vent.assets.stac``).

Outputs live outside the stores' folders, so a store rebuild never touches them. They go
stale by ``upstream_changed`` (a store's data version moved) and are redone in the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import fsspec
import yaml
from fsspec.implementations.local import LocalFileSystem

from data_vent.assets.kinds import (
    AssetKind,
    MaterializeContext,
    MaterializeResult,
    as_url,
)
from data_vent.core.timeutil import utcnow
from data_vent.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr

# numpy, pandas and xarray are imported where a materialization needs them: every command
# loads this kind to read the configs, and `status` or `why` should not pay ~0.5 s for them.

DERIVED_DIR = "_derived"
CATALOG_NAME = "OOI Data Streams Catalog"
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


def read_json(url: str, settings: Settings) -> Any | None:
    """A JSON output, or None where there is none (yet)."""
    fs, path = fsspec.core.url_to_fs(url, **settings.storage_options())
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None


def reader_storage_options(settings: Settings) -> dict[str, Any]:
    """What a reader of the catalogs needs to open the stores: for S3 the endpoint and
    whether to read anonymously (``DATA_VENT_CATALOG_ANON``), never a key or a secret."""
    if not settings.resolved_storage().startswith("s3://"):
        return {}
    opts: dict[str, Any] = {"anon": settings.catalog_anon}
    if settings.s3_endpoint_url:
        opts["client_kwargs"] = {"endpoint_url": settings.s3_endpoint_url}
    return opts


def exists_url(url: str, settings: Settings) -> bool:
    fs, path = fsspec.core.url_to_fs(url, **settings.storage_options())
    return fs.exists(path)


def open_store(url: str, settings: Settings) -> xr.Dataset:
    import xarray as xr

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
    import pandas as pd

    idx = pd.DatetimeIndex(times)
    out: dict[str, dict[str, int]] = {}
    for name, fmt in (("hourly", "%Y-%m-%dT%H"), ("daily", "%Y-%m-%d"), ("monthly", "%Y-%m")):
        counts = pd.Series(1, index=idx.strftime(fmt)).groupby(level=0).sum()
        out[name] = {str(k): int(v) for k, v in counts.items()}
    return out


def availability_png(daily: dict[str, int], title: str) -> bytes:
    """Rows per day over a stream's whole life as a PNG; days without a row are marked red
    under the axis, so a gap shows however short. Agg, no pyplot: safe in worker threads."""
    from io import BytesIO

    import numpy as np
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if daily:
        days = pd.date_range(min(daily), max(daily), freq="D")
        rows = np.array([daily.get(f"{d:%Y-%m-%d}", 0) for d in days])
        # one filled step outline, not a bar per day: 4,000 bars took 4.9 s to draw
        edges = days.append(pd.DatetimeIndex([days[-1] + pd.Timedelta(days=1)]))
        edges = edges - pd.Timedelta(hours=12)  # each day's step centred on its date
        ax.stairs(rows, edges, fill=True, color="#1565c0", linewidth=1, snap=True)
        gaps = days[rows == 0]
        if len(gaps):
            ax.plot(
                gaps,
                np.zeros(len(gaps)),
                "|",
                color="#c62828",
                markersize=10,
                label=f"{len(gaps)} days without data",
            )
            ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.set_xlim(days[0] - pd.Timedelta(days=1), days[-1] + pd.Timedelta(days=1))
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("rows per day")
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(axis="y", color="#e0e0e0", linewidth=0.5)
    out = BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


class AvailabilityKind(AssetKind):
    name = "availability"

    def output_url(self, key: str, settings: Settings) -> str:
        return f"{settings.resolved_storage()}/{DERIVED_DIR}/{key}.json"

    def plot_url(self, key: str, settings: Settings) -> str:
        return f"{settings.resolved_storage()}/{DERIVED_DIR}/{key}.png"

    def exists(self, spec, settings) -> bool:
        return exists_url(self.output_url(spec.key, settings), settings)

    def location(self, spec, settings) -> str:
        return as_url(self.output_url(spec.key, settings))

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        import pandas as pd

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
            self.plot_url(ctx.spec.key, ctx.settings),
            availability_png(counts["daily"], store_key),
            ctx.settings,
        )
        write_atomic(  # last: its presence says the asset exists
            self.output_url(ctx.spec.key, ctx.settings),
            json.dumps(payload, indent=1).encode(),
            ctx.settings,
        )
        return MaterializeResult(
            data_version=_version(payload),
            time_min=_pydatetime(times.min()) if times.size else None,
            time_max=_pydatetime(times.max()) if times.size else None,
            rows=int(times.size),
            metadata={
                "hours": len(counts["hourly"]),
                "days": len(counts["daily"]),
                "months": len(counts["monthly"]),
                "plot": self.plot_url(ctx.spec.key, ctx.settings),
            },
        )


class CatalogKind(AssetKind):
    name = "catalog"
    partial_inputs_ok = True  # lists the stores that exist; one waiting on OOI joins later

    def exists(self, spec, settings) -> bool:
        return exists_url(f"{settings.resolved_storage()}/catalog.yaml", settings)

    def location(self, spec, settings) -> str:
        return as_url(f"{settings.resolved_storage()}/catalog.yaml")

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        import pandas as pd

        from data_vent.assets.stac import StreamEntry, write_stac

        settings = ctx.settings
        root = settings.resolved_storage()
        reader_opts = reader_storage_options(settings)
        local = not root.startswith("s3://")
        entries: list[StreamEntry] = []
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
            args: dict[str, Any] = {
                # relative to the catalog where local, so a moved folder still opens
                "urlpath": "{{ CATALOG_DIR }}/" + key if local else url,
                "consolidated": True,
            }
            if reader_opts:
                args["storage_options"] = reader_opts
            sources[key] = {
                "args": args,
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
            entries.append(StreamEntry.from_dataset(key, url, tags, ds))
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
            # `version` is intake's catalog-format version (1: what intake 2 and 0.7 read)
            "metadata": {"version": 1, "generated_by": "data-vent", "name": CATALOG_NAME},
            "sources": sources,
        }
        version = _version([catalog, index, stats])
        generated = utcnow().isoformat()
        catalog["metadata"]["last_updated"] = generated
        stac_items = write_stac(entries, root, reader_opts, settings, write_atomic)
        write_atomic(f"{root}/index.json", json.dumps(index, indent=1).encode(), settings)
        write_atomic(f"{root}/stats.json", json.dumps(stats, indent=1).encode(), settings)
        write_atomic(
            f"{root}/catalog.yaml", yaml.safe_dump(catalog, sort_keys=False).encode(), settings
        )
        return MaterializeResult(
            data_version=version,
            rows=stats["rows"],
            metadata={
                "streams": stats["streams"],
                "missing": missing,
                "stac_items": stac_items,
            },
        )


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _pydatetime(value) -> datetime:
    """To the microsecond, quietly: real OOI times carry sub-microsecond digits."""
    import pandas as pd

    return pd.Timestamp(value).to_pydatetime(warn=False)

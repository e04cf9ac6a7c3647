"""The STAC catalog of the stores (pystac), written beside ``catalog.yaml`` under ``stac/``.

One collection per site, one item per stream: its Zarr store as the ``data`` asset with the
xarray-assets fields (how to open it: ``xarray:open_kwargs``, ``xarray:storage_options``),
the stream's time extent, and its variables with their units (datacube ``cube:variables``).
Links and local asset hrefs are relative, so a moved folder still reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

STAC_DIR = "stac"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
DATACUBE = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
XARRAY_ASSETS = "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json"
WHOLE_EARTH = [-180.0, -90.0, 180.0, 90.0]


@dataclass
class StreamEntry:
    """What the STAC item of one store says, read once from the open store."""

    key: str
    url: str
    tags: Mapping[str, str]
    start: datetime | None
    end: datetime | None
    rows: int
    title: str | None = None
    position: tuple[float, float] | None = None  # (lon, lat)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, key: str, url: str, tags: Mapping[str, str], ds) -> StreamEntry:
        rows = int(ds.sizes.get("time", 0))
        times = ds["time"].values if rows else np.array([], dtype="datetime64[ns]")
        start = _utc(times.min()) if rows else None
        end = _utc(times.max()) if rows else None
        variables = {}
        for name, var in ds.variables.items():
            if name == "time":
                continue
            props: dict[str, Any] = {
                "dimensions": list(var.dims),
                "type": "data" if name in ds.data_vars else "auxiliary",
            }
            if "units" in var.attrs:
                props["unit"] = str(var.attrs["units"])
            if "long_name" in var.attrs:
                props["description"] = str(var.attrs["long_name"])
            variables[str(name)] = props
        return cls(
            key,
            url,
            dict(tags),
            start,
            end,
            rows,
            str(ds.attrs.get("title")) if ds.attrs.get("title") else None,
            _position(ds),
            variables,
        )


def _utc(value: Any) -> datetime:
    return pd.Timestamp(value).to_pydatetime(warn=False).replace(tzinfo=UTC)


def _position(ds) -> tuple[float, float] | None:
    """The platform's mean position, if the store carries lat/lon (most OOI streams do)."""
    for lat, lon in (("lat", "lon"), ("latitude", "longitude")):
        if lat in ds.variables and lon in ds.variables:
            try:
                y = float(np.nanmean(ds[lat].values[:1000]))
                x = float(np.nanmean(ds[lon].values[:1000]))
            except (TypeError, ValueError):
                return None
            if np.isfinite(x) and np.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90:
                return (x, y)
    return None


def build_stac(entries: list[StreamEntry], root: str, reader_opts: Mapping[str, Any]):
    """The pystac root catalog (hrefs normalized under ``<root>/stac``)."""
    import pystac

    local = not root.startswith("s3://")
    catalog = pystac.Catalog(
        id="ooi-rca",
        description="OOI Regional Cabled Array data streams harvested by data-vent "
        "(one Zarr store per stream).",
        title="OOI Data Streams",
        catalog_type=pystac.CatalogType.SELF_CONTAINED,
    )
    by_site: dict[str, list[StreamEntry]] = {}
    for e in entries:
        by_site.setdefault(e.tags.get("site") or "unknown", []).append(e)
    for site, members in sorted(by_site.items()):
        items = [_item(e, root, local, reader_opts) for e in members]
        starts = [e.start for e in members if e.start]
        ends = [e.end for e in members if e.end]
        boxes = [i.bbox for i in items if i.bbox]
        bbox = (
            [
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            ]
            if boxes
            else WHOLE_EARTH
        )
        collection = pystac.Collection(
            id=site,
            description=f"OOI site {site}: {len(members)} harvested streams.",
            title=f"OOI {site}",
            extent=pystac.Extent(
                pystac.SpatialExtent([bbox]),
                pystac.TemporalExtent(
                    [[min(starts) if starts else None, max(ends) if ends else None]]
                ),
            ),
            license="other",
            keywords=["OOI", "Regional Cabled Array", site],
        )
        collection.add_items(items)
        catalog.add_child(collection)
    catalog.normalize_hrefs(f"{root}/{STAC_DIR}")
    return catalog


def _item(e: StreamEntry, root: str, local: bool, reader_opts: Mapping[str, Any]):
    import pystac

    geometry = bbox = None
    if e.position:
        x, y = e.position
        geometry = {"type": "Point", "coordinates": [x, y]}
        bbox = [x, y, x, y]
    item = pystac.Item(
        id=e.key,
        geometry=geometry,
        bbox=bbox,
        datetime=None,
        start_datetime=e.start,
        end_datetime=e.end,
        properties={
            "title": e.title or e.key,
            "ooi:reference_designator": e.tags.get("instrument"),
            "ooi:method": e.tags.get("method"),
            "ooi:stream": e.tags.get("stream"),
            "ooi:rows": e.rows,
        },
        stac_extensions=[DATACUBE, XARRAY_ASSETS],
    )
    # start/end must be set even for an empty store: STAC needs a time, or both ends
    if e.start is None:
        item.properties["start_datetime"] = item.properties["end_datetime"] = None
    item.properties["cube:dimensions"] = {
        "time": {
            "type": "temporal",
            "extent": [
                e.start.isoformat().replace("+00:00", "Z") if e.start else None,
                e.end.isoformat().replace("+00:00", "Z") if e.end else None,
            ],
        }
    }
    item.properties["cube:variables"] = e.variables
    extra: dict[str, Any] = {"xarray:open_kwargs": {"engine": "zarr", "consolidated": True}}
    if reader_opts:
        extra["xarray:storage_options"] = dict(reader_opts)
    # a local store's href is made relative to the item when the catalog is written
    href = e.url if not local else f"{root}/{e.key}"
    item.add_asset(
        "data",
        pystac.Asset(
            href=href,
            media_type=ZARR_MEDIA_TYPE,
            roles=["data"],
            title=f"Zarr store of {e.key}",
            extra_fields=extra,
        ),
    )
    return item


def write_stac(
    entries: list[StreamEntry],
    root: str,
    reader_opts: Mapping[str, Any],
    settings,
    write: Callable[[str, bytes, Any], None],
) -> int:
    """Write the STAC catalog under ``<root>/stac``; returns the number of items.

    Each object is written with ``write`` (atomic per object), children before the root
    catalog, so a reader following links from the root finds every file it names.
    """
    import json

    import pystac

    catalog = build_stac(entries, root, reader_opts)
    local = not root.startswith("s3://")
    n = 0
    objects: list[pystac.STACObject] = []
    for collection in catalog.get_children():
        for item in collection.get_items():
            objects.append(item)
            n += 1
        objects.append(collection)
    objects.append(catalog)
    for obj in objects:
        href = obj.get_self_href()
        data = obj.to_dict(include_self_link=False, transform_hrefs=True)
        if local and isinstance(obj, pystac.Item):
            asset = data["assets"]["data"]
            asset["href"] = pystac.utils.make_relative_href(asset["href"], href)
        write(href, json.dumps(data, indent=1).encode(), settings)
    return n

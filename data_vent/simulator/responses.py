"""Bodies the simulated OOINet answers with, in the shapes of the recorded real ones.

Shapes from ``fixtures/ooi-real/m2m/``: THREDDS ``catalog.xml``, ``stream/byname``,
``.XDeployment`` records, the error JSONs, and the maintenance page OOINet shows.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from data_vent.core.timeutil import from_ntp_seconds
from data_vent.simulator.ooinet import SimRequest

MAINTENANCE_HTML = (
    "<!DOCTYPE html><html><head><title>OOINet Maintenance</title></head><body>"
    "<h1>OOINet is undergoing scheduled maintenance</h1>"
    "<p>The Ocean Observatories Initiative data portal will be back shortly.</p>"
    "</body></html>"
)


def not_found(table: str) -> dict[str, Any]:
    return {
        "message": f"{table} not found in OOI Database. "
        "It may be that this stream has been discontinued."
    }


def no_results(request_uuid: str) -> dict[str, Any]:
    inner = {
        "message": "Query returned no results for primary stream",
        "requestUUID": request_uuid,
    }
    return {"message": {"status": json.dumps(inner, indent=2) + "\n"}, "status_code": 404}


_CATALOG_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<catalog xmlns="http://www.unidata.ucar.edu/namespaces/thredds/InvCatalog/v1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" name="THREDDS Server Default Catalog" '
    'version="1.0.1">\n'
)


def account_catalog_xml(user: str, folders: list[str]) -> str:
    """An account's folder: one ``catalogRef`` per request folder, as THREDDS lists them."""
    refs = "".join(
        f"    <catalogRef xlink:href={quoteattr(f + '/catalog.xml')} "
        f'xlink:title={quoteattr(f)} ID={quoteattr(f"ooi/{user}/{f}")} name="" />\n'
        for f in sorted(folders)
    )
    return (
        _CATALOG_HEAD
        + f"  <dataset name={quoteattr(user)} ID={quoteattr(f'ooi/{user}')}>\n"
        + refs
        + "  </dataset>\n</catalog>\n"
    )


def catalog_xml(req: SimRequest) -> str:
    path = f"ooi/{req.user}/{req.folder}"
    items = []
    for name in sorted(req.files or {}):
        items.append(
            f"    <dataset name={quoteattr(name)} ID={quoteattr(path + '/' + name)} "
            f"urlPath={quoteattr(path + '/' + name)}>\n"
            f'      <dataSize units="bytes">{req.sizes[name]}</dataSize>\n'
            f'      <date type="modified">2024-01-01T00:00:00Z</date>\n'
            "    </dataset>\n"
        )
    return (
        _CATALOG_HEAD + '  <service name="all" serviceType="Compound" base="">\n'
        '    <service name="odap" serviceType="OpenDAP" base="/thredds/dodsC/" />\n'
        '    <service name="http" serviceType="HTTPServer" base="/thredds/fileServer/" />\n'
        "  </service>\n"
        f"  <dataset name={quoteattr(req.folder)} ID={quoteattr(path)}>\n"
        '    <metadata inherited="true"><serviceName>all</serviceName></metadata>\n'
        + "".join(items)
        + "  </dataset>\n</catalog>\n"
    )


TOC_PARAMETERS = [
    {
        "pdId": "PD7",
        "particle_key": "time",
        "type": "DOUBLE",
        "unsigned": False,
        "shape": "SCALAR",
        "fill_value": "-9999999",
        "units": "seconds since 1900-01-01",
    },
    {
        "pdId": "PD908",
        "particle_key": "sea_water_temperature",
        "type": "FLOAT",
        "unsigned": False,
        "shape": "SCALAR",
        "fill_value": "-9999999",
        "units": "deg_C",
    },
]


def toc(streams: list[Any], now: float) -> dict[str, Any]:
    """``12576/sensor/inv/toc`` in the shape of the recorded excerpt
    (``uframe_help_samples_2017/12576_sensor_inv_toc__excerpt.json``)."""
    instruments: dict[str, dict[str, Any]] = {}
    for s in sorted(streams, key=lambda s: s.table):
        n = s.name
        inst = instruments.setdefault(
            n.refdes,
            {
                "reference_designator": n.refdes,
                "platform_code": n.site,
                "mooring_code": n.node,
                "instrument_code": n.sensor,
                "streams": [],
            },
        )
        entry = s.summary(now) or {"stream": n.stream, "method": n.method, "count": 0}
        inst["streams"].append(entry)
    return {
        "parameters_by_stream": {
            s.name.stream: [p["pdId"] for p in TOC_PARAMETERS] for s in streams
        },
        "parameter_definitions": TOC_PARAMETERS,
        "instruments": list(instruments.values()),
    }


def stream_byname(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": abs(hash(name)) % 10000,
        "stream_type": {"value": "Science"},
        "stream_content": {"value": "Data Products"},
        "parameters": [
            {"name": "time", "id": 7, "unit": {"value": "seconds since 1900-01-01"}},
            {"name": "sea_water_temperature", "id": 908, "unit": {"value": "deg_C"}},
        ],
        "dependencies": [],
    }


def deployment_record(stream: Any, number: int) -> dict[str, Any]:
    start = from_ntp_seconds(stream.deployment_start(number))
    return {
        "@class": ".XDeployment",
        "deploymentNumber": number,
        "eventStartTime": int((start - datetime(1970, 1, 1)).total_seconds() * 1000),
        "eventStopTime": None,
        "referenceDesignator": stream.name.refdes,
        "location": {"latitude": 44.3695, "longitude": -124.954, "depth": 0.0},
    }

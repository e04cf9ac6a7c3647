"""THREDDS side of an async OOI request: catalog.xml -> files, selection by canonical name.

Real catalogs give sizes in ``Kbytes``/``Mbytes`` rounded to a few digits, so each file
carries the tolerance its listed size allows; the simulator lists exact ``bytes``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin, urlsplit

from data_vent.core.errors import OOIParseError
from data_vent.ooi.names import DATA_FILE_RE, PROVENANCE_RE, parse_file_time

NS = "{http://www.unidata.ucar.edu/namespaces/thredds/InvCatalog/v1.0}"
XLINK = "{http://www.w3.org/1999/xlink}"
_UNITS = {"bytes": 1, "kbytes": 1024, "mbytes": 1024**2, "gbytes": 1024**3, "tbytes": 1024**4}


@dataclass(frozen=True)
class ThreddsFile:
    """One file of a request folder; ``kind`` is ``data``, ``provenance`` or ``other``."""

    name: str
    url: str
    size: int | None = None
    size_tolerance: int = 0
    modified: str | None = None
    kind: str = "other"
    table: str | None = None
    deployment: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start", "end"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThreddsFile:
        d = dict(d)
        for k in ("start", "end"):
            if d.get(k):
                d[k] = datetime.fromisoformat(d[k])
        return cls(**d)


@dataclass
class Listing:
    """A request folder split by what the harvest does with each file."""

    data: list[ThreddsFile] = field(default_factory=list)
    provenance: list[ThreddsFile] = field(default_factory=list)
    other: list[ThreddsFile] = field(default_factory=list)
    """Dependency streams' files and anything else: listed, never harvested."""


def classify(
    name: str,
    url: str,
    size: int | None = None,
    tolerance: int = 0,
    modified: str | None = None,
) -> ThreddsFile:
    """Recognise a Stream Engine data file or aggregate provenance file by its name."""
    listed = (name, url, size, tolerance, modified)
    if m := DATA_FILE_RE.match(name):
        start, end = parse_file_time(m["start"]), parse_file_time(m["end"])
        return ThreddsFile(*listed, "data", m["table"], int(m["deployment"]), start, end)
    if m := PROVENANCE_RE.match(name):
        return ThreddsFile(*listed, "provenance", m["table"], int(m["deployment"]))
    return ThreddsFile(*listed)


def split_listing(files: list[ThreddsFile], table: str) -> Listing:
    """Keep ``table``'s data files (sorted by deployment, start); others go to ``other``."""
    out = Listing()
    for f in files:
        if f.table == table and f.kind == "data":
            out.data.append(f)
        elif f.table == table and f.kind == "provenance":
            out.provenance.append(f)
        else:
            out.other.append(f)
    out.data.sort(key=lambda f: (f.deployment or 0, f.start or datetime.min, f.name))
    out.provenance.sort(key=lambda f: f.name)
    return out


def catalog_xml_url(output_url: str) -> str:
    """``.../catalog.html`` (OOI's outputURL / allURLs[0]) -> ``.../catalog.xml``."""
    base = output_url.split("?", 1)[0]
    if base.endswith("catalog.html"):
        return base[: -len("html")] + "xml"
    if base.endswith("catalog.xml"):
        return base
    return base.rstrip("/") + "/catalog.xml"


def _size(elem: ET.Element | None) -> tuple[int | None, int]:
    if elem is None or not (elem.text or "").strip():
        return None, 0
    unit = _UNITS.get((elem.get("units") or "bytes").strip().lower())
    try:
        value = Decimal(elem.text.strip())
    except InvalidOperation:
        return None, 0
    if unit is None:
        return None, 0
    exponent = value.as_tuple().exponent
    step = (
        Decimal(10) ** exponent if isinstance(exponent, int) and exponent < 0 else Decimal(1)
    )
    tolerance = 0 if unit == 1 else int(step * unit / 2) + 1
    return int(value * unit), tolerance


@dataclass(frozen=True)
class ThreddsFolder:
    """A sub-catalog (``catalogRef``): in an account's folder, one request's results."""

    name: str
    catalog_url: str


def _root(xml_text: str | bytes, catalog_url: str) -> ET.Element:
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise OOIParseError(f"THREDDS catalog {catalog_url} is not valid XML: {exc}") from None
    if root.tag != f"{NS}catalog":
        raise OOIParseError(
            f"THREDDS catalog {catalog_url}: root is {root.tag!r}, not catalog"
        )
    return root


def parse_catalog_refs(xml_text: str | bytes, catalog_url: str) -> list[ThreddsFolder]:
    """The sub-catalogs a THREDDS ``catalog.xml`` links to, with absolute URLs."""
    folders = []
    for ref in _root(xml_text, catalog_url).iter(f"{NS}catalogRef"):
        href = ref.get(f"{XLINK}href")
        if not href:
            continue
        url = urljoin(catalog_url, href)
        name = ref.get(f"{XLINK}title") or href.rstrip("/").rsplit("/", 2)[-2]
        folders.append(ThreddsFolder(name, url))
    return folders


def parse_catalog(xml_text: str | bytes, catalog_url: str) -> list[ThreddsFile]:
    """Files of a THREDDS ``catalog.xml``; download URLs use its HTTPServer service."""
    root = _root(xml_text, catalog_url)
    base = "/thredds/fileServer/"
    for svc in root.iter(f"{NS}service"):
        if (svc.get("serviceType") or "").lower() == "httpserver":
            base = svc.get("base") or base
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(catalog_url))
    files = []
    for ds in root.iter(f"{NS}dataset"):
        path = ds.get("urlPath")
        if not path:
            continue
        size, tol = _size(ds.find(f"{NS}dataSize"))
        date = ds.find(f"{NS}date")
        url = urljoin(origin + base if base.startswith("/") else base, path)
        name = path.rsplit("/", 1)[-1]
        files.append(classify(name, url, size, tol, date.text if date is not None else None))
    return files

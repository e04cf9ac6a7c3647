"""OOI names: table ``<refdes>-<method>-<stream>``, refdes ``SITE-NODE-PORT-INSTRUMENT``.

Methods never contain ``-`` and streams only use ``_``, so the table splits on its first five
dashes. Stream Engine file names are ``deploymentNNNN_<table>_<start>-<end>.nc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from data_vent.core.errors import OOIParseError

_PART = r"[A-Za-z0-9]+"
_TABLE = rf"{_PART}-{_PART}-{_PART}-{_PART}-[A-Za-z0-9_]+-[A-Za-z0-9_]+"
_TS = r"\d{8}T\d{6}(?:\.\d+)?"
DATA_FILE_RE = re.compile(
    rf"^deployment(?P<deployment>\d{{4}})_(?P<table>{_TABLE})_(?P<start>{_TS})-(?P<end>{_TS})\.nc$"
)
PROVENANCE_RE = re.compile(
    rf"^deployment(?P<deployment>\d{{4}})_(?P<table>{_TABLE})_aggregate_provenance\.json$"
)
_TABLE_RE = re.compile(rf"^{_TABLE}$")


@dataclass(frozen=True)
class TableName:
    site: str
    node: str
    sensor: str  # PORT-INSTRUMENT, e.g. 2A-CTDPFA107
    method: str
    stream: str

    @property
    def refdes(self) -> str:
        return f"{self.site}-{self.node}-{self.sensor}"

    @property
    def table(self) -> str:
        return f"{self.refdes}-{self.method}-{self.stream}"


def parse_table(table: str) -> TableName:
    """Split ``CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample``."""
    if not _TABLE_RE.match(table):
        raise OOIParseError(
            f"not an OOI table name {table!r}: "
            "expected SITE-NODE-PORT-INSTRUMENT-method-stream"
        )
    site, node, port, inst, method, stream = table.split("-", 5)
    return TableName(site, node, f"{port}-{inst}", method, stream)


def parse_refdes(refdes: str) -> tuple[str, str, str]:
    """``SITE-NODE-PORT-INSTRUMENT`` -> (site, node, sensor)."""
    parts = refdes.split("-")
    if len(parts) != 4 or not all(re.fullmatch(_PART, p) for p in parts):
        raise OOIParseError(
            f"not a reference designator {refdes!r}: expected SITE-NODE-PORT-INST"
        )
    return parts[0], parts[1], f"{parts[2]}-{parts[3]}"


def parse_file_time(text: str) -> datetime:
    """``20161012T142641.906000`` or ``20150101T000001`` -> naive UTC datetime."""
    fmt = "%Y%m%dT%H%M%S.%f" if "." in text else "%Y%m%dT%H%M%S"
    return datetime.strptime(text, fmt)


def format_file_time(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S.%f")


def data_file_name(deployment: int, table: str, start: datetime, end: datetime) -> str:
    span = f"{format_file_time(start)}-{format_file_time(end)}"
    return f"deployment{deployment:04d}_{table}_{span}.nc"

"""Stream stores: OOI NetCDF -> one Zarr v2 store per stream, crash-safe.

``normalize`` (file -> store schema), ``identity`` (which stream a file holds), ``rules``
(append rules), ``rows`` (row planning), ``values`` (rows as stored), ``chunks`` (chunk
layout), ``commit`` (commit protocol), ``checks`` (post-write checks), ``outcome`` (what a
write reports), ``writer`` (``StreamStore``, ``ingest_files``).
"""

from data_vent.store.chunks import DEFAULT_CHUNK_TARGET
from data_vent.store.normalize import NormalizedFile, NormalizeReport, normalize_file
from data_vent.store.outcome import StoreInfo, WriteOutcome
from data_vent.store.rules import (
    AppendConflict,
    CheckFailed,
    SchemaConflict,
    StoreError,
    WrongStream,
)
from data_vent.store.writer import StreamStore, ingest_files

__all__ = [
    "DEFAULT_CHUNK_TARGET",
    "AppendConflict",
    "CheckFailed",
    "NormalizeReport",
    "NormalizedFile",
    "SchemaConflict",
    "StoreError",
    "StoreInfo",
    "StreamStore",
    "WriteOutcome",
    "WrongStream",
    "ingest_files",
    "normalize_file",
]

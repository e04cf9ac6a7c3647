"""Which OOI stream a file holds, so that no file goes into another stream's store.

A Stream Engine file says it in its global attributes (``subsite``, ``node``, ``sensor``,
``collection_method``, ``stream``); files without them (Stream Engine intermediates) in their
name (``[deploymentNNNN_]<refdes>-<method>-<stream>[_<start>-<end> | __<note>].nc``). A file
that says neither cannot be checked: it is accepted and the write records
``stream_unidentified``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from data_vent.store.normalize import NormalizedFile
from data_vent.store.rules import WrongStream

_PART = r"[A-Za-z0-9]+"
_NAME_RE = re.compile(
    rf"(?:^|_)(?P<refdes>{_PART}-{_PART}-{_PART}-{_PART})-(?P<method>[A-Za-z0-9_]+?)-"
    rf"(?P<stream>{_PART}(?:_{_PART})*?)(?=_\d{{8}}T\d{{6}}|__|\.nc$|$)"
)


@dataclass(frozen=True)
class StreamId:
    """Parts of a table name a file gives (None: not given), and where they came from."""

    refdes: str | None
    method: str | None
    stream: str | None
    source: str

    def text(self) -> str:
        return "-".join(p or "?" for p in (self.refdes, self.method, self.stream))


def split_table(table: str) -> StreamId:
    """``CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample`` -> its three parts."""
    parts = table.split("-", 5)
    if len(parts) != 6 or not all(parts):
        raise ValueError(f"not an OOI table name {table!r}: expected REFDES-method-stream")
    return StreamId("-".join(parts[:4]), parts[4], parts[5], "asset key")


def file_stream(nf: NormalizedFile) -> StreamId | None:
    """What ``nf`` says it holds: global attributes first, else its name; None if neither."""
    a = {k: str(nf.attrs[k]).strip() for k in ("subsite", "node", "sensor") if k in nf.attrs}
    refdes = "-".join(a[k] for k in ("subsite", "node", "sensor")) if len(a) == 3 else None
    method = str(nf.attrs.get("collection_method", "")).strip() or None
    stream = str(nf.attrs.get("stream", "")).strip() or None
    if refdes or method or stream:
        return StreamId(refdes, method, stream, "global attributes")
    m = _NAME_RE.search(nf.path.name)
    if m:
        return StreamId(m["refdes"], m["method"], m["stream"], "file name")
    return None


def check_stream(nf: NormalizedFile, table: str) -> bool:
    """Raise ``WrongStream`` if ``nf`` holds another stream than ``table``; False if the file
    does not say which stream it holds."""
    want = split_table(table)
    got = file_stream(nf)
    if got is None:
        return False
    for part in ("refdes", "method", "stream"):
        have = getattr(got, part)
        if have is not None and have != getattr(want, part):
            raise WrongStream(
                f"{nf.path.name} holds {got.text()} (its {got.source}), not {table}: "
                "ingest it into its own stream's store"
            )
    return True

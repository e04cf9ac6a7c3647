"""Asset keys: validated so that a key can never escape the storage root."""

from __future__ import annotations

import re

from data_vent.core.errors import KeyError_

_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path of allowed characters, else raise."""
    if not key or not _KEY_RE.match(key):
        raise KeyError_(f"invalid asset key {key!r}: use only letters, digits and _ . - /")
    if key.startswith("/") or key.endswith("/") or "//" in key:
        raise KeyError_(f"invalid asset key {key!r}: no leading, trailing or double '/'")
    if any(part in ("..", ".") for part in key.split("/")):
        raise KeyError_(f"invalid asset key {key!r}: '.' and '..' segments are not allowed")
    return key


def table_name(instrument: str, method: str, stream: str) -> str:
    """The OOI table name ``<refdes>-<method>-<stream>``: a stream store's key."""
    return f"{instrument}-{method}-{stream}"


def source_key(table: str) -> str:
    """Key of the observable OOI source that feeds the store ``table``."""
    return f"ooi/{table}"

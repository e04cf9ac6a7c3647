"""One async request the OOINet simulator holds; shared by its model and its HTTP side.

Its own module so that ``simulator`` (which starts the server) and ``sim_http`` (which
answers with requests) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SimRequest:
    uuid: str
    table: str
    begin: float
    end: float
    user: str
    folder: str
    created: float  # monotonic
    ready_at: float | None  # monotonic; None: never
    failed: bool
    include_provenance: bool
    files: dict[str, Path] | None = None
    sizes: dict[str, int] = field(default_factory=dict)

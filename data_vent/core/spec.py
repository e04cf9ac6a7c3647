"""Asset definitions: what an asset is, independent of any state."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from data_vent.core.keys import validate_key


@dataclass(frozen=True)
class FreshnessPolicy:
    """Thresholds on *harvest lag* (source endTime - store's last time)."""

    warn: timedelta | None = timedelta(hours=6)
    fail: timedelta | None = timedelta(days=1)


@dataclass(frozen=True, eq=False)
class AssetSpec:
    """One asset: a key, the kind that knows how to observe/materialize it, and its deps.

    ``observable`` assets (OOI sources) are observed, never materialized.
    """

    key: str
    kind: str
    deps: tuple[str, ...] = ()
    group: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    freshness: FreshnessPolicy | None = None
    code_version: str = "1"
    config: dict[str, Any] = field(default_factory=dict)
    observable: bool = False
    source_file: str | None = None

    def __post_init__(self) -> None:
        validate_key(self.key)
        for dep in self.deps:
            validate_key(dep)

    @cached_property
    def config_hash(self) -> str:
        """Hash of what defines the output (kind, deps, config); not tags or group.

        Computed once per spec: the planner asks for it for every asset on every plan (it
        was half of planning 50,000 assets)."""
        payload = json.dumps(
            {"kind": self.kind, "deps": sorted(self.deps), "config": self.config},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

"""Asset kinds are pluggable: a kind says how its assets are observed and materialized.

This module is the plug-in interface only (the kind base class, what a kind is given and
what it returns, the registry); the value types it speaks live in ``data_vent.core``.

The core (planner, runner, flows) knows nothing of OOI or Zarr; it calls kinds through
this small interface. The OOI stream store is one kind among others; tests register their own.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from data_vent.core.errors import ConfigError
from data_vent.core.records import (
    InputVersion,
    Observation,
    ObserveFailure,
    PreviousState,
    Reason,
)
from data_vent.core.spec import AssetSpec
from data_vent.core.vocab import Action, Outcome

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from data_vent.settings import Settings


@dataclass
class MaterializeContext:
    spec: AssetSpec
    action: Action | str
    reasons: list[Reason]
    inputs: dict[str, InputVersion]
    previous: PreviousState | None
    settings: Settings
    engine: Engine
    run_id: str
    logger: logging.Logger
    renew_lease: Callable[[], None] = lambda: None
    all_specs: dict[str, AssetSpec] = field(default_factory=dict)

    def storage_url(self, key: str | None = None) -> str:
        return f"{self.settings.resolved_storage()}/{key or self.spec.key}"


@dataclass
class MaterializeResult:
    """What a materialization produced; ``Outcome.WAITING``: OOI is not ready yet."""

    status: Outcome = Outcome.SUCCESS
    data_version: str | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None
    rows: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    input_versions: dict[str, str | None] | None = None
    """Override of the input versions recorded (e.g. the observation actually harvested)."""


class AssetKind:
    """Base class of asset kinds; subclasses override what applies to them."""

    name: ClassVar[str] = ""
    observable: ClassVar[bool] = False
    partial_inputs_ok: ClassVar[bool] = False
    """True if it may run while some inputs have no output yet (e.g. a catalog)."""

    def observe(
        self, specs: Sequence[AssetSpec], settings: Settings, engine: Engine
    ) -> list[Observation | ObserveFailure]:
        """Sources only: report the current state of each source in ``specs``, or an
        ``ObserveFailure`` for a source that could not be seen (its freshness is then
        UNKNOWN until it is seen again; never silently the last known state)."""
        raise NotImplementedError(f"asset kind {self.name!r} is not observable")

    def materialize(self, ctx: MaterializeContext) -> MaterializeResult:
        raise NotImplementedError(f"asset kind {self.name!r} cannot be materialized")

    def exists(self, spec: AssetSpec, settings: Settings) -> bool:
        """Whether the asset's output is present (a missing store re-plans a full build)."""
        return True

    def needs_repair(self, spec: AssetSpec, settings: Settings) -> bool:
        """Whether a killed writer left the output mid-write (e.g. a store's journal)."""
        return False

    def output_state(self, spec: AssetSpec, settings: Settings) -> MaterializeResult | None:
        """The output as it is now (data version, coverage, rows), as a repair records it."""
        return None

    def repair(self, spec: AssetSpec, settings: Settings) -> str | None:
        """Finish or undo a killed writer's write; what was done, or None if clean.

        Called by the runner under the asset's lease only (never beside a live writer).
        """
        return None

    def location(self, spec: AssetSpec, settings: Settings) -> str | None:
        """Where the asset really is, as a URL (``file://``, ``s3://``, ``https://``) with
        no credentials in it: its Prefect asset key and what catalogs point at. None: the
        kind has no place to name (its runs are then plain Prefect tasks)."""
        return None


def as_url(path_or_url: str) -> str:
    """A storage location as a URL: local paths become absolute ``file://`` URLs."""
    if "://" in path_or_url:
        return path_or_url
    from pathlib import Path

    return Path(path_or_url).resolve().as_uri()


ENTRY_POINT_GROUP = "data_vent.kinds"
"""Installed packages name their kinds here (``name = "package.module:Class"``), as xarray's
backends do; data-vent's own kinds are registered the same way in its ``pyproject.toml``."""

_KINDS: dict[str, AssetKind] = {}


def register_kind(kind: AssetKind) -> AssetKind:
    """Register a kind instance under its ``name`` (for kinds built at run time)."""
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> AssetKind:
    """The kind named ``name``: registered, an installed entry point of ``data_vent.kinds``,
    or a ``package.module:Class`` plug-in imported on first use. Loaded once per process;
    the kinds' heavy imports (xarray, zarr) wait until a kind is asked for."""
    kind = _KINDS.get(name)
    if kind is None:
        kind = _KINDS[name] = _load(name)
    return kind


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(name: str) -> AssetKind:
    installed = _entry_points()
    try:
        if name in installed:
            cls = installed[name].load()
        elif ":" in name:
            module, _, attr = name.partition(":")
            cls = getattr(importlib.import_module(module), attr)
        else:
            known = sorted(set(installed) | set(_KINDS))
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown asset kind {name!r}{hint}; known: {', '.join(known)}")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load asset kind {name!r}: {exc}") from None
    return cls()

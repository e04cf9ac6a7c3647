"""Asset kinds are pluggable: a kind says how its assets are observed and materialized.

This module is the plug-in interface only (the kind base class, what a kind is given and
what it returns, the registry); the value types it speaks live in ``data_vent.core``.

The core (planner, runner, flows) knows nothing of OOI or Zarr; it calls kinds through
this small interface. The OOI stream store is one kind among others; tests register their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from data_vent.core.errors import ConfigError
from data_vent.core.records import InputVersion, Observation, PreviousState, Reason
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
    code_version: ClassVar[str] = "1"
    observable: ClassVar[bool] = False
    partial_inputs_ok: ClassVar[bool] = False
    """True if it may run while some inputs have no output yet (e.g. a catalog)."""

    def observe(
        self, specs: Sequence[AssetSpec], settings: Settings, engine: Engine
    ) -> list[Observation]:
        """Sources only: report the current state of each source in ``specs``."""
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


_KINDS: dict[str, AssetKind] = {}


def register_kind(kind: AssetKind) -> AssetKind:
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> AssetKind:
    """The kind registered under ``name``; ``package.module:Class`` names import a plugin."""
    if name not in _KINDS and ":" in name:
        _load_plugin(name)
    if name not in _KINDS:
        _load_builtin_kinds()
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown asset kind {name!r}; known: {', '.join(sorted(_KINDS))}"
        ) from None


def registered_kinds() -> dict[str, AssetKind]:
    _load_builtin_kinds()
    return dict(_KINDS)


def _load_plugin(name: str) -> None:
    import importlib

    module, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load asset kind {name!r}: {exc}") from None
    kind = cls()
    _KINDS[name] = kind


def _load_builtin_kinds() -> None:
    """Import the built-in kinds lazily so the core imports without xarray/zarr."""
    import importlib

    for module in ("data_vent.assets.ooi_stream", "data_vent.assets.derived"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise

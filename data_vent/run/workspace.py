"""What a run works on: settings, asset specs, their graph and the state DB engine.

Two ways to load one. ``Workspace.load`` reads the config folder: the harvest, materialize,
observe and ingest sync it into the state DB before they write anything; ``plan`` (the dry
run) plans from it on a read-only engine without syncing. ``Workspace.from_state_db`` needs
no config folder: the specs the last sync recorded, on a read-only engine (``status``,
``why``, ``history``, ``assets``, ``graph``), and says how a config folder, when one is set,
differs from them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from sqlalchemy.engine import Engine

from data_vent.assets.config import load_specs
from data_vent.assets.kinds import get_kind
from data_vent.core.errors import (
    ConfigError,
    NoStateDB,
    OOIAuthError,
    OOIUnavailable,
    SelectionError,
)
from data_vent.core.plan import PlanItem
from data_vent.core.records import Observation, ObserveFailure
from data_vent.core.snapshot import StateSnapshot
from data_vent.core.spec import AssetSpec
from data_vent.core.timeutil import utcnow
from data_vent.graph.build import build_graph
from data_vent.graph.planner import Plan, ancestors_of, plan
from data_vent.graph.selection import Selected, parse, select_anchored, uses_state
from data_vent.graph.status import PlanStateView
from data_vent.run.repair import pending_repairs, repair_assets
from data_vent.run.runner import AssetOutcome, execution_order, materialize_asset
from data_vent.run.schedule import Done, Start, run_as_ready
from data_vent.settings import Settings, get_settings
from data_vent.state.db import get_engine, read_engine
from data_vent.state.observations import record_observations, record_observe_failures
from data_vent.state.snapshot import read_snapshot
from data_vent.state.specs import (
    SyncReport,
    check_prune,
    recorded_specs,
    spec_changes,
    sync_specs,
)


def config_specs(settings: Settings) -> dict[str, AssetSpec]:
    """The specs of the configured folder; every asset kind they name must load."""
    if settings.config_dir is None:
        raise ConfigError(
            "no harvest configs: pass --config-dir or set DATA_VENT_CONFIG_DIR "
            "to a folder of harvest config YAMLs"
        )
    specs = load_specs(Path(settings.config_dir))
    for spec in specs.values():  # an unknown kind is bad input before any DB write
        try:
            get_kind(spec.kind)
        except ConfigError as exc:
            where = f"{spec.source_file}: " if spec.source_file else ""
            raise ConfigError(f"{where}asset {spec.key!r}: {exc}") from None
    return specs


@dataclass
class Observed:
    """What one observation pass found: the sources that moved, how many were asked, and
    those that could not be seen."""

    changed: list[Observation]
    total: int
    failures: list[ObserveFailure] = field(default_factory=list)

    def messages(self) -> list[str]:
        """One line per distinct error (one per instrument, not per stream)."""
        return list(dict.fromkeys(f.error for f in self.failures))

    def raise_if_blind(self) -> None:
        """Credentials refused anywhere: exit 2 naming the settings; nothing seen: exit 1."""
        auth = next((f for f in self.failures if f.auth), None)
        if auth is not None:
            raise OOIAuthError(auth.error)
        if self.failures and len(self.failures) >= self.total:
            first = self.failures[0]
            more = len(self.messages()) - 1
            tail = f" (and {more} other errors)" if more > 0 else ""
            raise OOIUnavailable(f"no source could be observed: {first.error}{tail}")


@dataclass
class Workspace:
    settings: Settings
    specs: dict[str, AssetSpec]
    graph: nx.DiGraph
    engine: Engine | None
    """None only for a read-only workspace whose state DB does not exist yet."""
    read_only: bool = False
    config_changes: SyncReport | None = None
    """``from_state_db`` with a config folder: how the folder differs from the DB."""

    @classmethod
    def load(cls, settings: Settings | None = None, *, read_only: bool = False) -> Workspace:
        """From the config folder; ``read_only``: plan without syncing or migrating."""
        settings = settings or get_settings()
        specs = config_specs(settings)
        graph = build_graph(specs)
        if not read_only:
            engine = get_engine(
                settings.resolved_db_url(),
                connect_timeout=settings.db_connect_timeout,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
            )
            return cls(settings, specs, graph, engine)
        try:
            read: Engine | None = read_engine(
                settings.resolved_db_url(), settings.db_connect_timeout
            )
        except NoStateDB:
            read = None  # nothing harvested yet: every asset is missing
        return cls(settings, specs, graph, read, read_only=True)

    @classmethod
    def from_state_db(cls, settings: Settings | None = None) -> Workspace:
        """The specs the last sync recorded, read-only; a config folder, if set, is only
        compared with them (``config_changes``)."""
        settings = settings or get_settings()
        # a config folder given is checked first: its errors name the file to fix
        defined = config_specs(settings) if settings.config_dir is not None else None
        try:
            engine = read_engine(settings.resolved_db_url(), settings.db_connect_timeout)
        except NoStateDB:
            if defined is None:
                raise
            # nothing harvested yet: the folder's assets, every one missing (as `plan` says)
            added = SyncReport(added=sorted(defined))
            return cls(settings, defined, build_graph(defined), None, True, added)
        specs = recorded_specs(engine)
        changes = spec_changes(engine, defined) if defined is not None else None
        return cls(settings, specs, build_graph(specs), engine, True, changes)

    def _writable(self) -> Engine:
        if self.read_only or self.engine is None:
            raise RuntimeError("a read-only workspace never writes the state DB")
        return self.engine

    def check_sync(self, prune: bool = False) -> SyncReport:
        """What ``sync`` would change; refuses (exit 2) as ``sync`` would, writing nothing."""
        if self.engine is None:
            return SyncReport(added=sorted(self.specs))
        report = spec_changes(self.engine, self.specs)
        check_prune(report, prune)
        return report

    def sync(self, prune: bool = False) -> SyncReport:
        return sync_specs(self._writable(), self.specs, prune=prune)

    def snapshot(self) -> StateSnapshot:
        if self.engine is None:
            return StateSnapshot()
        return read_snapshot(self.engine, include_inactive=self.read_only)

    def observe(self, keys: Iterable[str] | None = None) -> Observed:
        """Observe sources (all, or those among ``keys``); record what changed, and which
        sources could not be observed (their freshness is UNKNOWN until seen again).

        Raises after recording when nothing can be seen: credentials refused (exit 2,
        whatever the share of sources) or every source failed (exit 1).
        """
        wanted = set(keys) if keys is not None else None
        by_kind: dict[str, list[AssetSpec]] = defaultdict(list)
        for spec in self.specs.values():
            if spec.observable and (wanted is None or spec.key in wanted):
                by_kind[spec.kind].append(spec)
        observed: list[Observation] = []
        failures: list[ObserveFailure] = []
        engine = self._writable()
        for kind, specs in by_kind.items():
            for entry in get_kind(kind).observe(specs, self.settings, engine):
                (failures if isinstance(entry, ObserveFailure) else observed).append(entry)
        changed = record_observations(engine, observed)
        record_observe_failures(engine, failures)
        result = Observed(changed, sum(len(v) for v in by_kind.values()), failures)
        result.raise_if_blind()
        return result

    def sources_of(self, keys: Iterable[str]) -> set[str]:
        """Sources among ``keys`` and their ancestors (what a targeted run must look at)."""
        keys = set(keys)
        return {a for a in ancestors_of(self.graph, keys) | keys if self.specs[a].observable}

    def exists_map(self, keys: Iterable[str]) -> dict[str, bool]:
        """Whether each asset's output is present (a deleted store is `missing`)."""
        return {
            k: get_kind(self.specs[k].kind).exists(self.specs[k], self.settings)
            for k in keys
            if not self.specs[k].observable
        }

    def plan(
        self,
        selection: str | None = None,
        *,
        force: bool = False,
        refresh: bool = False,
        include_upstream: bool = True,
        snapshot: StateSnapshot | None = None,
        check_outputs: bool = True,
    ) -> Plan:
        snapshot = snapshot or self.snapshot()
        now = utcnow()
        exists = self.exists_map(self.specs) if check_outputs else None
        picked = self.select_anchored(selection, snapshot) if selection else None
        return plan(
            self.specs,
            self.graph,
            snapshot,
            now,
            set(picked.keys) if picked else None,
            force=force,
            refresh=refresh,
            include_upstream=include_upstream,
            exists=exists,
            upstream_of=set(picked.anchors) if picked else None,
        )

    def execute(
        self,
        planned: Plan,
        run_id: str,
        start: Start | None = None,
        max_running: int | None = None,
        items: list[PlanItem] | None = None,
        prior: Mapping[str, AssetOutcome] | None = None,
        flow_run_id: str | None = None,
    ) -> dict[str, AssetOutcome]:
        """Run a plan, each asset as soon as its planned inputs are done. ``start`` hands
        an asset to the executor (Prefect tasks in the flows); by default it runs here and
        now, one asset after another. ``items``: a part of the plan only; ``prior``: the
        outcomes of its planned inputs that ran elsewhere."""
        engine = self._writable()
        if start is None:

            def start(item: PlanItem, done: Done) -> None:
                done(
                    materialize_asset(
                        item, self.specs, self.settings, engine, run_id, flow_run_id
                    )
                )

        tolerant = {k for k in planned.keys if get_kind(self.specs[k].kind).partial_inputs_ok}
        if items is None:
            items = [it for gen in planned.generations for it in gen]
        wanted = {it.key for it in items}
        # each run starts a generation's assets in its own order (seeded by the run id):
        # runs started together begin on different assets and share the work by leases
        by_run = [
            it
            for gen in planned.generations
            for it in execution_order([i for i in gen if i.key in wanted], run_id)
        ]
        by_run += [it for it in items if it.key not in {i.key for i in by_run}]
        done = run_as_ready(
            by_run,
            self.graph,
            engine,
            run_id,
            start,
            tolerant,
            max_running,
            prior,
            flow_run_id=flow_run_id,
        )
        return {it.key: done[it.key] for it in items}  # reported in plan order

    def repair(
        self, run_id: str, keys: Iterable[str] | None = None, wait: float = 0.0
    ) -> dict[str, AssetOutcome]:
        """Repair what killed writers left among ``keys`` (all assets by default), each
        under its lease; a run does this before it plans (see ``run.repair``)."""
        return repair_assets(self.specs, self.settings, self._writable(), run_id, keys, wait)

    def pending_repairs(
        self, keys: Iterable[str] | None = None, check_storage: bool = True
    ) -> dict[str, str]:
        return pending_repairs(self.specs, self.settings, self.engine, keys, check_storage)

    def select(self, text: str, snapshot: StateSnapshot | None = None) -> set[str]:
        """The assets ``text`` selects; one that matches nothing is bad input."""
        return set(self.select_anchored(text, snapshot).keys)

    def select_anchored(self, text: str, snapshot: StateSnapshot | None = None) -> Selected:
        """The selection, telling the assets named from those only ``x+`` reached.

        An empty result is an error (exit 2) unless state filters made it so: ``key:"XX*"``
        is a typo, ``status:stale`` matching nothing is good news.
        """
        node = parse(text)
        state = None
        if uses_state(node):
            snapshot = snapshot or self.snapshot()
            full = plan(self.specs, self.graph, snapshot, utcnow())
            state = PlanStateView(full, snapshot)
        picked = select_anchored(text, self.graph, self.specs, state)
        if not picked.keys and state is None:
            raise SelectionError(
                f"selection {text!r} matches no asset; `data-vent assets` lists them"
            )
        return picked

"""The words of the design as ``StrEnum``s: reasons, actions, outcomes, statuses.

Each member *is* its string (``Outcome.SUCCESS == "success"``), so the values stored in the
state DB, JSON output and Prefect parameters are the same bare strings as before: no
migration. Code names the member; a typo is then an ``AttributeError``, not a silent miss.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why an asset is stale (DESIGN.md's table), in the order of the action it asks for."""

    MISSING = "missing"
    SOURCE_REPROCESSED = "source_reprocessed"
    CODE_CHANGED = "code_changed"
    CONFIG_CHANGED = "config_changed"
    WAITING = "waiting"
    SOURCE_ADVANCED = "source_advanced"
    UPSTREAM_CHANGED = "upstream_changed"
    UPSTREAM_PLANNED = "upstream_planned"
    LAST_FAILED = "last_failed"
    FORCED = "forced"


class Action(StrEnum):
    """What a materialization does; the declaration order is the strength (strongest first)."""

    FULL = "full"
    REBUILD = "rebuild"
    RESUME = "resume"
    APPEND = "append"
    REMATERIALIZE = "rematerialize"
    RETRY = "retry"
    REPAIR = "repair"
    """Never planned: finish or undo a killed writer's store write (``data-vent repair``)."""


class Outcome(StrEnum):
    """How one attempt ended. Every value but ``locked`` is stored in ``materialization``."""

    SUCCESS = "success"
    FAILED = "failed"
    WAITING = "waiting"
    """OOI is still preparing the data: resumed by a later run."""
    SKIPPED = "skipped"
    """An upstream asset failed or waits: never tried."""
    LOCKED = "locked"
    """Another live run holds the asset's lease: that run's work, not a failure."""


class SkipCause(StrEnum):
    """Why a planned asset was not tried (``details.skip`` of a ``skipped`` attempt)."""

    UPSTREAM_FAILED = "upstream_failed"
    """An input failed: the one cause that makes a run fail."""
    UPSTREAM_WAITING = "upstream_waiting"
    """An input waits on OOI and there is no output of it to work from yet."""
    UPSTREAM_LOCKED = "upstream_locked"
    """An input is held by another live run: the dependent is left to that run."""
    DONE_ELSEWHERE = "done_elsewhere"
    """Under its lease the asset was found already made fresh by another run ("done by R")."""


class FreshnessState(StrEnum):
    """Freshness on the data's own time (harvest lag against the asset's policy)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    DISCONTINUED = "DISCONTINUED"
    """OOI's table of contents no longer lists the source: nothing more will come."""


class AssetStatus(StrEnum):
    """An asset's status as ``status``, ``graph`` and ``status:`` selections show it."""

    FAILED = "failed"
    MISSING = "missing"
    WAITING = "waiting"
    STALE = "stale"
    FRESH = "fresh"
    UNKNOWN = "unknown"
    """Its source could not be observed (auth refused, OOI down): never shown as fresh."""
    DISCONTINUED = "discontinued"
    """Its source is gone from OOI's table of contents: kept, not harvested, not failed."""
    SOURCE = "source"
    """An observable source: observed, never materialized."""


class NotPlannedCode(StrEnum):
    """Why a candidate asset is left out of a plan."""

    FRESH = "fresh"
    UNOBSERVED = "unobserved"
    """Its source's latest observation failed: freshness unknown."""
    SOURCE_BEHIND = "source_behind"
    WAITING = "waiting"
    UPSTREAM_FAILED = "upstream_failed"
    DISCONTINUED = "discontinued"


class RequestStatus(StrEnum):
    """An asynchronous OOI request: ``pending`` -> ``ready`` -> ``done``, or an end."""

    PENDING = "pending"
    READY = "ready"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


OPEN_REQUEST_STATES = (RequestStatus.PENDING, RequestStatus.READY)
"""Requests a run resumes rather than asks OOI again."""

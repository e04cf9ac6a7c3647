"""Splitting a plan into batches that separate runs (child flow runs on other workers) can
each carry out alone, and the fan-in rest that must wait for all of them.

A batch holds whole *units*: an asset with no planned input starts a unit, and an asset
whose planned inputs all lie in one unit joins it (a stream store and its derived assets).
An asset reading from several units (the catalog) or from the rest goes to the rest, which
the parent runs once every child is done. Units are packed into batches by asset group, or
greedily up to a number of assets per batch (a unit is never split).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from data_vent.core.errors import ConfigError

_REST = -1


@dataclass
class Split:
    batches: list[list[str]] = field(default_factory=list)
    """Keys per child run, in plan order; each batch holds its planned inputs."""
    rest: list[str] = field(default_factory=list)
    """Fan-in keys, run by the parent after every child (in plan order)."""


def parse_fan_out(value: str | None) -> str | int | None:
    """``DATA_VENT_FAN_OUT``: off (empty, ``off``, ``0``), ``group``, or assets per batch."""
    text = (value or "").strip().lower()
    if text in ("", "off", "0", "false", "no"):
        return None
    if text == "group":
        return "group"
    if text.isdigit():
        return int(text)
    raise ConfigError(
        f"DATA_VENT_FAN_OUT={value!r}: use 'group' (one child run per asset group), a number "
        "of assets per child run, or 'off'"
    )


def split_plan(
    keys: Sequence[str],
    graph: nx.DiGraph,
    groups: Mapping[str, str | None],
    mode: str | int,
) -> Split:
    """Split ``keys`` (a plan, in plan order) into child batches and the fan-in rest."""
    planned = set(keys)
    unit_of: dict[str, int] = {}
    units: list[list[str]] = []
    rest: list[str] = []
    for key in keys:
        ups = {unit_of[a] for a in nx.ancestors(graph, key) if a in planned}
        if _REST in ups or len(ups) > 1:
            unit_of[key] = _REST
            rest.append(key)
        elif ups:
            (unit,) = ups
            unit_of[key] = unit
            units[unit].append(key)
        else:
            unit_of[key] = len(units)
            units.append([key])
    return Split(_pack(units, groups, mode), rest)


def _pack(
    units: list[list[str]], groups: Mapping[str, str | None], mode: str | int
) -> list[list[str]]:
    if mode == "group":
        by_group: dict[str, list[str]] = {}
        for unit in units:
            by_group.setdefault(groups.get(unit[0]) or "", []).extend(unit)
        return list(by_group.values())
    size = max(1, int(mode))
    batches: list[list[str]] = []
    for unit in units:
        if batches and len(batches[-1]) + len(unit) <= size:
            batches[-1].extend(unit)
        else:
            batches.append(list(unit))
    return batches


def selection_of(keys: Sequence[str]) -> str:
    """A selection naming exactly ``keys`` (the ``materialize`` deployment's parameter)."""
    return " or ".join(f'key:"{k}"' for k in keys)

"""Splitting a plan into child batches and the fan-in rest (pure), and the setting."""

from __future__ import annotations

import networkx as nx
import pytest

from data_vent.core.errors import ConfigError
from data_vent.run.fanout import parse_fan_out, selection_of, split_plan


def harvest_graph(n: int) -> tuple[nx.DiGraph, list[str], dict[str, str]]:
    g = nx.DiGraph()
    keys, groups = [], {}
    for i in range(n):
        src, store, avail = f"ooi/s{i}", f"s{i}", f"s{i}/availability"
        g.add_edge(src, store)
        g.add_edge(store, avail)
        g.add_edge(store, "catalog")
        keys += [store]
        groups[store] = groups[avail] = "A" if i < 2 else "B"
    keys += [f"s{i}/availability" for i in range(n)] + ["catalog"]  # plan order
    return g, keys, groups


def test_units_stay_whole_and_fan_in_goes_to_the_rest() -> None:
    g, keys, groups = harvest_graph(3)
    split = split_plan(keys, g, groups, 4)
    assert split.batches == [
        ["s0", "s0/availability", "s1", "s1/availability"],
        ["s2", "s2/availability"],
    ]
    assert split.rest == ["catalog"]
    by_group = split_plan(keys, g, groups, "group")
    assert by_group.batches == [
        ["s0", "s0/availability", "s1", "s1/availability"],
        ["s2", "s2/availability"],
    ]
    one = split_plan(keys, g, groups, 1)  # a unit is never split
    assert [len(b) for b in one.batches] == [2, 2, 2]


def test_a_dependent_of_the_rest_is_in_the_rest() -> None:
    g, keys, groups = harvest_graph(2)
    g.add_edge("catalog", "index")
    split = split_plan([*keys, "index"], g, groups, 10)
    assert split.rest == ["catalog", "index"]
    assert split.batches == [["s0", "s0/availability", "s1", "s1/availability"]]


def test_fan_out_setting() -> None:
    assert parse_fan_out("") is None and parse_fan_out("off") is None
    assert parse_fan_out("group") == "group" and parse_fan_out("50") == 50
    with pytest.raises(ConfigError, match="DATA_VENT_FAN_OUT"):
        parse_fan_out("lots")
    assert selection_of(["a", "b/c"]) == 'key:"a" or key:"b/c"'

"""The asset graph: a networkx DiGraph with an edge dep -> asset for every dependency."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import networkx as nx

from data_vent.core.errors import GraphError
from data_vent.core.spec import AssetSpec


def build_graph(specs: Mapping[str, AssetSpec]) -> nx.DiGraph:
    """Build and validate the graph: unknown dependencies and cycles are rejected."""
    graph = nx.DiGraph()
    graph.add_nodes_from(specs)
    for key, spec in specs.items():
        for dep in spec.deps:
            if dep not in specs:
                close = difflib.get_close_matches(dep, list(specs), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                where = f" in {spec.source_file}" if spec.source_file else ""
                raise GraphError(
                    f"asset {key!r}{where} depends on unknown asset {dep!r}{hint}"
                )
            graph.add_edge(dep, key)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise GraphError(f"dependency cycle: {path}")
    return graph

"""The lineage graph as Mermaid, Graphviz dot, or one self-contained HTML page.

The HTML page needs no network: the graph is laid out in the browser by dagre (vendored in
``views/vendor``, MIT, inlined in the page), coloured by status, collapsed by site (group)
when large and by OOI array when the sites would not fit the screen, with a search box,
status filters and an asset's details on click; the fleet's data availability (streams x
days) and the status table follow.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from data_vent.core.vocab import AssetStatus
from data_vent.graph.status import HEADLINE_ORDER
from data_vent.views.report import status_cells

VENDOR = Path(__file__).parent / "vendor"
COLLAPSE_ABOVE = 60
"""Pages with more assets than this open with every site collapsed to one box."""
GROUPS_ON_SCREEN = 23
"""Collapsed boxes the first screen shows whole: a column of the graph pane holds 22 (72vh of
a 1400x1000 window's 913 px viewport, 22 px boxes 6 px apart), the catalog sits in the next.
A collapsed page with more groups than this opens one level higher, by OOI array."""
OOI_SITE = re.compile(r"([A-Z]{2})\d{2}[A-Z0-9]{4}")
"""An OOI site code (``CE02SHBP``): its first two letters name the array."""
ARRAY_NAMES = {
    "CE": "Coastal Endurance",
    "CP": "Coastal Pioneer",
    "GA": "Global Argentine Basin",
    "GI": "Global Irminger Sea",
    "GP": "Global Station Papa",
    "GS": "Global Southern Ocean",
    "RS": "Regional Cabled Array",
}

COLORS = {
    AssetStatus.FRESH: "#2e7d32",
    AssetStatus.STALE: "#ef6c00",
    AssetStatus.FAILED: "#c62828",
    AssetStatus.MISSING: "#757575",
    AssetStatus.WAITING: "#1565c0",
    AssetStatus.SOURCE: "#6a1b9a",
    AssetStatus.UNKNOWN: "#5d4037",
    AssetStatus.DISCONTINUED: "#424242",
}


def _ids(keys: Iterable[str]) -> dict[str, str]:
    return {k: f"n{i}" for i, k in enumerate(sorted(keys))}


def site_arrays(groups: Iterable[str]) -> dict[str, str]:
    """Site -> array, for arrays of two or more sites (folding one site would only add a
    click); other groups (``catalog``, generic ones) keep a box of their own."""
    arrays = {g: m.group(1) for g in groups if (m := OOI_SITE.match(g))}
    sites = Counter(arrays.values())
    return {g: a for g, a in arrays.items() if sites[a] > 1}


def to_mermaid(graph: nx.DiGraph, status: Mapping[str, str]) -> str:
    ids = _ids(graph.nodes)
    lines = ["graph LR"]
    for k, i in ids.items():
        lines.append(f'  {i}["{k}"]:::{status.get(k, AssetStatus.MISSING)}')
    for u, v in sorted(graph.edges):
        lines.append(f"  {ids[u]} --> {ids[v]}")
    for name, color in COLORS.items():
        lines.append(f"  classDef {name} fill:{color},color:#fff")
    return "\n".join(lines) + "\n"


def to_dot(graph: nx.DiGraph, status: Mapping[str, str]) -> str:
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [shape=box, style=filled, fontcolor=white, fontname="Helvetica"];',
    ]
    for k in sorted(graph.nodes):
        lines.append(f'  "{k}" [fillcolor="{COLORS[status.get(k, AssetStatus.MISSING)]}"];')
    for u, v in sorted(graph.edges):
        lines.append(f'  "{u}" -> "{v}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_html(
    graph: nx.DiGraph,
    status: Mapping[str, str],
    rows: list[dict[str, Any]],
    title: str = "data-vent lineage",
    groups: Mapping[str, str | None] | None = None,
    fleet_png: str | None = None,
) -> str:
    """The page: graph (dagre in the browser), filters, details, fleet picture, table."""
    groups = groups or {}
    by_key = {r["key"]: r for r in rows}
    nodes = []
    for k in sorted(graph.nodes):
        r = by_key.get(k)
        d: dict[str, Any] = {"key": k, "status": status.get(k, AssetStatus.MISSING)}
        d["group"] = groups.get(k) or "other"
        if r is not None:
            c = status_cells(r)
            d["details"] = {
                "reasons": [
                    x["code"] + (f" {x['values']}" if x.get("values") else "")
                    for x in r["reasons"]
                ]
                or [r.get("note") or "fresh"],
                "last success": r["last_success_at"] or "never",
                "last attempt": r.get("last_attempt_status") or "-",
                "coverage": c["coverage"],
                "rows": c["rows"],
                "harvest lag": c["harvest lag"],
                "source lag": c["source lag"],
                "freshness": c["freshness"],
            }
            if r.get("last_error"):
                d["details"]["last error"] = r["last_error"]
        nodes.append(d)
    collapse = len(nodes) > COLLAPSE_ABOVE
    shown = {n["group"] for n in nodes}
    arrays = site_arrays(shown) if collapse and len(shown) > GROUPS_ON_SCREEN else {}
    data = {
        "nodes": nodes,
        "edges": sorted([u, v] for u, v in graph.edges),
        "colors": {str(k): v for k, v in COLORS.items()},
        "order": [str(s) for s in HEADLINE_ORDER],
        "collapse": collapse,
        "arrays": arrays,
        "array_names": {a: ARRAY_NAMES[a] for a in set(arrays.values()) if a in ARRAY_NAMES},
    }
    head = [
        "asset",
        "status",
        "last success",
        "time coverage",
        "rows",
        "harvest lag",
        "source lag",
        "freshness",
        "reasons",
    ]
    body = []
    for r in rows:
        st = status.get(r["key"], AssetStatus.MISSING)
        c = status_cells(r)
        cells = [
            r["key"],
            st,
            c["last success"],
            c["coverage"],
            c["rows"],
            c["harvest lag"],
            c["source lag"],
            c["freshness"],
            c["reasons"],
        ]
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        body.append(f'<tr class="{st}" data-key="{html.escape(r["key"])}">{tds}</tr>')
    counts: dict[str, int] = {}
    for s_ in status.values():
        counts[s_] = counts.get(s_, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    filters = "".join(
        f'<label class="chip" style="background:{c}"><input type="checkbox" '
        f'class="status-filter" value="{html.escape(n)}" checked> {html.escape(n)}</label>'
        for n, c in COLORS.items()
    )
    fleet = (
        f'<h2>Data availability</h2><p class="note">rows per day of every stream store '
        f'(white: no data)</p><img id="fleet" alt="fleet data availability" '
        f'src="data:image/png;base64,{fleet_png}">'
        if fleet_png
        else ""
    )
    dagre = (VENDOR / "dagre.min.js").read_text()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1.2em; color: #212121; }}
.chip {{ color: #fff; padding: 2px 8px; border-radius: 4px; margin-right: 6px;
         font-size: 13px; white-space: nowrap; }}
#bar {{ display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }}
#search {{ font-size: 14px; padding: 3px 6px; width: 26em; }}
#main {{ display: flex; gap: 12px; margin: 0.8em 0; }}
#graph {{ overflow: auto; border: 1px solid #e0e0e0; height: 72vh; flex: 1; }}
#details {{ width: 24em; font-size: 13px; border: 1px solid #e0e0e0; padding: 6px 10px;
            overflow: auto; height: 72vh; box-sizing: border-box; }}
#details dt {{ font-weight: bold; margin-top: 4px; }}
#details dd {{ margin: 0 0 0 1em; word-break: break-all; }}
g.node, g.group {{ cursor: pointer; }}
g.group rect {{ stroke: #212121; stroke-width: 1.5; stroke-dasharray: 4 2; }}
g.array rect {{ stroke-width: 2.5; stroke-dasharray: none; }}
g.hit rect {{ stroke: #fdd835; stroke-width: 3; }}
.note {{ color: #616161; font-size: 13px; }}
#fleet {{ max-width: 100%; border: 1px solid #e0e0e0; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #e0e0e0; padding: 3px 6px; text-align: left; }}
th {{ background: #f5f5f5; position: sticky; top: 0; }}
tr.selected td {{ background: #fff59d; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p id="summary">{len(status)} assets: {html.escape(summary)}</p>
<div id="bar"><input id="search" type="search" placeholder="search assets (key or part)"
 aria-label="search assets"> {filters}
<button id="expand">expand all</button><button id="collapse">collapse by site</button>
{'<button id="collapse-arrays">collapse by array</button>' if arrays else ""}
<span id="shown" class="note"></span></div>
<div id="main"><div id="graph"></div>
<div id="details"><p class="note">Click an asset for its details; click a site or array
box to open it.</p></div></div>
{fleet}
<h2>Status</h2>
<table id="status"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
<script type="application/json" id="data">{_script_json(data)}</script>
<script>{dagre}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (raw text: no entity decoding, no early close)."""
    return (
        json.dumps(value, sort_keys=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


_SCRIPT = (Path(__file__).parent / "lineage.js").read_text()

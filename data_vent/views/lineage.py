"""The lineage graph as Mermaid, Graphviz dot, or one self-contained HTML page.

The HTML page needs no network: the graph is an inline SVG laid out by topological
generation (columns) and coloured by status, followed by the status table.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from data_vent.core.vocab import AssetStatus
from data_vent.views.report import fmt_coverage, fmt_reasons

COLORS = {
    AssetStatus.FRESH: "#2e7d32",
    AssetStatus.STALE: "#ef6c00",
    AssetStatus.FAILED: "#c62828",
    AssetStatus.MISSING: "#757575",
    AssetStatus.WAITING: "#1565c0",
    AssetStatus.SOURCE: "#6a1b9a",
    AssetStatus.DISCONTINUED: "#424242",
}


def _ids(keys: Iterable[str]) -> dict[str, str]:
    return {k: f"n{i}" for i, k in enumerate(sorted(keys))}


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


def _svg(graph: nx.DiGraph, status: Mapping[str, str]) -> str:
    gens = [sorted(g) for g in nx.topological_generations(graph)] or [[]]
    labels = {k: k if len(k) <= 62 else k[:29] + "…" + k[-32:] for k in graph.nodes}
    longest = max((len(v) for v in labels.values()), default=8)
    box_w = min(410, max(80, 12 + int(7.3 * longest)))  # 12px monospace ≈ 7.3 px a char
    col_w, row_h, box_h, pad = box_w + 60, 28, 22, 10
    pos: dict[str, tuple[int, int]] = {}
    for c, gen in enumerate(gens):
        for r, key in enumerate(gen):
            pos[key] = (pad + c * col_w, pad + r * row_h)
    width = pad * 2 + len(gens) * col_w
    height = pad * 2 + max(len(g) for g in gens) * row_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'id="lineage" role="img" aria-label="asset lineage"><defs><marker id="arrow" '
        'viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#9e9e9e"/></marker></defs>'
    ]
    for u, v in sorted(graph.edges):
        (x1, y1), (x2, y2) = pos[u], pos[v]
        parts.append(
            f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" '
            f'y2="{y2 + box_h / 2}" stroke="#9e9e9e" stroke-width="1" '
            'marker-end="url(#arrow)"/>'
        )
    for key, (x, y) in pos.items():
        st = status.get(key, AssetStatus.MISSING)
        label = labels[key]
        parts.append(
            f'<g class="node {st}" data-key="{html.escape(key)}"><title>{html.escape(key)}: '
            f'{st}</title><rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="4" '
            f'fill="{COLORS[st]}"/><text x="{x + 6}" y="{y + 15}" fill="#fff" '
            f'font-size="12" font-family="monospace">{html.escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def to_html(
    graph: nx.DiGraph,
    status: Mapping[str, str],
    rows: list[dict[str, Any]],
    title: str = "data-vent lineage",
) -> str:
    legend = "".join(
        f'<span class="chip" style="background:{c}">{html.escape(n)}</span>'
        for n, c in COLORS.items()
    )
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
        cov, reasons = fmt_coverage(r), fmt_reasons(r)
        cells = [
            r["key"],
            st,
            (r["last_success"] or "never")[:16],
            cov,
            "-" if r["rows"] is None else str(r["rows"]),
            r["harvest_lag"],
            r["source_lag"],
            r["freshness"],
            reasons,
        ]
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        body.append(f'<tr class="{st}" data-key="{html.escape(r["key"])}">{tds}</tr>')
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #212121; }}
.chip {{ color: #fff; padding: 2px 8px; border-radius: 4px; margin-right: 6px; }}
#graph {{ overflow: auto; border: 1px solid #e0e0e0; max-height: 70vh; margin: 1em 0; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #e0e0e0; padding: 3px 6px; text-align: left; }}
th {{ background: #f5f5f5; position: sticky; top: 0; }}
tr.selected td {{ background: #fff59d; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p id="summary">{len(status)} assets: {html.escape(summary)}</p>
<p>{legend}</p>
<div id="graph">{_svg(graph, status)}</div>
<h2>Status</h2>
<table id="status"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
<script type="application/json" id="data">{_script_json(status)}</script>
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


# Clicking a node highlights its row in the table; `data-ready` marks a finished render.
_SCRIPT = """
(function () {
  var status = JSON.parse(document.getElementById("data").textContent);
  var rows = {};
  document.querySelectorAll("#status tbody tr").forEach(function (tr) {
    rows[tr.dataset.key] = tr;
  });
  document.querySelectorAll("#lineage g.node").forEach(function (g) {
    g.style.cursor = "pointer";
    g.addEventListener("click", function () {
      Object.values(rows).forEach(function (tr) { tr.classList.remove("selected"); });
      var tr = rows[g.dataset.key];
      if (tr) { tr.classList.add("selected"); tr.scrollIntoView({block: "center"}); }
    });
  });
  var nodes = document.querySelectorAll("#lineage g.node").length;
  document.body.dataset.ready = "true";
  console.info("data-vent lineage ready: " + nodes + " nodes, "
               + Object.keys(rows).length + " rows, " + Object.keys(status).length
               + " statuses");
})();
"""

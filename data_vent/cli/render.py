"""How the commands show their results: rich tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table

from data_vent.cli.app import console
from data_vent.core.records import Observation
from data_vent.core.vocab import FreshnessState, Outcome
from data_vent.graph.planner import Plan
from data_vent.views.report import fmt_coverage, fmt_reasons

OUTCOME_COLORS = {
    Outcome.SUCCESS: "green",
    Outcome.FAILED: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.WAITING: "cyan",
    Outcome.LOCKED: "blue",
}
FRESHNESS_COLORS = {
    FreshnessState.PASS: "green",
    FreshnessState.WARN: "yellow",
    FreshnessState.FAIL: "red",
    FreshnessState.UNKNOWN: "dim",
}
NOTHING_TO_DO = "[green]Nothing to do:[/green] every selected asset is fresh."


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=1, default=str))


def write_text(text: str) -> None:
    sys.stdout.write(text)


def _rows(n: int | None) -> str:
    return str(n) if n is not None else "-"


def assets_table(rows: list[dict[str, Any]]) -> None:
    t = Table("asset", "kind", "group", "deps", title=f"{len(rows)} assets")
    for r in rows:
        deps = ", ".join(r["deps"]) if len(r["deps"]) < 4 else f"{len(r['deps'])} assets"
        t.add_row(r["key"], r["kind"], r["group"] or "-", deps or "-")
    console.print(t)


def plan_table(plan: Plan) -> None:
    if not len(plan):
        console.print(NOTHING_TO_DO)
        return
    t = Table(
        "gen",
        "asset",
        "action",
        "reasons",
        title=f"plan: {len(plan)} assets in {len(plan.generations)} generations",
    )
    for g, gen in enumerate(plan.generations):
        for it in gen:
            t.add_row(str(g), it.key, str(it.action), it.describe() or "-")
    console.print(t)


def repaired_lines(repaired: Mapping[str, Mapping[str, Any]]) -> None:
    """What a run (or ``repair``) found killed writers had left, one line per asset."""
    for key, o in repaired.items():
        what = o["details"].get("repaired") or o["details"].get("note") or ""
        if o["status"] == Outcome.LOCKED:
            what = f"left alone: {o['error']}"
        elif o["status"] == Outcome.FAILED:
            what = f"[red]repair failed:[/red] {o['error']}"
        console.print(
            f"repair {key}: {what} ({o['details'].get('found', '')})", highlight=False
        )


def repair_table(rows: Mapping[str, Mapping[str, Any]]) -> None:
    if not rows:
        console.print("[green]Nothing to repair:[/green] no store was left mid-write.")
        return
    repaired_lines(rows)


def run_summary(result: Mapping[str, Any]) -> None:
    repaired_lines(result.get("repaired") or {})
    outcomes = result["outcomes"]
    if not outcomes:
        console.print(NOTHING_TO_DO)
        return
    t = Table(
        "asset",
        "action",
        "status",
        "rows",
        "last time",
        "s",
        "error",
        title=f"run {result['run_id']}",
    )
    for key, o in outcomes.items():
        c = OUTCOME_COLORS.get(o["status"], "white")
        t.add_row(
            key,
            str(o["action"]),
            f"[{c}]{o['status']}[/{c}]",
            _rows(o["rows"]),
            o["time_max"] or "-",
            f"{o['seconds']:.1f}",
            o["error"] or "",
        )
    console.print(t)
    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[str(o["status"])] = counts.get(str(o["status"]), 0) + 1
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def status_table(rows: list[dict[str, Any]]) -> None:
    t = Table(
        "asset",
        "last success",
        "coverage",
        "rows",
        "harvest lag",
        "source lag",
        "fresh",
        "reasons",
        title=f"{len(rows)} assets",
    )
    for r in rows:
        c = FRESHNESS_COLORS.get(r["freshness"], "white")
        t.add_row(
            r["key"],
            (r["last_success"] or "never")[:16],
            fmt_coverage(r),
            _rows(r["rows"]),
            r["harvest_lag"],
            r["source_lag"],
            f"[{c}]{r['freshness']}[/{c}]",
            fmt_reasons(r),
        )
    console.print(t)


def stream_table(rows: list[dict[str, Any]]) -> None:
    """The demo's closing table: the stream stores and their freshness."""
    t = Table("stream", "coverage", "rows", "harvest lag", "fresh", title="stream stores")
    for r in rows:
        t.add_row(r["key"], fmt_coverage(r), str(r["rows"]), r["harvest_lag"], r["freshness"])
    console.print(t)


def history_table(asset: str, rows: list[dict[str, Any]]) -> None:
    t = Table(
        "id",
        "run",
        "started",
        "status",
        "action",
        "rows",
        "last time",
        "reasons/error",
        title=asset,
    )
    for r in rows:
        why = r["error"] or "; ".join(x["code"] for x in r["reasons"])
        t.add_row(
            str(r["id"]),
            r["run_id"],
            (r["started_at"] or "")[:19],
            r["status"],
            r["action"],
            _rows(r["rows"]),
            (r["time_max"] or "-")[:19],
            why,
        )
    console.print(t)


def observe_table(changed: list[Observation], total: int) -> None:
    t = Table("source", "begin", "end", "count", title=f"{len(changed)} of {total} moved")
    for o in changed:
        t.add_row(o.source_key, str(o.begin_time), str(o.end_time), str(o.count))
    console.print(t)


def lines(texts: Iterable[str]) -> None:
    for line in texts:
        console.print(line, highlight=False)

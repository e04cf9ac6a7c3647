"""How the commands show their results: rich tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from data_vent.cli.app import console
from data_vent.core.records import Observation
from data_vent.core.vocab import FreshnessState, NotPlannedCode, Outcome
from data_vent.graph.planner import Plan
from data_vent.views.report import status_cells

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
    FreshnessState.DISCONTINUED: "magenta",
}
NOTHING_TO_DO = "[green]Nothing to do:[/green] every selected asset is fresh."


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=1, default=str))


def write_text(text: str) -> None:
    sys.stdout.write(text)


def _rows(n: int | None) -> str:
    return str(n) if n is not None else "-"


@dataclass(frozen=True)
class Col:
    """A table column: ``keep`` orders which go first when the terminal is narrow (lowest
    first); the key column is an identifier, never cut, never wrapped, never dropped."""

    header: str
    keep: int = 0
    key: bool = False
    justify: str = "left"


def _longest_word(cell: str) -> int:
    return max((len(w) for w in Text.from_markup(cell).plain.split()), default=1)


def fitted_table(title: str | None, cols: list[Col], rows: list[list[str]]) -> Table:
    """A table that fits the console: key columns whole, other columns wrapped down to their
    longest word, and, where even that does not fit, the least needed columns left out."""
    width = console.width
    need = {
        i: max([len(c.header)] + [_longest_word(r[i]) for r in rows])
        if not c.key
        else max([len(c.header)] + [Text.from_markup(r[i]).cell_len for r in rows])
        for i, c in enumerate(cols)
    }
    shown = list(range(len(cols)))
    droppable = sorted(
        (i for i, c in enumerate(cols) if not c.key), key=lambda i: cols[i].keep
    )

    def total(idx: list[int]) -> int:
        return sum(need[i] for i in idx) + 3 * (len(idx) - 1)

    while total(shown) > width and droppable:
        shown.remove(droppable.pop(0))
    left_out = [cols[i].header for i in range(len(cols)) if i not in shown]
    if left_out:
        n = len(left_out)
        title = f"{title or ''} ({n} column{'s' * (n > 1)} left out: narrow terminal)".strip()
    t = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i in shown:
        c = cols[i]
        if c.key:
            t.add_column(c.header, no_wrap=True, min_width=need[i], overflow="ignore")
        else:
            t.add_column(c.header, justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        t.add_row(*(r[i] for i in shown))
    return t


def show(table: Table) -> None:
    """Print a table; a key longer than the terminal still prints whole (never cropped)."""
    console.print(table, crop=False)


def assets_table(rows: list[dict[str, Any]]) -> None:
    cols = [Col("asset", key=True), Col("kind", 3), Col("group", 2), Col("deps", 1)]
    body = []
    for r in rows:
        deps = ", ".join(r["deps"]) if len(r["deps"]) < 4 else f"{len(r['deps'])} assets"
        body.append([r["key"], r["kind"], r["group"] or "-", deps or "-"])
    show(fitted_table(f"{len(rows)} assets", cols, body))


def plan_table(plan: Plan) -> None:
    if not len(plan):
        console.print(NOTHING_TO_DO)
        return
    cols = [Col("gen", 1), Col("asset", key=True), Col("action", 3), Col("reasons", 2)]
    body = [
        [str(g), it.key, str(it.action), it.describe() or "-"]
        for g, gen in enumerate(plan.generations)
        for it in gen
    ]
    title = f"plan: {len(plan)} assets in {len(plan.generations)} generations"
    show(fitted_table(title, cols, body))


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
    unseen = (result.get("observed") or {}).get("failed") or []
    gone = sorted(
        k
        for k, n in (result.get("not_planned") or {}).items()
        if n["code"] == NotPlannedCode.DISCONTINUED
    )
    if gone:
        console.print(
            f"[magenta]{len(gone)} discontinued[/magenta] (OOI's table of contents no longer "
            f"lists them; not harvested, not failed): {', '.join(gone)}",
            soft_wrap=True,
        )
    if not outcomes:
        console.print(
            NOTHING_TO_DO
            if not unseen
            else f"Nothing was materialized; {len(unseen)} sources could not be observed, "
            "so their assets' freshness is UNKNOWN (`data-vent status`)."
        )
        return
    cols = [
        Col("asset", key=True),
        Col("action", 2),
        Col("status", 6),
        Col("rows", 3, justify="right"),
        Col("last time", 1),
        Col("s", 0, justify="right"),
        Col("error", 5),
    ]
    body = []
    for key, o in outcomes.items():
        c = OUTCOME_COLORS.get(o["status"], "white")
        body.append(
            [
                key,
                str(o["action"]),
                f"[{c}]{o['status']}[/{c}]",
                _rows(o["rows"]),
                o["time_max"] or "-",
                f"{o['seconds']:.1f}",
                o["error"] or "",
            ]
        )
    title = f"run {result['run_id']}"
    if result.get("flow_run_id"):
        title += f" (Prefect flow run {result['flow_run_id']})"
    show(fitted_table(title, cols, body))
    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[str(o["status"])] = counts.get(str(o["status"]), 0) + 1
    if unseen:
        counts["sources not observed"] = len(unseen)
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


def status_table(rows: list[dict[str, Any]]) -> None:
    cols = [
        Col("asset", key=True),
        Col("last success", 0),
        Col("coverage", 1),
        Col("rows", 3, justify="right"),
        Col("harvest lag", 5),
        Col("source lag", 2),
        Col("fresh", 7),
        Col("reasons", 6),
    ]
    body = []
    for r in rows:
        cells = status_cells(r)
        c = FRESHNESS_COLORS.get(r["freshness"], "white")
        body.append(
            [
                r["key"],
                cells["last success"],
                cells["coverage"],
                cells["rows"],
                cells["harvest lag"],
                cells["source lag"],
                f"[{c}]{cells['freshness']}[/{c}]",
                cells["reasons"],
            ]
        )
    show(fitted_table(f"{len(rows)} assets", cols, body))


def stream_table(rows: list[dict[str, Any]]) -> None:
    """The demo's closing table: the stream stores and their freshness."""
    cols = [
        Col("stream", key=True),
        Col("coverage", 1),
        Col("rows", 2, justify="right"),
        Col("harvest lag", 3),
        Col("fresh", 4),
    ]
    body = []
    for r in rows:
        c = status_cells(r)
        body.append([r["key"], c["coverage"], c["rows"], c["harvest lag"], c["freshness"]])
    show(fitted_table("stream stores", cols, body))


def history_table(asset: str, rows: list[dict[str, Any]]) -> None:
    cols = [
        Col("id", 1, justify="right"),
        Col("run", 3),
        Col("flow run", key=True),
        Col("started", 5),
        Col("status", 7),
        Col("action", 4),
        Col("rows", 2, justify="right"),
        Col("last time", 0),
        Col("reasons/error", 6),
    ]
    body = []
    for r in rows:
        why = r["error"] or "; ".join(x["code"] for x in r["reasons"])
        body.append(
            [
                str(r["id"]),
                r["run_id"],
                r.get("flow_run_id") or "-",
                (r["started_at"] or "")[:19],
                r["status"],
                r["action"],
                _rows(r["rows"]),
                (r["time_max"] or "-")[:19],
                why,
            ]
        )
    show(fitted_table(asset, cols, body))


def observe_table(changed: list[Observation], total: int) -> None:
    cols = [Col("source", key=True), Col("begin", 1), Col("end", 3), Col("count", 2)]
    body = [[o.source_key, str(o.begin_time), str(o.end_time), str(o.count)] for o in changed]
    show(fitted_table(f"{len(changed)} of {total} moved", cols, body))


def lines(texts: Iterable[str]) -> None:
    for line in texts:
        console.print(line, highlight=False)

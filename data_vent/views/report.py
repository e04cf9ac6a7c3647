"""Plain-data and markdown views of plans and runs (CLI, artifacts, JSON output)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from data_vent.core.timeutil import fmt_lag
from data_vent.core.vocab import AssetStatus, NotPlannedCode
from data_vent.graph.planner import Plan


def fmt_coverage(row: Mapping[str, Any]) -> str:
    """A status row's store coverage, to the minute: ``first … last``."""
    if not row.get("store_end"):
        return "-"
    return f"{(row.get('store_begin') or '-')[:16]} … {row['store_end'][:16]}"


def fmt_reasons(row: Mapping[str, Any]) -> str:
    """A status row's reason codes, or why it is not stale; first, if a killed writer left
    it mid-write, that it needs repair."""
    codes = "; ".join(x["code"] for x in row["reasons"])
    text = codes or row.get("note") or str(AssetStatus.FRESH)
    err = row.get("observe_error")
    if err and err not in text:
        text += f"; its source could not be observed ({err})"
    if row.get("needs_repair"):
        text = f"NEEDS REPAIR ({row['needs_repair']}: `data-vent repair {row['key']}`); {text}"
    return text


def lag_text(seconds: int | None) -> str:
    """A lag for people (``2d 3h``); ``-`` when unknown."""
    return fmt_lag(timedelta(seconds=seconds) if seconds is not None else None)


def status_cells(row: Mapping[str, Any]) -> dict[str, str]:
    """A status row as people read it (the CLI table and the lineage page's table)."""
    return {
        "last success": (row["last_success_at"] or "never")[:16],
        "coverage": fmt_coverage(row),
        "rows": "-" if row["store_rows"] is None else str(row["store_rows"]),
        "harvest lag": lag_text(row["harvest_lag_seconds"]),
        "source lag": lag_text(row["source_lag_seconds"]),
        "freshness": row["freshness"] or "-",
        "reasons": fmt_reasons(row),
    }


def plan_rows(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "generation": g,
            "key": it.key,
            "action": it.action,
            "reasons": [r.to_json() for r in it.reasons],
        }
        for g, gen in enumerate(plan.generations)
        for it in gen
    ]


def not_planned_rows(plan: Plan) -> dict[str, dict[str, Any]]:
    return {
        k: {"code": n.code, "message": n.message} for k, n in sorted(plan.not_planned.items())
    }


def run_markdown(title: str, plan: Plan, outcomes: Mapping[str, Any], run_id: str) -> str:
    lines = [
        f"# data-vent: {title}",
        "",
        f"run `{run_id}` at {plan.now:%Y-%m-%d %H:%M} UTC",
        "",
        f"## Plan: {len(plan)} assets in {len(plan.generations)} generations",
        "",
    ]
    if len(plan):
        lines += ["| gen | asset | action | reasons |", "|---|---|---|---|"]
        for g, gen in enumerate(plan.generations):
            for it in gen:
                lines.append(f"| {g} | `{it.key}` | {it.action} | {it.describe()} |")
    else:
        lines.append("Nothing to do: every asset is fresh.")
    lines += ["", "## Results", ""]
    if outcomes:
        lines += [
            "| asset | status | rows | last time | seconds | error |",
            "|---|---|---|---|---|---|",
        ]
        for key, out in outcomes.items():
            lines.append(
                f"| `{key}` | {out.status} | {out.rows if out.rows is not None else '-'} | "
                f"{out.time_max or '-'} | {out.seconds:.1f} | {out.error or ''} |"
            )
    else:
        lines.append("No asset was materialized.")
    gone = discontinued(plan)
    if gone:
        head = "## Discontinued (OOI no longer lists them; not harvested, not failed)"
        lines += ["", head, ""]
        lines += [f"- `{k}`" for k in gone]
    return "\n".join(lines) + "\n"


def discontinued(plan: Plan) -> list[str]:
    """Assets left out because OOI's table of contents no longer lists their source."""
    return sorted(
        k for k, n in plan.not_planned.items() if n.code == NotPlannedCode.DISCONTINUED
    )


def children_markdown(children: list[Mapping[str, Any]]) -> str:
    """The fan-out section of a parent's report: one row per child run."""
    lines = [
        "",
        f"## Child runs: {len(children)}",
        "",
        "| child | flow run | state | assets | outcomes |",
        "|---|---|---|---|---|",
    ]
    for c in children:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(c["counts"].items())) or "-"
        lines.append(
            f"| `{c['run_id']}` | {c.get('flow_run_name') or c.get('flow_run_id') or '-'} | "
            f"{c['state']} | {len(c['keys'])} | {counts} |"
        )
    return "\n".join(lines) + "\n"

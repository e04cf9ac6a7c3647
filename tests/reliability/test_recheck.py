"""Defect 2: plan, then re-check under the lease. Two runs that planned from the same state:
the second finds, under each asset's lease, that the first already made it fresh, and skips
it ("done by run R", recorded, not a failure); what is still stale is done as it now is.

Before the fix the second run materialized every asset again (with OOI: a second data
request per stream; see ``test_concurrent_harvests``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.kinds import DAY1, three_levels, write_sources
from tests.reliability.helpers import attempts


@pytest.fixture
def home(isolated_env: Path, tmp_path: Path, db_url: str, monkeypatch) -> Path:
    """src/a -> a, src/b -> b; (a, b) -> ab -> top; (a, b) -> cat (takes partial inputs)."""
    three_levels(tmp_path / "configs", catalog=True)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(tmp_path / "configs"))
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    write_sources(isolated_env, DAY1)
    return isolated_env


def materialized(home: Path) -> Counter[tuple[str, str]]:
    """(asset, action) of every materialization the kinds performed."""
    log = home / "materialized.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(tuple(line.split()) for line in lines)


def workspace():
    from data_vent.run.workspace import Workspace

    ws = Workspace.load()
    ws.sync()
    return ws


def test_second_run_skips_what_the_first_made_fresh(home: Path) -> None:
    from data_vent.run.runner import is_failure

    a, b = workspace(), workspace()
    a.observe()
    plan_a, plan_b = a.plan(), b.plan()  # both plan from the same (empty) state
    assert plan_a.keys == plan_b.keys == {"a", "b", "ab", "top", "cat"}

    out_a = a.execute(plan_a, "run-A")
    out_b = b.execute(plan_b, "run-B")
    assert {k: o.status for k, o in out_a.items()} == dict.fromkeys(plan_a.keys, "success")
    for key, o in out_b.items():
        assert o.status == "skipped", (key, o)
        assert o.error == "done by run run-A"
        assert o.details["done_by"] == "run-A" and not is_failure(o)
    # each asset materialized once; run B's attempts are recorded as skipped, not tried
    assert materialized(home) == Counter(
        {("a", "full"): 1, ("b", "full"): 1, ("ab", "full"): 1}
        | {("top", "full"): 1, ("cat", "full"): 1}
    )
    engine = a.engine
    assert attempts(engine, "success") == Counter(dict.fromkeys(plan_a.keys, 1))
    assert attempts(engine, "skipped") == Counter(dict.fromkeys(plan_b.keys, 1))
    assert b.plan().keys == set()  # and the state says fresh


def test_what_is_still_stale_is_done_as_it_now_is(home: Path) -> None:
    a, b = workspace(), workspace()
    a.observe()
    plan_a, plan_b = a.plan(), b.plan()
    a.execute(plan_a, "run-A")
    (home / "materialized.log").unlink()
    # OOI moved on for src/a after both planned; run B observes it, then runs its old plan
    write_sources(home, {**DAY1, "src/a": ("2024-01-01T00:00:00", "2024-01-03T00:00:00", 150)})
    b.observe()
    out_b = b.execute(plan_b, "run-B")

    assert plan_b.item("a").action == "full"  # what B planned on the empty state...
    assert out_b["a"].status == "success" and out_b["a"].action == "append"  # ...and did
    codes = {r["code"] for r in out_b["a"].reasons}
    assert codes == {"source_advanced"}
    assert out_b["b"].status == "skipped" and out_b["b"].details["done_by"] == "run-A"
    assert out_b["ab"].status == "success"  # its input moved again: still stale
    assert {r["code"] for r in out_b["ab"].reasons} == {"upstream_changed", "upstream_planned"}
    done = materialized(home)
    assert done[("a", "append")] == 1 and ("a", "full") not in done
    assert not any(key == "b" for key, _ in done)

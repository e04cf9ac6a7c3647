"""What a person reads in a terminal: whole asset keys at any width, a selection that matches
nothing said so (exit 2), and ``key+`` planning only what the user named and its stale inputs.

The 25 demo streams' real configs, a fresh state DB; the real console entry point in a
subprocess with the terminal width set by ``COLUMNS``.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from data_vent.demo import DEMO_CONFIGS
from tests.processes import run_cli

pytestmark = pytest.mark.slow  # CLI subprocesses


def dv(*args: str, columns: int = 200) -> subprocess.CompletedProcess:
    return run_cli(*args, columns=columns, TERM="dumb", NO_COLOR=None)


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(DEMO_CONFIGS))
    res = dv("assets", "--json")
    assert res.returncode == 0, res.stderr
    return [r["key"] for r in json.loads(res.stdout)]


@pytest.mark.parametrize("columns", [80, 120])
def test_status_keys_whole_and_no_wrapping(demo_env: list[str], columns: int):
    res = dv("status", columns=columns)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    stores = [k for k in demo_env if not k.startswith("ooi/")]
    # a key longer than the terminal (91 characters: a real glider stream's availability)
    # is still never cut: only then may the table be as wide as that key
    width = max(columns, max(map(len, stores)))
    assert max(len(ln) for ln in lines) <= width, "\n".join(lines)
    for key in stores:  # every key whole, on one line of its own row
        assert sum(bool(re.match(rf"{re.escape(key)}(\s|$)", ln)) for ln in lines) == 1, key
    # at most two lines per asset (reasons may wrap at a word), not ten as with cut keys
    assert len(lines) <= 2 * len(stores) + 4, "\n".join(lines[:12])
    assert "…" not in res.stdout
    if columns == 80:  # too narrow for every column: some are left out, and it says so
        assert "left out" in lines[0]
    else:
        assert "reasons" in res.stdout and "fresh" in res.stdout


def test_plan_table_keys_whole_at_80(demo_env: list[str]):
    res = dv("plan", 'key:"CE02SHBP*"', columns=80)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    longest = max((k for k in demo_env if k.startswith("CE02SHBP")), key=len)
    assert any(longest in ln for ln in lines), res.stdout


@pytest.mark.parametrize(
    ("command", "selection"),
    [
        ("plan", 'key:"XX*"'),
        ("plan", "group:NOWHERE"),
        ("plan", "tag:site=XX and kind:ooi_stream"),
        ("status", 'key:"XX*"'),
        ("materialize", 'key:"XX*"'),
        ("assets", 'key:"XX*"'),
    ],
)
def test_selection_matching_nothing_is_exit_2(demo_env, command: str, selection: str):
    res = dv(command, selection)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "matches no asset" in lines[0], res.stderr
    assert "Traceback" not in res.stderr and "fresh" not in res.stdout


def test_state_filter_matching_nothing_is_not_an_error(demo_env):
    res = dv("plan", "status:waiting")
    assert res.returncode == 0, res.stderr
    assert "Nothing to do" in res.stdout


def test_downstream_selection_takes_in_no_siblings_through_the_catalog(demo_env):
    """``key:"RS01SBPS*"+`` reaches the catalog; the catalog's other inputs stay out."""
    planned = json.loads(dv("plan", 'key:"RS01SBPS*"+', "--json").stdout)
    alone = json.loads(dv("plan", 'key:"RS01SBPS*"+', "--json", "--no-upstream").stdout)
    keys = {r["key"] for r in planned}
    rs01 = {k for k in demo_env if k.startswith("RS01SBPS")}
    assert len(rs01) == 8  # 4 stores, 4 availability
    assert keys == rs01 | {"catalog"} == {r["key"] for r in alone}
    # what the user names still pulls in its stale inputs
    named = json.loads(dv("plan", "catalog", "--json").stdout)
    assert len(named) == 1 + sum(k.startswith("ooi/") for k in demo_env)  # stores + catalog
    assert len(json.loads(dv("plan", "+catalog", "--json").stdout)) == len(named)

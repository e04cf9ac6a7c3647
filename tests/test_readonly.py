"""Read-only commands read (issue 8.6, issue 13.1-13.2, 13.4).

* ``plan``, ``status``, ``why``, ``history``, ``assets``, ``graph`` (and dry runs) leave the
  state DB byte for byte (SQLite) and row for row unchanged, with or without a config folder;
* an empty config folder, or one naming a kind that does not load, is exit 2 before anything
  is written; a sync that would retire more than half of the active assets needs --prune;
* the specs a sync records are the specs: read back, they equal the config's;
* an old schema is one line saying `data-vent db upgrade`, and nothing is migrated;
* ``status --json`` follows ``data_vent/schemas/status-v1.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from data_vent.cli import app
from data_vent.core.errors import BadInput
from data_vent.core.spec import FreshnessPolicy
from tests.dbstate import ROOT, db_rows, dv, fingerprint, one_error_line, sqlite_file
from tests.kinds import write_sources

SCHEMA = ROOT / "data_vent" / "schemas" / "status-v1.json"
SRC, FILE = "tests.kinds:FileSource", "tests.kinds:FileAsset"
ASSETS = [
    {"key": "src/a", "kind": SRC, "observable": True, "group": "g1", "tags": {"site": "A"}},
    {"key": "src/b", "kind": SRC, "observable": True},
    {"key": "a", "kind": FILE, "deps": ["src/a"], "freshness": {"warn": "1h", "fail": "2d"}},
    {"key": "b", "kind": FILE, "deps": ["src/b"], "freshness": {"warn": None, "fail": "3h"}},
    {"key": "ab", "kind": FILE, "deps": ["a", "b"], "config": {"x": [1, 2]}},
    {"key": "top", "kind": FILE, "deps": ["ab"], "code_version": "7", "tags": {"t": "1"}},
]
DAY = ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 100)


def write_configs(folder: Path, assets: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "graph.yaml").write_text(yaml.safe_dump({"assets": assets}))
    return folder


@pytest.fixture
def harvested(isolated_env: Path, tmp_path: Path, monkeypatch, db_url: str) -> dict:
    """A state DB after a run (a fresh, a failed, a skipped asset), then a source advanced;
    every engine closed (the SQLite WAL checkpointed into the file)."""
    from data_vent.run import runner
    from data_vent.run.workspace import Workspace
    from data_vent.settings import get_settings
    from data_vent.state.db import dispose_all

    cfg = write_configs(tmp_path / "configs", ASSETS)
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    write_sources(isolated_env, {"src/a": DAY, "src/b": DAY})
    (isolated_env / "fail").mkdir()
    (isolated_env / "fail" / "b").write_text("")
    ws = Workspace.load(get_settings())
    ws.sync()
    ws.observe()
    outcomes = ws.execute(ws.plan(), runner.new_run_id())
    assert {k: str(o.status) for k, o in outcomes.items()} == {
        "a": "success",
        "b": "failed",
        "ab": "skipped",
        "top": "skipped",
    }
    write_sources(
        isolated_env, {"src/a": ("2024-01-01", "2024-01-02T05:00:00", 150), "src/b": DAY}
    )
    ws.observe()
    dispose_all()
    return {"cfg": cfg, "url": db_url, "home": isolated_env, "tmp": tmp_path}


# ---- 8.6: read-only commands never write ---------------------------------------------------


@pytest.mark.slow  # CLI subprocesses
def test_read_only_commands_leave_the_db_unchanged(harvested: dict):
    tmp, cfg = harvested["tmp"], harvested["cfg"]
    changed = write_configs(
        tmp / "changed",
        [*ASSETS[:2], {**ASSETS[2], "freshness": {"warn": "2h"}}, *ASSETS[3:]]
        + [{"key": "new", "kind": FILE, "deps": ["top"]}],
    )
    before = fingerprint(harvested["url"])
    assert before[1]["asset"] and before[1]["materialization"]
    commands = [
        ["plan"],
        ["plan", "--json", "-c", str(changed)],
        ["materialize", "*", "--dry-run"],
        ["status"],
        ["status", "--json"],
        ["status", "--stale", "-c", str(changed)],
        ["why", "top"],
        ["history", "a"],
        ["history", "b", "--json"],
        ["assets", "-c", str(cfg)],
        ["graph"],
        ["graph", "--format", "dot"],
        ["graph", "--format", "html", "-o", str(tmp / "lineage.html")],
    ]
    for args in commands:
        res = dv(*args)
        assert res.returncode == 0, (args, res.stderr)
        assert fingerprint(harvested["url"]) == before, f"data-vent {' '.join(args)} wrote"
    # the changed folder is noticed, and compared, not synced
    res = dv("status", "-c", str(changed))
    assert "2 asset definitions in the config folder changed" in res.stderr, res.stderr
    assert "(1 added, 1 changed, 0 removed)" in res.stderr  # `new`; a's freshness
    assert fingerprint(harvested["url"]) == before


@pytest.mark.slow  # CLI subprocesses
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_empty_or_broken_config_folder_is_exit_2_and_writes_nothing(harvested: dict):
    tmp = harvested["tmp"]
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("not a config\n")
    bad_kind = write_configs(tmp / "bad", [*ASSETS, {"key": "x", "kind": "nosuch.mod:Kind"}])
    before = fingerprint(harvested["url"])
    cases = [
        (["plan", "-c", str(empty)], "defines no assets"),
        (["status", "-c", str(empty)], "defines no assets"),
        (["harvest", "-c", str(empty)], "defines no assets"),
        (["observe", "-c", str(empty)], "defines no assets"),
        (["plan", "-c", str(bad_kind)], "cannot load asset kind 'nosuch.mod:Kind'"),
        (["harvest", "-c", str(bad_kind)], "cannot load asset kind 'nosuch.mod:Kind'"),
        (["observe", "-c", str(bad_kind)], "cannot load asset kind 'nosuch.mod:Kind'"),
    ]
    for args, expected in cases:
        res = dv(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert expected in one_error_line(res), (args, res.stderr)
        assert fingerprint(harvested["url"]) == before, f"data-vent {' '.join(args)} wrote"


@pytest.mark.slow  # CLI subprocesses
def test_a_sync_that_retires_most_assets_needs_prune(harvested: dict):
    subset = write_configs(harvested["tmp"] / "subset", ASSETS[:1] + ASSETS[2:3])
    before = fingerprint(harvested["url"])
    for args in (["harvest", "-c", str(subset)], ["observe", "-c", str(subset)]):
        res = dv(*args)
        assert res.returncode == 2, (args, res.stderr)
        line = one_error_line(res)
        assert "would deactivate 4 of the 6 active assets" in line and "--prune" in line
        assert fingerprint(harvested["url"]) == before
    res = dv("observe", "-c", str(subset), "--prune")
    assert res.returncode == 0, res.stderr
    from data_vent.state.db import read_engine
    from data_vent.state.specs import recorded_specs

    assert set(recorded_specs(read_engine(harvested["url"]))) == {"src/a", "a"}


def test_prune_guard_counts_active_assets(db_url: str, tmp_path: Path):
    from data_vent.assets.config import load_specs
    from data_vent.state.db import get_engine
    from data_vent.state.specs import sync_specs

    engine = get_engine(db_url)
    full = load_specs(write_configs(tmp_path / "full", ASSETS))
    sync_specs(engine, full)
    half = {k: v for k, v in full.items() if k in ("src/a", "src/b", "a")}
    minority = {k: v for k, v in full.items() if k in ("src/a", "a")}
    before = db_rows(db_url)
    with pytest.raises(BadInput, match="would deactivate 4 of the 6 active assets"):
        sync_specs(engine, minority)
    assert db_rows(db_url) == before
    assert sorted(sync_specs(engine, half).deactivated) == ["ab", "b", "top"]  # half: allowed
    assert sorted(sync_specs(engine, minority, prune=False).deactivated) == ["src/b"]
    assert sorted(sync_specs(engine, full).reactivated) == ["ab", "b", "src/b", "top"]
    assert sorted(sync_specs(engine, minority, prune=True).deactivated) == [
        "ab",
        "b",
        "src/b",
        "top",
    ]


# ---- 13.1: the recorded specs are the specs ------------------------------------------------


def test_recorded_specs_equal_the_configs(db_url: str, tmp_path: Path):
    from data_vent.assets.config import load_specs
    from data_vent.state.db import get_engine, read_engine
    from data_vent.state.specs import recorded_specs, spec_changes, sync_specs

    cfg = write_configs(tmp_path / "configs", ASSETS)
    for p in sorted((ROOT / "tests" / "data" / "configs").glob("*.yaml"))[:3]:
        shutil.copy(p, cfg / p.name)
    specs = load_specs(cfg)
    sync_specs(get_engine(db_url), specs)
    got = recorded_specs(read_engine(db_url))
    assert set(got) == set(specs)
    for key, spec in specs.items():
        r = got[key]
        assert (r.kind, set(r.deps), r.group, r.tags) == (
            spec.kind,
            set(spec.deps),
            spec.group,
            spec.tags,
        ), key
        assert (r.code_version, r.config, r.observable, r.source_file) == (
            spec.code_version,
            spec.config,
            spec.observable,
            spec.source_file,
        ), key
        assert r.config_hash == spec.config_hash, key
        assert r.freshness == (spec.freshness or FreshnessPolicy()), key
    assert got["b"].freshness.warn is None and got["b"].freshness.fail.total_seconds() == 10800
    assert not spec_changes(read_engine(db_url), specs)


# ---- 13.2: no schema, old schema ------------------------------------------------------------


@pytest.mark.slow  # CLI subprocesses
def test_old_schema_says_upgrade_and_nothing_is_migrated(db_url: str, monkeypatch):
    from data_vent.state.db import dispose_all, make_engine
    from data_vent.state.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine, "0001")
    engine.dispose()
    dispose_all()
    monkeypatch.setenv("DATA_VENT_DB_URL", db_url)
    before = fingerprint(db_url)
    for args in (["status"], ["history", "x"], ["graph"]):
        res = dv(*args)
        assert res.returncode == 2, res.stderr
        line = one_error_line(res)
        assert "older schema (revision 0001" in line and "run `data-vent db upgrade`" in line
        assert fingerprint(db_url) == before
    assert db_rows(db_url)["alembic_version"] == [("0001",)]
    up = dv("db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert dv("status", "--json").returncode == 0


@pytest.mark.slow  # CLI subprocesses
def test_no_state_db_is_exit_2_and_creates_nothing(tmp_path: Path, monkeypatch):
    db = tmp_path / "db" / "state.db"
    db.parent.mkdir()
    monkeypatch.setenv("DATA_VENT_DB_URL", f"sqlite:///{db}")
    res = dv("status", cwd=tmp_path)
    assert res.returncode == 2
    assert f"no state DB at {db}" in one_error_line(res)
    assert list(db.parent.iterdir()) == []
    # with a config folder: nothing harvested yet, every asset missing (as `plan` says)
    cfg = write_configs(tmp_path / "configs", ASSETS)
    res = dv("why", "top", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "top: planned, action full" in res.stdout and "because missing" in res.stdout
    assert (
        res.stderr.strip()
        == "note: no state DB yet (nothing harvested): every asset is missing"
    )
    res = dv("status", "--json", "-c", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    rows = {r["key"]: r for r in doc["assets"]}
    assert {k: (r["freshness"], r["status"]) for k, r in rows.items()} == {
        "a": ("UNKNOWN", "missing"),
        "b": ("UNKNOWN", "missing"),
        "ab": (None, "missing"),
        "top": (None, "missing"),
    }
    assert rows["b"]["freshness_fail_seconds"] == 10800 and rows["a"]["store_end"] is None
    assert list(db.parent.iterdir()) == []


# ---- 13.4: the JSON schema ------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_json_follows_the_versioned_schema(harvested: dict, tmp_path: Path):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    runner = CliRunner()
    res = runner.invoke(app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    validator.validate(doc)
    assert doc["schema_version"] == 1 and doc["config_changes"] is None
    rows = {r["key"]: r for r in doc["assets"]}
    assert set(rows) == {"a", "b", "ab", "top"}
    a, b = rows["a"], rows["b"]
    assert (a["freshness"], a["harvest_lag_seconds"], a["store_rows"]) == ("WARN", 18000, 100)
    assert (a["freshness_warn_seconds"], a["freshness_fail_seconds"]) == (3600.0, 172800.0)
    assert a["status"] == "stale" and a["reasons"][0]["code"] == "source_advanced"
    assert b["statuses"] == ["failed", "missing", "stale"] and b["freshness"] == "UNKNOWN"
    assert b["last_attempt_status"] == "failed" and "asked to fail b" in b["last_error"]
    assert rows["ab"]["freshness"] is None and rows["ab"]["source_key"] is None

    # a config folder that differs: named in the document, which still validates
    changed = write_configs(tmp_path / "changed", [*ASSETS, {"key": "n", "kind": FILE}])
    res = runner.invoke(app, ["status", "--json", "-c", str(changed)])
    doc = json.loads(res.stdout)
    validator.validate(doc)
    assert doc["config_changes"] == {
        "added": ["n"],
        "changed": [],
        "removed": [],
        "reactivated": [],
    }
    # what a dashboard relies on is enforced: a bad freshness value is refused
    doc["assets"][0]["freshness"] = "GREEN"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(doc)
    del doc["assets"][0]["freshness"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(doc)


def test_sqlite_file_helper_reads_uri_urls(tmp_path: Path):
    path = tmp_path / "a b" / "state.db"
    assert sqlite_file(f"sqlite:///{path}") == path
    assert sqlite_file(f"sqlite:///file:{path}?mode=ro&uri=true") == path


def test_status_loads_no_array_library():
    """`status`, `why`, `plan` load every configured kind to read the configs; the kinds
    import numpy, pandas and xarray only to materialize (~0.5 s of each command's start)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from data_vent.assets.kinds import _entry_points, get_kind\n"
        "from data_vent.cli import commands\n"
        "for name in _entry_points(): get_kind(name)\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'xarray', 'zarr') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout

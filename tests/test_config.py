"""Harvest configs -> asset specs (all 115 real upstream configs), errors, and DB sync."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from data_vent.assets.config import load_file, load_specs
from data_vent.core.errors import ConfigError
from data_vent.core.records import MaterializationRecord
from data_vent.core.spec import FreshnessPolicy
from data_vent.core.vocab import Action, Outcome
from data_vent.state.db import get_engine
from data_vent.state.materializations import record_materialization
from data_vent.state.models import Asset, Materialization
from data_vent.state.snapshot import read_snapshot
from data_vent.state.specs import sync_specs

ROOT = Path(__file__).parent.parent
CONFIGS = Path(__file__).parent / "data" / "configs"
REAL = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_115_real_configs() -> None:
    assert len(REAL) == 115


def test_all_real_configs_load_unchanged() -> None:
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in REAL}
    specs = load_specs(CONFIGS)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in REAL} == before
    assert len(specs) == 3 * 115 + 1
    tables = []
    for path in REAL:
        doc = yaml.safe_load(path.read_text())
        assert "assigness" in doc  # the upstream misspelling is tolerated
        inst, method, stream = (
            doc["instrument"],
            doc["stream"]["method"],
            doc["stream"]["name"],
        )
        site, node = inst.split("-")[:2]
        table = f"{inst}-{method}-{stream}"
        tables.append(table)
        store, src, avail = specs[table], specs[f"ooi/{table}"], specs[f"{table}/availability"]
        assert store.kind == "ooi_stream" and not store.observable
        assert store.deps == (f"ooi/{table}",)
        assert store.group == site
        for s in (store, src):
            assert s.tags["site"] == site
            assert s.tags["node"] == node
            assert s.tags["instrument"] == inst
            assert s.tags["method"] == method
            assert s.source_file == str(path)
        assert store.config["instrument"] == inst
        assert store.config["refresh"] is bool(doc["harvest_options"].get("refresh", False))
        assert src.kind == "ooi_source" and src.observable and src.deps == ()
        assert avail.kind == "availability" and avail.deps == (table,)
        assert store.freshness is None
    assert set(specs["catalog"].deps) == set(tables)
    assert specs["catalog"].kind == "catalog"


def _copy(tmp_path: Path, n: int) -> tuple[Path, list[Path]]:
    d = tmp_path / "configs"
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for p in REAL[:n]:
        files.append(Path(shutil.copy(p, d / p.name)))
    return d, files


def _table(path: Path) -> str:
    doc = yaml.safe_load(path.read_text())
    return f"{doc['instrument']}-{doc['stream']['method']}-{doc['stream']['name']}"


def test_optional_deps_tags_freshness(tmp_path: Path) -> None:
    d, (a, b) = _copy(tmp_path, 2)
    doc = yaml.safe_load(b.read_text())
    doc["deps"] = [_table(a)]
    doc["tags"] = {"tier": "gold", "site": "override"}
    doc["freshness"] = {"warn": "2h", "fail": "3d"}
    b.write_text(yaml.safe_dump(doc))
    specs = load_specs(d)
    store = specs[_table(b)]
    assert store.deps == (f"ooi/{_table(b)}", _table(a))
    assert store.tags["tier"] == "gold" and store.tags["site"] == "override"
    assert store.freshness == FreshnessPolicy(warn=timedelta(hours=2), fail=timedelta(days=3))
    plain = specs[_table(a)]
    assert plain.freshness is None and "tier" not in plain.tags
    # deps change what the store is made of: a different config hash
    assert store.config_hash != load_specs(_copy(tmp_path / "x", 2)[0])[_table(b)].config_hash


def test_tags_do_not_change_config_hash(tmp_path: Path) -> None:
    d, (a,) = _copy(tmp_path, 1)
    h0 = load_specs(d)[_table(a)].config_hash
    doc = yaml.safe_load(a.read_text())
    doc["tags"] = ["labelled"]
    a.write_text(yaml.safe_dump(doc))
    spec = load_specs(d)[_table(a)]
    assert spec.tags["labelled"] == ""
    assert spec.config_hash == h0


@pytest.mark.parametrize(
    "key, value, field",
    [
        ("freshness", "soon", "freshness"),
        ("freshness", {"warn": "often"}, "freshness"),
        ("tags", 3, "tags"),
        ("deps", "not-a-list", "deps"),
        ("deps", ["../x"], "deps"),
    ],
)
def test_bad_optional_key_is_config_error(tmp_path: Path, key, value, field) -> None:
    d, (a,) = _copy(tmp_path, 1)
    doc = yaml.safe_load(a.read_text())
    doc[key] = value
    a.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_specs(d)
    msg = str(info.value)
    assert str(a) in msg and field in msg and "\n" not in msg


def _patched(tmp_path: Path, **patch) -> Path:
    """One real config with ``patch`` applied (a value of None deletes the key)."""
    d, (a,) = _copy(tmp_path, 1)
    doc = yaml.safe_load(a.read_text())
    for key, value in patch.items():
        section, _, sub = key.partition("__")
        target = doc.setdefault(section, {}) if sub else doc
        name = sub or section
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    a.write_text(yaml.safe_dump(doc))
    return a


@pytest.mark.parametrize(
    "patch, expected",
    [
        ({"freshnes": {"warn": "6h"}}, "unknown field 'freshnes' (did you mean 'freshness'?)"),
        ({"freshness__warm": "6h"}, "unknown field 'freshness.warm' (did you mean 'warn'?)"),
        (
            {"stream__metod": "streamed", "stream__method": None},
            "unknown field 'stream.metod' (did you mean 'method'?)",
        ),
        (
            {"harvest_options__refesh": True},
            "unknown field 'harvest_options.refesh' (did you mean 'refresh'?)",
        ),
        ({"zzz": 1}, "unknown field 'zzz'; valid: instrument, stream, harvest_options"),
        ({"instrument": 3}, "field 'instrument' must be a string, got 3"),
        ({"stream": "x"}, "field 'stream' must be a mapping with method and name"),
    ],
)
def test_unknown_or_misspelt_key_names_the_nearest(tmp_path: Path, patch, expected) -> None:
    a = _patched(tmp_path, **patch)
    with pytest.raises(ConfigError) as info:
        load_file(a)
    assert str(info.value).startswith(f"{a}: {expected}")
    assert "\n" not in str(info.value)


def test_upstream_sections_tolerate_their_own_new_keys(tmp_path: Path) -> None:
    """Upstream owns harvest_options/workflow_config: a key it adds later is not an error,
    an empty section is the defaults; only a near miss of a key data-vent reads is."""
    a = _patched(tmp_path, harvest_options__custom_range=["2024-01-01", "2024-02-01"])
    assert load_file(a)[1].config["refresh"] is False
    b = _patched(tmp_path / "b", harvest_options=None, workflow_config__timezone="UTC")
    assert load_file(b)[1].config["goldcopy"] is False


@pytest.mark.parametrize(
    "doc, expected",
    [
        ({"assets": [{"key": "a", "kind": "k", "dep": ["b"]}]}, "'assets[0].dep' (did you"),
        ({"assets": [{"key": "a"}]}, "missing field 'assets[0].kind'"),
        ({"assets": ["x"]}, "assets[0] must be a mapping"),
        ({"assets": "x"}, "field 'assets' must be a list"),
        ({"asets": []}, "unknown field 'asets' (did you mean 'assets'?)"),
        ({"assets": [{"key": "../a", "kind": "k"}]}, "assets[0]: invalid asset key '../a'"),
    ],
)
def test_generic_file_errors_are_one_line(tmp_path: Path, doc, expected: str) -> None:
    f = tmp_path / "generic.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_file(f)
    assert str(info.value).startswith(f"{f}: ") and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_generic_file_reads_yaml_numbers_and_blanks(tmp_path: Path) -> None:
    f = tmp_path / "generic.yaml"
    f.write_text("assets:\n- {key: a, kind: k, code_version: 2, deps: , tags: , group: 7}\n")
    (spec,) = load_file(f)
    assert (spec.code_version, spec.deps, spec.tags, spec.group) == ("2", (), {}, "7")


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "instrument: CE02SHBP-LJ01D-05-ADCPTB104\nstream:\n  method: [streamed\n  name: x\n"
    )
    with pytest.raises(ConfigError) as info:
        load_file(f)
    msg = str(info.value)
    assert str(f) in msg
    assert "line 4" in msg
    assert "\n" not in msg


def test_missing_field_names_file_and_field(tmp_path: Path) -> None:
    d, (a,) = _copy(tmp_path, 1)
    doc = yaml.safe_load(a.read_text())
    del doc["stream"]["method"]
    a.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_specs(d)
    msg = str(info.value)
    assert str(a) in msg and "'stream.method'" in msg


def test_duplicate_key_across_files_names_both(tmp_path: Path) -> None:
    d, (a,) = _copy(tmp_path, 1)
    twin = shutil.copy(a, d / "twin.yaml")
    with pytest.raises(ConfigError) as info:
        load_specs(d)
    msg = str(info.value)
    assert str(a) in msg and str(twin) in msg


def test_missing_config_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_specs(tmp_path / "nope")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data_vent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("case", ["syntax", "missing_field"])
@pytest.mark.slow  # CLI subprocesses
def test_cli_config_error_exit_2_one_line(tmp_path: Path, case: str) -> None:
    d, (a,) = _copy(tmp_path, 1)
    if case == "syntax":
        a.write_text("instrument: X\nstream:\n  method: [streamed\n  name: x\n")
        expect = "line 4"
    else:
        doc = yaml.safe_load(a.read_text())
        del doc["stream"]["method"]
        a.write_text(yaml.safe_dump(doc))
        expect = "stream.method"
    res = _cli("assets", "--config-dir", str(d))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(a) in lines[0] and expect in lines[0]
    assert "Traceback" not in res.stderr


# ---- sync into the state DB ------------------------------------------------------------


def _assets(engine) -> dict[str, dict]:
    a = Asset.__table__
    with engine.connect() as conn:
        return {r.key: r._asdict() for r in conn.execute(select(a))}


def test_sync_add_change_remove_reactivate(tmp_path: Path, db_url: str) -> None:
    engine = get_engine(db_url)
    d, (a, b, c) = _copy(tmp_path, 3)
    ta, tb, tc = _table(a), _table(b), _table(c)

    specs = load_specs(d)
    rep = sync_specs(engine, specs)
    assert sorted(rep.added) == sorted(specs) and len(rep.added) == 10
    assert rep.changed == rep.deactivated == rep.reactivated == []
    rows = _assets(engine)
    assert set(rows) == set(specs)
    assert all(r["active"] for r in rows.values())
    assert rows[ta]["config_hash"] == specs[ta].config_hash
    assert rows[f"ooi/{ta}"]["observable"] and not rows[ta]["observable"]
    assert rows[ta]["tags"]["site"] == ta.split("-")[0]

    # unchanged: nothing to report
    rep = sync_specs(engine, load_specs(d))
    assert (rep.added, rep.changed, rep.deactivated, rep.reactivated) == ([], [], [], [])

    # a history row for the stream that is about to be removed
    mid = record_materialization(
        engine,
        MaterializationRecord(tc, "r1", Action.FULL).finish(
            Outcome.SUCCESS, data_version="v1"
        ),
    )

    # changed config => new hash
    doc = yaml.safe_load(a.read_text())
    doc["harvest_options"]["refresh"] = not doc["harvest_options"].get("refresh", False)
    a.write_text(yaml.safe_dump(doc))
    specs2 = load_specs(d)
    assert specs2[ta].config_hash != specs[ta].config_hash
    rep = sync_specs(engine, specs2)
    assert set(rep.changed) == {ta, f"ooi/{ta}"}
    assert rep.added == rep.deactivated == rep.reactivated == []
    assert _assets(engine)[ta]["config_hash"] == specs2[ta].config_hash

    # removed => inactive, history kept
    c_text = c.read_text()
    c.unlink()
    specs3 = load_specs(d)
    rep = sync_specs(engine, specs3)
    gone = {tc, f"ooi/{tc}", f"{tc}/availability"}
    assert set(rep.deactivated) == gone
    assert set(rep.changed) == {"catalog"}  # its deps changed
    rows = _assets(engine)
    assert set(rows) == set(specs)  # nothing deleted
    assert {k for k, r in rows.items() if not r["active"]} == gone
    assert rows[tc]["last_success_id"] == mid
    m = Materialization.__table__
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).where(m.c.asset_key == tc)).scalar()
    assert n == 1
    assert tc not in read_snapshot(engine).assets

    # reappearing => reactivated, with its history
    c.write_text(c_text)
    rep = sync_specs(engine, load_specs(d))
    assert set(rep.reactivated) == gone
    assert rep.added == [] and rep.deactivated == []
    rows = _assets(engine)
    assert all(r["active"] for r in rows.values())
    snap = read_snapshot(engine)
    assert snap.state(tc).last_success is not None
    assert snap.state(tc).last_success.id == mid
    assert tb in snap.assets

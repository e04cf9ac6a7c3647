"""A file of another stream is refused by the store, in every path (issue 11.3).

Real files (tests/data/netcdf, see ORIGIN.md): the CE05MOAS-GL319 glider CTD, the CE02SHSM
VELPT, the CP05MOAS-GL388 glider CTD (same stream, another glider), and a Stream Engine
intermediate without global attributes (identified by its name).
"""

from __future__ import annotations

import shutil

import pytest

from data_vent.ncio import load_dataset, save_dataset
from data_vent.store import StreamStore, WrongStream
from data_vent.store.identity import file_stream
from data_vent.store.normalize import NormalizedFile

try:
    from tests import store_fixtures as F
    from tests.test_store_merge import cli
except ImportError:
    import store_fixtures as F
    from test_store_merge import cli

pytest_plugins = [F.__name__]

GL319 = "CE05MOAS-GL319-05-CTDGVM000-recovered_host-ctdgv_m_glider_instrument_recovered"
VELPT = next(p for p in F.NC_FILES if "CE02SHSM-SBD11-04-VELPTA000" in p.name)
NUTNR = next(p for p in F.NC_FILES if "NUTNRA102" in p.name)
NUTNR_TABLE = "CE04OSPS-SF01B-4A-NUTNRA102-streamed-nutnr_a_sample"


def test_file_of_another_instrument_is_refused(tmp_path):
    url = str(tmp_path / GL319)
    store = StreamStore(url, chunk_target_bytes=1 << 14, table=GL319)
    assert store.append_files([F.GLIDER_CTD[0]]).rows_added == 1001
    before = store.info()
    with pytest.raises(WrongStream) as err:
        store.append_files([VELPT])
    msg = str(err.value)
    assert VELPT.name in msg and GL319 in msg and "CE02SHSM-SBD11-04-VELPTA000" in msg
    assert err.value.exit_code == 2 and "\n" not in msg
    # the same stream of another glider: refused too, also inside a rebuild
    with pytest.raises(WrongStream, match="CP05MOAS-GL388-03-CTDGVM000"):
        store.append_files([F.GLIDER_CTD[1], F.GLIDER_CTD[2]])
    with pytest.raises(WrongStream, match="global attributes"):
        store.rebuild_from_files(F.GLIDER_CTD)
    assert store.info() == before
    assert not any("staging" in p.name for p in tmp_path.iterdir())


def test_file_without_attributes_is_identified_by_its_name(tmp_path):
    with NormalizedFile(NUTNR) as nf:
        got = file_stream(nf)
    assert got is not None and got.source == "file name"
    assert got.text() == NUTNR_TABLE
    ok = StreamStore(str(tmp_path / "ok"), table=NUTNR_TABLE).append_files([NUTNR])
    assert ok.rows_added == 72
    other = "CE04OSPS-SF01B-4A-NUTNRA102-streamed-nutnr_a_dark_sample"
    with pytest.raises(WrongStream, match="nutnr_a_sample \\(its file name\\)"):
        StreamStore(str(tmp_path / "dark"), table=other).append_files([NUTNR])
    # a file that says nothing about its stream is taken, and the write says so
    anon = shutil.copy(NUTNR, tmp_path / "x.nc")
    out = StreamStore(str(tmp_path / "anon"), table=other).append_files([anon])
    assert out.rows_added == 72
    assert {"rule": "stream_unidentified", "count": 0, "file": "x.nc", "detail": other} in (
        out.rules_applied
    )


def test_deployment_file_names_are_parsed(tmp_path):
    ds = load_dataset(F.GLIDER_CTD[0], decode_cf=False).isel(obs=slice(0, 10))
    name = f"deployment0003_{GL319}_20160101T000000.000000-20160102T000000.000000.nc"
    ds.attrs = {}
    f = save_dataset(ds, tmp_path / name)
    with NormalizedFile(f) as nf:
        assert file_stream(nf).text() == GL319


def test_ingest_refuses_a_file_of_another_stream(
    isolated_env, stream_config, monkeypatch, capsys
):
    stream_config(GL319)
    monkeypatch.setenv("COLUMNS", "300")
    code, err = cli("ingest", GL319, str(VELPT), capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert VELPT.name in lines[0] and GL319 in lines[0]
    assert not (isolated_env / "stores" / GL319).exists() or not any(
        (isolated_env / "stores" / GL319).rglob(".zmetadata")
    )


def test_the_harvest_store_checks_its_key():
    from data_vent.assets.ooi_stream import OOIStreamKind
    from data_vent.settings import get_settings

    assert OOIStreamKind().store(GL319, get_settings()).table == GL319

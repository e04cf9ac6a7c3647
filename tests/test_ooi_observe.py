"""Observing OOI sources: one metadata/times call per instrument, failures reported."""

from __future__ import annotations

from datetime import datetime

import pytest

from data_vent.core.keys import source_key
from data_vent.ooi.client import OOIClient
from data_vent.ooi.observe import group_by_instrument, observe_and_record, observe_instruments
from data_vent.ooi.simulator import Simulator

pytest.register_assert_rewrite("tests.conftest_ooi", "conftest_ooi")
try:
    import tests.conftest_ooi as fx
except ImportError:  # tests/ is not a package: its folder is on sys.path
    import conftest_ooi as fx  # type: ignore[no-redef]
CLOCK, CTD, CTD_REFDES, PHSEN = fx.CLOCK, fx.CTD, fx.CTD_REFDES, fx.PHSEN

pytest_plugins = [fx.__name__]

CTD_INST = f"{CTD_REFDES}-recovered_inst-ctdpf_sbe43_instrument"
GHOST = f"{CTD_REFDES}-telemetered-ctdpf_sbe43_ghost"  # not in OOI's answer
TABLES = [CTD, CTD_INST, PHSEN, GHOST]


def test_grouping_by_instrument() -> None:
    groups = group_by_instrument(TABLES + [CTD])
    assert groups == {
        CTD_REFDES: [CTD, CTD_INST, GHOST],
        "RS03AXPS-PC03A-4B-PHSENA302": [PHSEN],
    }


def test_one_call_per_instrument(client: OOIClient, sim: Simulator) -> None:
    result = observe_instruments(client, TABLES, concurrency=2)
    assert sim.counter_snapshot()["metadata_times"] == {
        CTD_REFDES: 1,
        "RS03AXPS-PC03A-4B-PHSENA302": 1,
    }
    by_key = {o.source_key: o for o in result}
    assert set(by_key) == {source_key(CTD), source_key(CTD_INST), source_key(PHSEN)}
    assert result.missing == [GHOST] and result.errors == []
    ctd = by_key[source_key(CTD)]
    assert (ctd.begin_time, ctd.end_time, ctd.count) == (datetime(2023, 12, 20), CLOCK, 1729)


def test_failing_instrument_is_reported_not_raised(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(PHSEN, "discontinued")
    sim.set_fault(CTD_INST, "discontinued")  # one stream of a live instrument: just absent
    result = observe_instruments(client, TABLES, concurrency=4)
    assert [o.source_key for o in result] == [source_key(CTD)]
    [err] = result.errors
    assert err.refdes == "RS03AXPS-PC03A-4B-PHSENA302" and err.tables == (PHSEN,)
    assert err.error_type == "OOINotFound" and "discontinued" in err.error
    assert sorted(result.missing) == sorted([CTD_INST, GHOST])


def test_unavailable_instrument_is_reported(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "maintenance")
    result = observe_instruments(client, TABLES, concurrency=4)
    assert [o.source_key for o in result] == [source_key(PHSEN)]
    assert [e.error_type for e in result.errors] == ["OOIUnavailable"]


def test_only_changes_are_recorded(engine, client: OOIClient, sim: Simulator) -> None:
    changed, result = observe_and_record(engine, client, [CTD, PHSEN], concurrency=2)
    assert len(changed) == 2 and len(result) == 2
    changed, _ = observe_and_record(engine, client, [CTD, PHSEN], concurrency=2)
    assert changed == []  # a no-op day
    sim.advance(3600)
    changed, _ = observe_and_record(engine, client, [CTD, PHSEN], concurrency=2)
    assert {o.source_key for o in changed} == {source_key(CTD), source_key(PHSEN)}
    sim.reprocess(CTD)
    changed, _ = observe_and_record(engine, client, [CTD, PHSEN], concurrency=2)
    assert [o.source_key for o in changed] == [source_key(CTD)]

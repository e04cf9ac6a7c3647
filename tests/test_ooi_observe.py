"""Observing OOI sources: OOI's table of contents once, one metadata/times call per
instrument; streams it no longer lists are discontinued, failures reported."""

from __future__ import annotations

from datetime import datetime

from data_vent.core.keys import source_key
from data_vent.ooi.client import OOIClient
from data_vent.ooi.observe import group_by_instrument, observe_and_record, observe_instruments
from data_vent.simulator import Simulator
from tests.conftest_ooi import CLOCK, CTD, CTD_REFDES, PHSEN, ooi_settings

pytest_plugins = ["tests.conftest_ooi"]

CTD_INST = f"{CTD_REFDES}-recovered_inst-ctdpf_sbe43_instrument"
GHOST = f"{CTD_REFDES}-telemetered-ctdpf_sbe43_ghost"  # not in OOI's table of contents
TABLES = [CTD, CTD_INST, PHSEN, GHOST]


def test_grouping_by_instrument() -> None:
    groups = group_by_instrument(TABLES + [CTD])
    assert groups == {
        CTD_REFDES: [CTD, CTD_INST, GHOST],
        "RS03AXPS-PC03A-4B-PHSENA302": [PHSEN],
    }


def live(result) -> list[str]:
    return [o.source_key for o in result if not o.discontinued]


def test_one_call_per_instrument(client: OOIClient, sim: Simulator) -> None:
    result = observe_instruments(client, TABLES, concurrency=2)
    assert sim.counter_snapshot()["metadata_times"] == {
        CTD_REFDES: 1,
        "RS03AXPS-PC03A-4B-PHSENA302": 1,
    }
    assert sim.counter_snapshot()["toc"] == {"all": 1}
    by_key = {o.source_key: o for o in result}
    assert set(live(result)) == {source_key(CTD), source_key(CTD_INST), source_key(PHSEN)}
    assert result.discontinued == [GHOST] and by_key[source_key(GHOST)].discontinued
    assert result.missing == [] and result.errors == []
    ctd = by_key[source_key(CTD)]
    assert (ctd.begin_time, ctd.end_time, ctd.count) == (datetime(2023, 12, 20), CLOCK, 1729)
    assert not ctd.discontinued


def test_streams_gone_from_the_toc_are_discontinued_not_failed(
    client: OOIClient, sim: Simulator
) -> None:
    sim.remove_from_toc(PHSEN)  # the only stream of its instrument
    sim.remove_from_toc(CTD_INST)  # one stream of a live instrument
    result = observe_instruments(client, TABLES, concurrency=4)
    assert live(result) == [source_key(CTD)]
    assert sorted(result.discontinued) == sorted([PHSEN, CTD_INST, GHOST])
    assert result.errors == [] and result.missing == []
    # an instrument whose every stream is gone is not asked at all
    assert sim.counter_snapshot()["metadata_times"] == {CTD_REFDES: 1}
    sim.return_to_toc(PHSEN)
    result = observe_instruments(client, TABLES, concurrency=4)
    assert set(live(result)) == {source_key(CTD), source_key(PHSEN)}


def test_without_a_readable_toc_nothing_is_discontinued(
    client: OOIClient, sim: Simulator
) -> None:
    sim.serve_toc = False  # an OOI without sensor/inv/toc: metadata/times alone decides
    sim.remove_from_toc(PHSEN)
    sim.remove_from_toc(CTD_INST)
    result = observe_instruments(client, TABLES, concurrency=4)
    assert live(result) == [source_key(CTD)] and result.discontinued == []
    assert result.toc_error and "toc" in result.toc_error
    [err] = result.errors
    assert err.refdes == "RS03AXPS-PC03A-4B-PHSENA302" and err.tables == (PHSEN,)
    assert err.error_type == "OOINotFound" and "discontinued" in err.error
    assert sorted(result.missing) == sorted([CTD_INST, GHOST])


def test_unavailable_instrument_is_reported(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "maintenance")
    result = observe_instruments(client, TABLES, concurrency=4)
    assert live(result) == [source_key(PHSEN)]
    assert [e.error_type for e in result.errors] == ["OOIUnavailable"]


def test_unreachable_ooi_reports_every_instrument_once(sim: Simulator) -> None:
    sim.stop()  # nothing listens on the port any more
    settings = ooi_settings(sim.base_url, ooi_retries=0)
    with OOIClient(settings) as client:
        result = observe_instruments(client, TABLES, concurrency=4)
    assert list(result) == []
    assert {e.refdes for e in result.errors} == {CTD_REFDES, "RS03AXPS-PC03A-4B-PHSENA302"}
    assert {e.error_type for e in result.errors} == {"OOIUnavailable"}


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

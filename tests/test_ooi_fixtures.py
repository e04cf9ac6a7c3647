"""Real OOI answers (tests/data/m2m, see ORIGIN.md) through the client's parsers.

``PARSED`` lists each copied fixture with the parser data-vent uses for that endpoint;
``REJECTED`` lists fixtures fed to a parser of another shape, which must refuse them with a
clear message; ``NOT_USED`` names the shared fixtures of endpoints data-vent never calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from data_vent.core.errors import OOIParseError
from data_vent.ooi.client import parse_error_body
from data_vent.ooi.responses import (
    AsyncResponse,
    parse_annotations,
    parse_deployment_numbers,
    parse_deployment_records,
    parse_inventory,
    parse_metadata_times,
    parse_stream_byname,
    parse_toc,
)
from data_vent.ooi.thredds import classify, split_listing

M2M = Path(__file__).parent / "data" / "m2m"
SHARED = Path("/work/shared/fixtures/ooi-real")


def _times(body: Any) -> None:
    times = parse_metadata_times(body)
    assert times and all(t.begin_time and t.end_time and t.count is not None for t in times)
    assert all(t.begin_time <= t.end_time for t in times)


def _async(body: Any) -> None:
    ans = AsyncResponse.from_json(body)
    assert ans.request_uuid and len(ans.all_urls) == 2
    assert ans.catalog_url.endswith("/catalog.xml") and ans.status_url.endswith("/status.txt")
    assert ans.size_calculation and ans.size_calculation > 0


def _inventory(body: Any) -> None:
    assert parse_inventory(body)


def _names(body: Any, table: str, n_data: int, n_other: int) -> None:
    names = [u.rsplit("/", 1)[-1] for u in body]
    listing = split_listing([classify(n, u) for n, u in zip(names, body, strict=True)], table)
    assert len(listing.data) == n_data and len(listing.other) == n_other
    assert all(f.start and f.end and f.start <= f.end for f in listing.data)
    assert all(f.kind == "data" for f in listing.other)  # dependency streams: canonical too


def _m2m_history(body: Any) -> None:
    _async(body["estimated"])
    assert body["params"]["format"] == "application/netcdf"


def _goldcopy(body: Any) -> None:
    table = body["stream_name"]
    files = [classify(d["name"], d["urlPath"]) for d in body["datasets"] + body["provenance"]]
    listing = split_listing(files, table)
    assert len(listing.data) == len(body["datasets"]) and listing.other == []
    assert len(listing.provenance) == len(body["provenance"])
    assert [f.deployment for f in listing.data] == [
        d["deployment"] for d in listing_sorted(body["datasets"])
    ]


def listing_sorted(datasets: list[dict]) -> list[dict]:
    return sorted(datasets, key=lambda d: (d["deployment"], d["start_ts"], d["name"]))


def _error(kind: str) -> Callable[[Any], None]:
    def check(body: Any) -> None:
        assert parse_error_body(body)[0] == kind

    return check


U, O18, O22, H = (
    "uframe_help_samples_2017/",
    "ooinet_2018/",
    "ooinet_2022_2025/",
    "harvest_history/",
)
METBK = "CP04OSSM-SBD11-06-METBKA000-telemetered-metbk_a_dcl_instrument"
DOSTA22 = "GP03FLMA-RIS01-03-DOSTAD000-recovered_host-dosta_abcdjm_sio_instrument_recovered"
DOSTA24 = "CP10CNSM-MFD37-04-DOSTAD000-telemetered-dosta_abcdjm_dcl_instrument"


def _toc(body: Any) -> None:
    toc = parse_toc(body)
    assert set(toc) == {
        f"CE02SHSM-SBD11-04-VELPTA000-telemetered-velpt_ab_dcl_{s}"
        for s in ("diagnostics_metadata", "diagnostics", "instrument")
    }
    inst = toc["CE02SHSM-SBD11-04-VELPTA000-telemetered-velpt_ab_dcl_instrument"]
    assert inst.count == 18825 and inst.end_time == datetime(2017, 4, 10, 23, 45)


PARSED: dict[str, Callable[[Any], None]] = {
    U + "12576_metadata_times_CE01ISSM-MFC31-00-CPMENG000.json": _times,
    U + "12576_metadata_times_partition_CE01ISSM-MFC31-00-CPMENG000.json": _times,
    O22 + "12576_metadata_SUBSET_CE02SHSM-RID27-03-CTDBPC000_recovered_host_2025.json": _times,
    U + "12576_data_request_async_response_CE01ISSM-MFC31-00-CPMENG000-telemetered-"
    "cg_cpm_eng_cpm.json": _async,
    O18 + "12576_data_request_async_response_20180517_GP03FLMB-RIM01-02-CTDMOG060-telemetered-"
    "ctdmo_ghqr_sio_mule_instrument.json": _async,
    O18 + "12576_data_request_async_response_20180615_GP03FLMB-RIM01-02-CTDMOG060-"
    "recovered_inst-ctdmo_ghqr_instrument_recovered.json": _async,
    O18 + f"12576_data_request_async_response_20180817_{METBK}.json": _async,
    U + "12576_sensor_inv__sites.json": _inventory,
    U + "12576_sensor_inv_CE01ISSM__nodes.json": _inventory,
    U + "12576_sensor_inv_CE01ISSM_MFD35__sensors.json": _inventory,
    U + "12576_sensor_inv_CE01ISSM_MFC31_00-CPMENG000__methods.json": _inventory,
    U + "12576_sensor_inv_CE01ISSM_MFC31_00-CPMENG000_telemetered__streams.json": _inventory,
    O22 + "12576_sensor_inv__sites_2025.json": _inventory,
    O22 + "12576_sensor_inv_CE02SHSM__nodes_2025.json": _inventory,
    O22 + "12576_sensor_inv_CE02SHSM_RID27__sensors_2025.json": _inventory,
    O22 + "12576_sensor_inv_CE02SHSM_RID27_03-CTDBPC000__methods_2025.json": _inventory,
    O22 + "12576_sensor_inv_CE02SHSM_RID27_03-CTDBPC000_recovered_host__streams_2025"
    ".json": _inventory,
    U + "12575_stream_byname_cg_cpm_eng_cpm.json": parse_stream_byname,
    U + "12587_events_deployment_inv_CE01ISSM_MFC31_00-CPMENG000__deployment_numbers"
    ".json": parse_deployment_numbers,
    O18 + "12587_events_deployment_inv_GP03FLMB_RIM01_02-CTDMOG060__deployment_numbers"
    ".json": parse_deployment_numbers,
    U + "12587_events_deployment_inv_CE01ISSM_MFC31_00-CPMENG000_1__deployment_record"
    ".json": parse_deployment_records,
    O22 + "12587_events_deployment_inv_CP10CNSM_MFD37_04-DOSTAD000_1__deployment_record_2024"
    ".json": parse_deployment_records,
    U + "12580_anno_find.json": parse_annotations,
    U + "12576_sensor_inv_toc__excerpt.json": _toc,
    O18 + "12576_data_request_error_404_no_results_for_primary_stream.json": _error("nodata"),
    H + "HPIESA301_response__2021-12-07T062044Z__cd2c2c6a9a.json": _error("notfound"),
    O18 + f"thredds_dodsC_listing_20180817_{METBK}.json": lambda b: _names(b, METBK, 3, 3),
    O22 + f"thredds_catalog_html_dataset_hrefs_20220607_{DOSTA22}.json": lambda b: _names(
        b, DOSTA22, 15, 4
    ),
    O22 + f"thredds_catalog_html_dataset_hrefs_20240916_{DOSTA24}.json": lambda b: _names(
        b, DOSTA24, 1, 1
    ),
    H + "CTDPFA107_response__2021-12-01T220139Z__d0841867ad.json": _m2m_history,
    H + "CTDPFA107_response__2021-09-17T223812Z__dc820f04a0.json": _goldcopy,
}

REJECTED: dict[str, tuple[Callable[[Any], Any], str]] = {
    # sync JSON records are not the async shape: data-vent only makes NetCDF requests
    U + "12576_data_request_sync_json_limit_GA01SUMO-RII11-02-CTDMOQ017.json": (
        AsyncResponse.from_json,
        "no requestUUID",
    ),
    # the discontinued message is not a metadata/times answer
    H + "HPIESA301_response__2021-12-07T062044Z__cd2c2c6a9a.json": (
        parse_metadata_times,
        "expected a list",
    ),
    # an inventory is not deployment numbers
    U + "12576_sensor_inv__sites.json": (parse_deployment_numbers, "list of integers"),
}

NOT_USED = (
    "12575_parameter_",
    "12586_vocab_inv_",
    "12587_asset_cal_",
    "sync_json",
    "_all_samples_by_endpoint",
    "12587_events_deployment_query",
    "12587_events_deployment_inv__sites",
    "asset_events_stream_engine/",
    "12587_events_deployment_inv_GP03FLMA_RIS01_03-DOSTAD000_5",
    "ooi-data_status_",
    "ooi-harvester_tests_data/",
    "harvest_history/",
)
"""Endpoints data-vent does not call (parameters, vocab, calibration, sync JSON) and
harvester bookkeeping; one of each harvest_history response shape is copied above."""


def load(rel: str) -> Any:
    return json.loads((M2M / rel).read_text())


@pytest.mark.parametrize("rel", sorted(PARSED))
def test_fixture_is_parsed(rel: str) -> None:
    PARSED[rel](load(rel))


@pytest.mark.parametrize("rel", sorted(REJECTED))
def test_fixture_is_rejected_clearly(rel: str) -> None:
    parser, words = REJECTED[rel]
    with pytest.raises(OOIParseError, match=words) as err:
        parser(load(rel))
    assert "\n" not in str(err.value)


def test_every_copied_fixture_is_listed() -> None:
    copied = {str(p.relative_to(M2M)) for p in M2M.rglob("*.json")}
    assert copied == set(PARSED) | set(REJECTED)


@pytest.mark.skipif(not SHARED.exists(), reason="shared fixture set not on this machine")
def test_every_shared_json_fixture_is_accounted_for() -> None:
    names = {
        Path(k).name.split("__")[0].replace("HPIESA301_", "").replace("CTDPFA107_", "")
        for k in PARSED
    }
    unaccounted = []
    for p in sorted(SHARED.glob("m2m/**/*.json")) + sorted(
        SHARED.glob("harvest_history/**/*.json")
    ):
        rel = str(p.relative_to(SHARED))
        if any(tag in rel for tag in NOT_USED) or p.name in {Path(k).name for k in PARSED}:
            continue
        if p.name.split("__")[0] in names:
            continue
        unaccounted.append(rel)
    assert unaccounted == []


def test_async_response_fields_exact() -> None:
    ans = AsyncResponse.from_json(
        load(O18 + f"12576_data_request_async_response_20180817_{METBK}.json")
    )
    assert ans.request_uuid == "874a1b40-1dfc-4664-8772-aa6b4e0a7989"
    assert ans.number_of_sub_jobs == 14 and ans.size_calculation == 60326684
    assert ans.status_url == (
        "https://opendap.oceanobservatories.org/async_results/sage@marine.rutgers.edu/"
        f"20180817T170126-{METBK}/status.txt"
    )
    times = parse_metadata_times(
        load(U + "12576_metadata_times_CE01ISSM-MFC31-00-CPMENG000.json")
    )
    assert times[0].begin_time == datetime(2015, 8, 25, 0, 36, 10, 708000)


def _shared_responses() -> list[str]:
    if not SHARED.exists():
        return []
    return [
        str(p.relative_to(SHARED))
        for p in sorted(SHARED.glob("harvest_history/**/resp*.json"))
    ]


@pytest.mark.skipif(not SHARED.exists(), reason="shared fixture set not on this machine")
@pytest.mark.parametrize("rel", _shared_responses())
def test_every_shared_harvest_response_parses(rel: str) -> None:
    """All upstream harvester responses: M2M shape, gold-copy shape or discontinued."""
    body = json.loads((SHARED / rel).read_text())
    if "estimated" in body:
        _m2m_history(body)
    elif "datasets" in body:
        _goldcopy(body)
    else:
        _error("notfound")(body)


@pytest.mark.parametrize(
    "parser, body, words",
    [
        (parse_metadata_times, [{"method": "streamed", "count": 3}], "entry without 'stream'"),
        (parse_metadata_times, [{"stream": "s", "method": "m", "count": "many"}], "'count'"),
        (AsyncResponse.from_json, {"requestUUID": "u", "sizeCalculation": "big"}, "bad"),
        (parse_inventory, ["CE04OSPS", 3], "expected a list of names"),
        (parse_deployment_records, [{"eventStartTime": 1}], "expected .XDeployment"),
    ],
)
def test_wrong_field_shape_is_one_line(parser, body, words: str) -> None:
    """The pydantic models of the answers: a field of the wrong type or missing is named."""
    with pytest.raises(OOIParseError, match=words) as err:
        parser(body)
    assert "\n" not in str(err.value)

"""The OOI client against the running simulator: every endpoint, every fault."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
import xarray as xr

from data_vent.core.errors import (
    OOIAuthError,
    OOIDownloadError,
    OOINoData,
    OOINotFound,
    OOIParseError,
    OOIUnavailable,
)
from data_vent.ncio import load_dataset
from data_vent.ooi.client import OOIClient, parse_error_body, redact_url
from data_vent.simulator import Simulator
from tests.conftest_ooi import CLOCK, CTD, CTD_REFDES, M2M_DATA, PHSEN, ooi_settings
from tests.polling import poll_until
from tests.processes import free_port

pytest_plugins = ["tests.conftest_ooi"]

BEGIN, END = datetime(2023, 12, 1), datetime(2024, 2, 1)


def ready_listing(client: OOIClient, table: str, begin=BEGIN, end=END):
    ans = client.request_data(table, begin, end)
    poll_until(lambda: client.request_status(ans.status_url).state == "ready")
    return ans, client.listing(ans.output_url, table)


def test_inventory_levels(client: OOIClient) -> None:
    assert client.inventory() == ["CE04OSPS", "RS03AXPS"]
    assert client.inventory("CE04OSPS") == ["SF01B"]
    assert client.inventory("CE04OSPS", "SF01B") == ["2A-CTDPFA107"]
    assert client.inventory("CE04OSPS", "SF01B", "2A-CTDPFA107") == [
        "recovered_inst",
        "streamed",
    ]
    assert client.inventory("CE04OSPS", "SF01B", "2A-CTDPFA107", "streamed") == [
        "ctdpf_sbe43_sample"
    ]


def test_metadata_times_is_consistent_with_history(client: OOIClient, sim: Simulator) -> None:
    times = {t.stream: t for t in client.metadata_times(CTD_REFDES)}
    ctd = times["ctdpf_sbe43_sample"]
    assert ctd.method == "streamed"
    assert ctd.begin_time == datetime(2023, 12, 20)
    assert ctd.end_time == CLOCK
    assert ctd.count == 12 * 24 * 6 + 1  # 12 days every 10 min, both ends
    assert "ctdpf_sbe43_instrument" in times
    part = client.metadata_times(CTD_REFDES, partition=True)
    assert {t.stream for t in part} == set(times)
    sim.advance(86400)
    later = {t.stream: t for t in client.metadata_times(CTD_REFDES)}["ctdpf_sbe43_sample"]
    assert later.end_time == datetime(2024, 1, 2) and later.count == ctd.count + 144
    assert sim.counter_snapshot()["metadata_times"][CTD_REFDES] == 3


def test_preload_events_annotations(client: OOIClient) -> None:
    assert client.stream_byname("ctdpf_sbe43_sample")["name"] == "ctdpf_sbe43_sample"
    assert client.deployments(CTD_REFDES) == [1, 2]
    records = client.deployment(CTD_REFDES, 1)
    assert records[0]["deploymentNumber"] == 1 and records[0]["@class"] == ".XDeployment"
    assert client.annotations(CTD_REFDES, BEGIN, END) == []


def test_estimate_makes_no_data_request(client: OOIClient, sim: Simulator) -> None:
    est = client.estimate(CTD, BEGIN, END)
    assert est.size_calculation and est.size_calculation > 0
    assert sim.data_requests() == 0
    assert sim.counter_snapshot()["estimates"][CTD] == 1


def test_data_request_lifecycle_and_download(
    client: OOIClient, sim: Simulator, tmp_path: Path
) -> None:
    ans = client.request_data(CTD, BEGIN, END)
    assert ans.request_uuid and len(ans.all_urls) == 2
    assert ans.status_url == ans.all_urls[1] + "/status.txt"
    assert ans.catalog_url.endswith("/catalog.xml")
    assert client.request_status(ans.status_url).state == "pending"
    with pytest.raises(OOINotFound, match="does not exist"):
        client.catalog(ans.output_url)
    poll_until(lambda: client.request_status(ans.status_url).state == "ready")
    listing = client.listing(ans.output_url, CTD)
    # deployments every 7 days from 2023-12-20: files for deployment 1 and 2
    assert [f.deployment for f in listing.data] == [1, 2]
    assert all(f.table == CTD and f.kind == "data" for f in listing.data)
    assert [f.kind for f in listing.provenance] == ["provenance", "provenance"]
    assert len(listing.other) == 1 and "DEPEND000" in listing.other[0].name
    paths = [client.download(f, tmp_path) for f in listing.data]
    assert not list(tmp_path.glob(".*part*"))
    ds = xr.concat([load_dataset(p) for p in paths], dim="obs")
    assert ds.sizes["obs"] == 12 * 24 * 6 + 1
    assert ds.time.to_index().is_monotonic_increasing and ds.time.to_index().is_unique
    assert str(ds.time.values[-1])[:10] == "2024-01-01"
    assert sim.data_requests(CTD) == 1


def test_request_parameters_sent(sim: Simulator, client: OOIClient) -> None:
    params = client.data_request_params(BEGIN, END)
    assert params == {
        "beginDT": "2023-12-01T00:00:00.000000Z",
        "endDT": "2024-02-01T00:00:00.000000Z",
        "format": "application/netcdf",
        "include_provenance": "true",
    }
    assert "email" not in params and "estimate_only" not in params
    with_anno = client.data_request_params(BEGIN, END, include_annotations=True)
    assert with_anno["include_annotations"] == "true"


def test_no_data_in_range(client: OOIClient, sim: Simulator) -> None:
    with pytest.raises(OOINoData, match="no results for primary stream") as err:
        client.request_data(CTD, datetime(2020, 1, 1), datetime(2020, 2, 1))
    assert "no results for primary stream" in err.value.ooi_message


def test_unknown_path_is_not_found(client: OOIClient) -> None:
    with pytest.raises(OOINotFound):
        client.metadata_times("CE04OSPS-SF01B-9Z-NOTHERE000")


# -- faults -------------------------------------------------------------------------------


def test_http_500_retried_then_succeeds(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "http_500", times=2)  # ooi_retries=2: third attempt succeeds
    assert client.metadata_times(CTD_REFDES)
    assert sim.counter_snapshot()["metadata_times"][CTD_REFDES] == 3


def test_http_500_persistent_is_unavailable(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "http_500")
    with pytest.raises(OOIUnavailable, match="answered 500") as err:
        client.request_data(CTD, BEGIN, END)
    assert "sim-token" not in str(err.value)
    # a data request is never retried once it reached OOI: it may have been queued
    assert sim.counter_snapshot()["data_requests"][CTD] == 1


def test_estimate_is_retried_but_data_request_is_not(
    client: OOIClient, sim: Simulator
) -> None:
    sim.set_fault(CTD, "http_500", times=1)
    assert client.estimate(CTD, BEGIN, END).request_uuid is not None  # idempotent: retried
    sim.set_fault(CTD, "http_500", times=1)
    with pytest.raises(OOIUnavailable, match="answered 500"):
        client.request_data(CTD, BEGIN, END)
    assert client.request_data(CTD, BEGIN, END).request_uuid  # the next run's call


def test_maintenance_page_is_unavailable(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "maintenance")
    with pytest.raises(OOIUnavailable, match="HTML page"):
        client.metadata_times(CTD_REFDES)


def test_slow_answer_times_out(sim: Simulator) -> None:
    sim.set_fault(CTD, "slow", seconds=1.0)
    settings = ooi_settings(sim.base_url, ooi_read_timeout=0.3, ooi_retries=1)
    t0 = time.monotonic()
    with OOIClient(settings) as c, pytest.raises(OOIUnavailable, match="timed out"):
        c.metadata_times(CTD_REFDES)
    assert time.monotonic() - t0 < 5


def test_discontinued_stream(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(PHSEN, "discontinued")
    with pytest.raises(OOINotFound, match="discontinued") as err:
        client.request_data(PHSEN, BEGIN, END)
    # a program reads the parts: the URL asked, the status, OOI's own words
    assert err.value.status_code == 404 and "discontinued" in err.value.ooi_message
    assert err.value.url.startswith(client.base_url) and "sensor/inv" in err.value.url
    with pytest.raises(OOINotFound, match="not found in OOI Database"):
        client.metadata_times("RS03AXPS-PC03A-4B-PHSENA302")


def test_never_ready_stays_pending(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "never_ready")
    ans = client.request_data(CTD, BEGIN, END)
    deadline = time.monotonic() + 0.6  # three times the ready delay
    while time.monotonic() < deadline:
        assert client.request_status(ans.status_url).state == "pending"
        time.sleep(0.05)


def test_request_failed_status(client: OOIClient, sim: Simulator) -> None:
    sim.set_fault(CTD, "request_failed")
    ans = client.request_data(CTD, BEGIN, END)
    st = poll_until(
        lambda: (s := client.request_status(ans.status_url)).state != "pending" and s
    )
    assert st.state == "failed" and "failed" in st.text.lower()


@pytest.mark.parametrize("mode", ["file", "connection"])
def test_truncated_netcdf_is_rejected(
    client: OOIClient, sim: Simulator, tmp_path: Path, mode: str
) -> None:
    sim.set_fault(CTD, "truncated", mode=mode)
    _, listing = ready_listing(client, CTD)
    with pytest.raises(OOIDownloadError, match="truncated|broke off"):
        client.download(listing.data[0], tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []  # neither the final name nor the temp file


def test_duplicate_and_out_of_order_times(
    client: OOIClient, sim: Simulator, tmp_path: Path
) -> None:
    sim.set_fault(CTD, "duplicate_times", n=3)
    sim.set_fault(CTD, "out_of_order")
    _, listing = ready_listing(client, CTD)
    path = client.download(listing.data[0], tmp_path)
    t = load_dataset(path, decode_times=False).time.values
    assert len(t) - len(set(t.tolist())) == 3
    assert (t[1:] < t[:-1]).any()


def test_new_variable_and_dimension_growth(
    client: OOIClient, sim: Simulator, tmp_path: Path
) -> None:
    sim.set_fault(CTD, "new_variable", after="2023-12-28T00:00:00")
    sim.set_fault(CTD, "dim_growth", after="2023-12-28T00:00:00", size=4, grown=6)
    _, listing = ready_listing(client, CTD)
    first, second = (client.download(f, tmp_path) for f in listing.data)
    a, b = load_dataset(first), load_dataset(second)
    assert "sea_water_density" not in a and "sea_water_density" in b
    assert a.sizes["wavelength"] == 4 and b.sizes["wavelength"] == 6


def test_reprocessing_changes_count_inside_old_range(
    client: OOIClient, sim: Simulator
) -> None:
    before = {t.stream: t for t in client.metadata_times(CTD_REFDES)}["ctdpf_sbe43_sample"]
    sim.reprocess(CTD, datetime(2023, 12, 20), datetime(2023, 12, 21))
    after = {t.stream: t for t in client.metadata_times(CTD_REFDES)}["ctdpf_sbe43_sample"]
    assert after.begin_time == before.begin_time and after.end_time == before.end_time
    assert after.count == before.count + 144


def test_auth_required_and_never_echoed(sim: Simulator) -> None:
    sim.require_auth = True
    with (
        OOIClient(ooi_settings(sim.base_url, ooi_username=None, ooi_token=None)) as c,
        pytest.raises(OOIAuthError, match="OOI_USERNAME") as err,
    ):
        c.inventory()
    assert err.value.exit_code == 2
    with OOIClient(ooi_settings(sim.base_url)) as c:
        ans = c.request_data(CTD, BEGIN, END)
    assert "sim-token-XYZ" not in repr(ans)
    # results are filed under the account (as OOINet does), never the API user name
    assert "/ooi/account-" in ans.output_url
    assert "sim-user" not in ans.output_url


def test_unreachable_host_is_one_line_without_credentials() -> None:
    port = free_port()  # nobody listens there
    url = f"http://alice:s3cret@127.0.0.1:{port}/api/m2m"
    with OOIClient(ooi_settings(url, ooi_username=None, ooi_token=None, ooi_retries=1)) as c:
        assert c.session.auth == ("alice", "s3cret")
        with pytest.raises(OOIUnavailable) as err:
            c.inventory()
    msg = str(err.value)
    assert "\n" not in msg and "s3cret" not in msg and "alice" not in msg
    assert f"127.0.0.1:{port}/api/m2m/12576/sensor/inv" in msg
    assert "DATA_VENT_OOI_URL" in msg


def test_simulator_control_endpoints(sim: Simulator, client: OOIClient) -> None:
    host = sim.host_url
    assert requests.post(f"{host}/sim/advance", params={"seconds": 3600}).json()["now"] == (
        "2024-01-01T01:00:00"
    )
    r = requests.post(
        f"{host}/sim/fault", params={"table": CTD, "fault": "http_500"}, json={"times": 1}
    )
    assert r.json()["faults"] == ["http_500"]
    assert client.metadata_times(CTD_REFDES)  # one 500, retried
    requests.delete(f"{host}/sim/fault", params={"table": CTD})
    client.request_data(CTD, BEGIN, END)
    counters = requests.get(f"{host}/sim/counters").json()
    assert counters["data_requests"] == {CTD: 1}
    state = requests.get(f"{host}/sim/state").json()
    assert state["requests"][0]["table"] == CTD and state["streams"][CTD]["faults"] == {}
    requests.delete(f"{host}/sim/counters")
    assert sim.data_requests() == 0
    assert (
        requests.post(f"{host}/sim/fault", params={"table": CTD, "fault": "nope"}).status_code
        == 400
    )


def test_simulator_refuses_remote_bind() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Simulator([], host="0.0.0.0")


def test_error_body_shapes() -> None:
    nodata = {
        "message": {
            "status": '{"message": "Query returned no results for primary '
            'stream", "requestUUID": "x"}'
        },
        "status_code": 404,
    }
    assert parse_error_body(nodata)[0] == "nodata"
    gone = {
        "message": "X not found in OOI Database. It may be that this stream has been "
        "discontinued."
    }
    assert parse_error_body(gone)[0] == "notfound"
    assert redact_url("https://u:p@host:8/x?y=1") == "https://host:8/x?y=1"
    with pytest.raises(OOIParseError):
        from data_vent.ooi.names import parse_table

        parse_table("CE04OSPS-SF01B-streamed")


def test_finished_request_found_in_the_account_folder(
    client: OOIClient, sim: Simulator
) -> None:
    """THREDDS lists the account's request folders; only a complete one whose files cover
    the range is offered for reuse."""
    from data_vent.ooi.reuse import account_url, find_finished, folder_created

    sim.set_fault(CTD, "never_ready")
    stuck = client.request_data(CTD, BEGIN, END)
    account = account_url(stuck.output_url)
    assert account is not None
    folders = client.folders(account)
    assert [f.name for f in folders] == [stuck.output_url.split("/")[-2]]
    assert folder_created(folders[0].name) is not None
    assert find_finished(client, account, CTD, BEGIN, datetime(2023, 12, 31)) is None

    sim.clear_fault(CTD, "never_ready")
    ans, listing = ready_listing(client, CTD)
    first, last = listing.data[0].start, listing.data[-1].end
    found = find_finished(client, account, CTD, first, last)
    assert found is not None and found.catalog_url == ans.catalog_url
    assert [f.name for f in found.listing.data] == [f.name for f in listing.data]
    assert found.status_url == ans.status_url
    # a later end, an earlier begin, or another stream: nothing to reuse
    assert find_finished(client, account, CTD, first, datetime(2024, 3, 1)) is None
    assert find_finished(client, account, CTD, datetime(2023, 1, 1), last) is None
    assert find_finished(client, account, PHSEN, first, last) is None


def test_toc_has_the_real_shape_and_leaves_out_discontinued(
    client: OOIClient, sim: Simulator
) -> None:
    """Issue 11.8: ``sensor/inv/toc`` as OOI shapes it; a stream removed from it is gone
    everywhere (inventory, metadata, requests) until it returns."""
    import json

    from data_vent.ooi.client import parse_toc

    real = json.loads(
        (
            M2M_DATA / "uframe_help_samples_2017" / "12576_sensor_inv_toc__excerpt.json"
        ).read_text()
    )
    body = client.get_json("12576/sensor/inv/toc")
    assert body.keys() == real.keys()
    assert body["instruments"][0].keys() == real["instruments"][0].keys()
    assert (
        body["instruments"][0]["streams"][0].keys()
        == real["instruments"][0]["streams"][0].keys()
    )
    assert body["parameter_definitions"][0].keys() == real["parameter_definitions"][0].keys()
    assert set(parse_toc(real)) == {
        f"CE02SHSM-SBD11-04-VELPTA000-telemetered-{s}"
        for s in (
            "velpt_ab_dcl_diagnostics_metadata",
            "velpt_ab_dcl_diagnostics",
            "velpt_ab_dcl_instrument",
        )
    }
    toc = client.toc()
    assert set(toc) == set(sim.streams)
    assert (
        toc[CTD].count
        == next(
            t for t in client.metadata_times(CTD_REFDES) if t.stream == "ctdpf_sbe43_sample"
        ).count
    )

    sim.remove_from_toc(CTD)
    assert CTD not in client.toc()
    assert "streamed" not in client.inventory("CE04OSPS", "SF01B", "2A-CTDPFA107")
    with pytest.raises(OOINotFound, match="discontinued"):
        client.request_data(CTD, BEGIN, END)
    sim.return_to_toc(CTD)
    assert CTD in client.toc()


def test_estimate_of_an_empty_range_means_no_data(client: OOIClient, sim: Simulator) -> None:
    """Like the real API, an estimate of a range without data carries no requestUUID: that
    is "no data", not a malformed answer."""
    with pytest.raises(OOINoData, match="no requestUUID"):
        client.estimate(CTD, datetime(2020, 1, 1), datetime(2020, 1, 2))
    est = client.estimate(CTD, BEGIN, END)
    assert est.request_uuid and est.number_of_sub_jobs == 0
    assert sim.data_requests() == 0

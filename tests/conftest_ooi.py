"""Fixtures of the OOI tests: a simulator on loopback, a client on it, a state DB.

Registered with ``pytest_plugins = ["tests.conftest_ooi"]`` inside the OOI test modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from data_vent.ooi.client import OOIClient
from data_vent.settings import Settings
from data_vent.simulator import SimStream, Simulator

M2M_DATA = Path(__file__).parent / "data" / "m2m"
CTD = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
CTD_REFDES = "CE04OSPS-SF01B-2A-CTDPFA107"
PHSEN = "RS03AXPS-PC03A-4B-PHSENA302-streamed-phsen_data_record"
CLOCK = datetime(2024, 1, 1)


def sim_streams() -> list[SimStream]:
    return [
        SimStream(CTD, datetime(2023, 12, 20), interval=600.0, deployment_days=7),
        SimStream(PHSEN, datetime(2023, 12, 25), interval=3600.0),
        SimStream(
            f"{CTD_REFDES}-recovered_inst-ctdpf_sbe43_instrument",
            datetime(2023, 12, 28),
            interval=1800.0,
        ),
    ]


def ooi_settings(base_url: str, **kw) -> Settings:
    values = dict(
        ooi_url=base_url,
        ooi_username="sim-user",
        ooi_token="sim-token-XYZ",
        ooi_retries=2,
        ooi_backoff=0.01,
        ooi_connect_timeout=2.0,
        ooi_read_timeout=5.0,
    )
    values.update(kw)
    return Settings(**values)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(sim_streams(), ready_delay=0.2, start=CLOCK) as s:
        yield s


@pytest.fixture
def client(sim: Simulator) -> Iterator[OOIClient]:
    with OOIClient(ooi_settings(sim.base_url)) as c:
        yield c


@pytest.fixture
def engine(tmp_path: Path):
    from data_vent.state.db import init_db, make_engine

    eng = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    init_db(eng)
    yield eng
    eng.dispose()

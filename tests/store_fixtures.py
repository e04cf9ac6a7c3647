"""Fixtures of the stream-store tests: real OOI files, a moto S3 server on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "netcdf"
NC_FILES = sorted(DATA.rglob("*.nc"))
SE = DATA / "stream_engine_output"
_GL = "recovered_host-ctdgv_m_glider_instrument_recovered.nc"
GLIDER_CTD = [
    SE / f"deployment0003_CE05MOAS-GL319-05-CTDGVM000-{_GL}",
    SE / f"deployment0006_CE05MOAS-GL319-05-CTDGVM000-{_GL}",
    SE / f"deployment0008_CP05MOAS-GL388-03-CTDGVM000-{_GL}",
]
CTDPFJ = SE / (
    "CE02SHSP-SP001-08-CTDPFJ000-recovered_cspp-ctdpf_j_cspp_instrument_recovered__se1.14.0.nc"
)
NUTNRJ = SE / (
    "CE02SHSP-SP001-05-NUTNRJ000-recovered_cspp-nutnr_j_cspp_instrument_recovered__se1.14.0.nc"
)


def subset(src: Path, dest: Path, index, drop: list[str] | None = None, **isel) -> Path:
    """A real file cut to some rows (and optionally other dims), written back as NetCDF."""
    from data_vent.ncio import load_dataset, save_dataset

    out = load_dataset(src, decode_cf=False).isel(obs=index, **isel)
    return save_dataset(out.drop_vars(drop) if drop else out, dest)


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for the whole session; yields storage_options."""
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    opts = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint},
    }
    yield opts
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket (moto reset) and its storage_options."""
    import requests
    import s3fs

    requests.post(f"{s3_server['client_kwargs']['endpoint_url']}/moto-api/reset", timeout=10)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(**s3_server)
    fs.mkdir("stores")
    yield "s3://stores", s3_server
    s3fs.S3FileSystem.clear_instance_cache()

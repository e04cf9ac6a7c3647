"""Checks a writing command makes before it touches anything: can it write the storage root?

A folder that cannot be created or written (under a file, read-only, no permission) is bad
input (exit 2) caught before any store or DB row is written; an S3 bucket that does not
exist or refuses us likewise, and an S3 endpoint that does not answer (within the S3
timeouts) is exit 1.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from data_vent.core.errors import BadInput, StorageUnavailable
from data_vent.settings import Settings


def check_storage(settings: Settings) -> None:
    root = settings.resolved_storage()
    if root.startswith("s3://"):
        _check_s3(root, settings)
    else:
        _check_local(Path(root.removeprefix("file://")))


def _check_local(path: Path) -> None:
    probe = path / f".data-vent-probe-{uuid.uuid4().hex}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(
            f"storage {path}: cannot write there ({exc.strerror or type(exc).__name__}); "
            "set DATA_VENT_STORAGE (or DATA_VENT_HOME) to a folder data-vent can write"
        ) from None


def _check_s3(root: str, settings: Settings) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **settings.storage_options())
    bucket = path.split("/", 1)[0]
    try:
        fs.ls(bucket, refresh=True)
    except FileNotFoundError:
        raise BadInput(
            f"storage {root}: the bucket {bucket!r} does not exist; create it or fix "
            "DATA_VENT_STORAGE"
        ) from None
    except PermissionError:
        raise BadInput(
            f"storage {root}: access to the bucket {bucket!r} is denied; check "
            "DATA_VENT_S3_KEY and DATA_VENT_S3_SECRET"
        ) from None
    except OSError as exc:  # s3fs's translation of an unanswered call
        raise StorageUnavailable(
            f"storage {root} does not answer ({type(exc).__name__}); check "
            "DATA_VENT_S3_ENDPOINT_URL and the network, or try again later"
        ) from None

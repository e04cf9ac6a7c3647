"""The time-chunk rule: ~target bytes for big first writes, small chunks for small streams."""

from __future__ import annotations

import json

from data_vent.store import StreamStore
from data_vent.store.chunks import DEFAULT_CHUNK_TARGET, MIN_CHUNK_BYTES, growth_rows
from tests import store_fixtures as F


def _chunks(path, name="time") -> int:
    return json.loads((path / name / ".zarray").read_text())["chunks"][0]


def test_growth_rows_rounds_up_to_a_power_of_two_times_growth() -> None:
    assert growth_rows(1000) == 1024 * 4
    assert growth_rows(1024) == 1024 * 4
    assert growth_rows(1) == 4


def test_small_stream_gets_small_chunks_at_the_default_target(tmp_path) -> None:
    path = tmp_path / "s"
    store = StreamStore(str(path), chunk_target_bytes=DEFAULT_CHUNK_TARGET)
    rows = store.append_files([F.CTDPFJ]).rows_total
    # the floor (1 MiB of float64), not 100 MB: the cap 4 x 2**13 rows is below it
    assert growth_rows(rows) < MIN_CHUNK_BYTES // 8
    assert _chunks(path) == MIN_CHUNK_BYTES // 8


def test_small_target_still_wins(tmp_path) -> None:
    path = tmp_path / "s"
    StreamStore(str(path), chunk_target_bytes=1 << 14).append_files([F.CTDPFJ])
    assert _chunks(path) == (1 << 14) // 8

"""Bounded polling, the one way the tests wait for something another process does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    cond: Callable[[], T], timeout: float = 10.0, every: float = 0.02, what: str = "condition"
) -> T:
    """The condition's first truthy value; AssertionError once ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(every)

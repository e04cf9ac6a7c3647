"""Observe OOI sources: OOI's table of contents once, then one ``metadata/times`` call per
instrument, bounded concurrency.

A stream OOI's table of contents (``sensor/inv/toc``) no longer lists is *discontinued*: it
gets a discontinued observation and its instrument is not asked (unless another of its
streams is listed); when the contents cannot be read, nothing is marked discontinued, and
when OOI cannot be reached at all every instrument is reported in ``errors`` at once. An
instrument that fails is reported in ``errors``; the others are still observed. A stream
absent from its instrument's answer yields no observation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data_vent.core.errors import OOIAuthError, OOIError, OOIUnavailable
from data_vent.core.keys import source_key
from data_vent.core.records import Observation
from data_vent.ooi.names import parse_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from data_vent.ooi.client import OOIClient
    from data_vent.ooi.responses import StreamTimes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObserveError:
    """An instrument that could not be observed, with the tables it covers."""

    refdes: str
    tables: tuple[str, ...]
    error: str
    error_type: str


class ObserveResult(list[Observation]):
    """The observations (a plain list) plus ``errors`` and ``missing`` tables."""

    def __init__(
        self,
        observations: Iterable[Observation] = (),
        errors: list[ObserveError] | None = None,
        missing: list[str] | None = None,
    ):
        super().__init__(observations)
        self.errors: list[ObserveError] = errors or []
        self.missing: list[str] = missing or []
        """Tables whose instrument answered without them."""
        self.discontinued: list[str] = []
        """Tables OOI's table of contents no longer lists."""
        self.toc_error: str | None = None


def group_by_instrument(tables: Iterable[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for table in dict.fromkeys(tables):
        groups[parse_table(table).refdes].append(table)
    return dict(groups)


def observe_instruments(
    client: OOIClient, tables: list[str], concurrency: int = 4
) -> ObserveResult:
    """Observe ``tables``; returns a list of observations carrying ``.errors``."""
    result = ObserveResult()
    try:
        listed = set(client.toc())
    except (OOIUnavailable, OOIAuthError) as exc:  # OOI unreachable: no instrument will do
        for refdes, group in group_by_instrument(tables).items():
            err = ObserveError(refdes, tuple(group), str(exc), type(exc).__name__)
            result.errors.append(err)
        return result
    except OOIError as exc:
        log.warning("OOI's table of contents unreadable, none marked discontinued: %s", exc)
        listed, result.toc_error = None, str(exc)
    if listed is not None:
        for table in dict.fromkeys(tables):
            if table not in listed:
                result.discontinued.append(table)
                result.append(Observation(source_key(table), None, None, None, True))
    gone = set(result.discontinued)
    groups = group_by_instrument(t for t in tables if t not in gone)

    def one(refdes: str) -> list[StreamTimes] | OOIError:
        try:
            return client.metadata_times(refdes)
        except OOIError as exc:
            return exc

    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="ooi-observe"
    ) as pool:
        answers = dict(zip(groups, pool.map(one, groups), strict=True))
    for refdes, answer in answers.items():
        if isinstance(answer, OOIError):
            log.warning("observe %s failed: %s", refdes, answer)
            result.errors.append(
                ObserveError(refdes, tuple(groups[refdes]), str(answer), type(answer).__name__)
            )
            continue
        by_stream = {(t.method, t.stream): t for t in answer}
        for table in groups[refdes]:
            name = parse_table(table)
            t = by_stream.get((name.method, name.stream))
            if t is None or (t.begin_time is None and t.end_time is None and t.count is None):
                result.missing.append(table)
                continue
            result.append(Observation(source_key(table), t.begin_time, t.end_time, t.count))
    return result


def observe_and_record(
    engine: Engine, client: OOIClient, tables: list[str], concurrency: int = 4
) -> tuple[list[Observation], ObserveResult]:
    """Observe and store what changed: (changed observations, full result)."""
    from data_vent.state.observations import record_observations

    result = observe_instruments(client, tables, concurrency)
    return record_observations(engine, list(result)), result

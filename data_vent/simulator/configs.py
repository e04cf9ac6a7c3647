"""Harvest config YAMLs (upstream format) -> the streams the simulator serves."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from data_vent.simulator.real import real_stream_from_config
from data_vent.simulator.streams import stream_from_table


def streams_from_configs(config_dir: str | Path, clock: datetime) -> list[Any]:
    """Streams of the harvest config YAMLs in ``config_dir``.

    An optional ``simulator:`` mapping overrides the synthetic defaults (``first``,
    ``interval``, ``deployment_days``, ``faults``) or, with ``files:``, replays real Stream
    Engine files (:func:`~data_vent.simulator.real.real_stream_from_config`).
    """
    out = []
    for path in sorted(Path(config_dir).rglob("*.y*ml")):
        doc = yaml.safe_load(path.read_text()) or {}
        if not isinstance(doc, dict) or "instrument" not in doc or "stream" not in doc:
            continue
        table = f"{doc['instrument']}-{doc['stream']['method']}-{doc['stream']['name']}"
        sim = dict(doc.get("simulator") or {})
        if sim.get("files"):
            out.append(real_stream_from_config(table, clock, sim, path.parent))
        else:
            out.append(stream_from_table(table, clock, **sim))
    return out

"""The fleet's data availability: streams x days, one picture for the status page.

Read from each stream's availability output (rows per day), drawn with matplotlib (Agg, no
pyplot) as a PNG the page inlines; white where a stream has no row that day.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from io import BytesIO

import numpy as np
import pandas as pd

from data_vent.assets.derived import AvailabilityKind, read_json
from data_vent.settings import Settings


def daily_rows(stores: list[str], settings: Settings) -> dict[str, dict[str, int]]:
    """Rows per day of each stream store that has an availability output."""
    kind = AvailabilityKind()
    out = {}
    for key in stores:
        doc = read_json(kind.output_url(f"{key}/availability", settings), settings)
        if doc and doc.get("daily"):
            out[key] = doc["daily"]
    return out


def fleet_png(daily: Mapping[str, Mapping[str, int]]) -> str | None:
    """Base64 PNG of streams (rows) x days (columns), log-scaled rows per day."""
    if not daily:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    keys = sorted(daily)
    first = min(min(d) for d in daily.values())
    last = max(max(d) for d in daily.values())
    days = pd.date_range(first, last, freq="D")
    index = {f"{d:%Y-%m-%d}": i for i, d in enumerate(days)}
    grid = np.full((len(keys), len(days)), np.nan)
    for r, key in enumerate(keys):
        for day, n in daily[key].items():
            if n and day in index:
                grid[r, index[day]] = n
    height = min(2 + 0.16 * len(keys), 40)
    fig = Figure(figsize=(12, height), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        norm=LogNorm(vmin=1, vmax=max(np.nanmax(grid), 2)),
        extent=(-0.5, len(days) - 0.5, len(keys) - 0.5, -0.5),
    )
    ax.set_facecolor("white")
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step), [f"{d:%Y-%m-%d}" for d in days[::step]])
    if len(keys) <= 80:
        ax.set_yticks(range(len(keys)), keys, fontsize=6)
    else:
        ax.set_ylabel(f"{len(keys)} stream stores (sorted by key)")
        ax.set_yticks([])
    fig.colorbar(image, ax=ax, label="rows per day", shrink=0.8)
    out = BytesIO()
    fig.savefig(out, format="png")
    return base64.b64encode(out.getvalue()).decode()

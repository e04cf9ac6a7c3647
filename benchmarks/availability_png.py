"""The availability picture of a long-lived stream: data-vent against a bar per day.

Run: ``python benchmarks/availability_png.py [--days 4000] [--repeat 3]``.

A stream with ``--days`` days of history (a third of them without data, as OOI gaps go) is
drawn by ``availability_png`` (one filled step outline) and, as the baseline in the same run,
by the same figure with ``ax.bar``, one bar per day, as data-vent drew it before. Prints the
median time of each and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from io import BytesIO

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data_vent.assets.derived import availability_png


def bars(daily: dict[str, int], title: str) -> bytes:
    """The baseline: the same figure, a bar per day."""
    fig = Figure(figsize=(10, 2.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    days = pd.date_range(min(daily), max(daily), freq="D")
    rows = np.array([daily.get(f"{d:%Y-%m-%d}", 0) for d in days])
    ax.bar(days, rows, width=1.0, color="#1565c0", linewidth=0)
    gaps = days[rows == 0]
    ax.plot(gaps, np.zeros(len(gaps)), "|", color="#c62828", markersize=10)
    ax.set_title(title, fontsize=9, loc="left")
    out = BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def median_time(draw: Callable[[dict[str, int], str], bytes], daily, repeat: int) -> float:
    draw(daily, "warm-up")
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        draw(daily, "stream")
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    days = pd.date_range("2014-09-01", periods=args.days, freq="D")
    daily = {f"{d:%Y-%m-%d}": int(rng.integers(0, 3)) * 1440 for d in days}
    ours = median_time(availability_png, daily, args.repeat)
    base = median_time(bars, daily, args.repeat)
    print(f"{args.days} days: data-vent {ours:.3f} s, a bar per day {base:.3f} s")
    print(f"ratio: {base / ours:.1f}x faster")


if __name__ == "__main__":
    main()

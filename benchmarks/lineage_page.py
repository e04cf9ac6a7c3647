"""Lineage page at fleet scale: does ``data-vent graph --format html`` still read at N streams?

Clones the 115 real harvest configs (tests/data/configs) into N configs with distinct
instruments spread over many sites (``clone_configs`` of tests/test_lineage_html.py: clone c
of site ``CE02SHBP`` is site ``CE02SHBPXc``), syncs them into a fresh SQLite state DB in a
temp DATA_VENT_HOME, times the CLI writing the page, then opens it in headless Chromium (the
DevTools-pipe client of tests/test_lineage_html.py) and measures: navigate ->
``body[data-ready]`` (first load and median), console problems, labels fitting their boxes,
boxes shown collapsed, whether the catalog box is on the first screen (1400x1000), opening an
array box (when the page opens by OOI array), search ('CTDPF') and expand-all times (in the
page), boxes and label fit after expanding, SVG and page sizes. Times are medians of
--repeat page loads. The same figures follow for the 115 real configs as a baseline, then
the ratio.

    .venv/bin/python benchmarks/lineage_page.py --streams 600
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_lineage_html import (  # noqa: E402
    BOXES,
    CATALOG_ON_SCREEN,
    CHROMIUM,
    LABELS_FIT,
    DevTools,
    clone_configs,
)

READY_TIMEOUT = 120.0
"""Seconds to wait for ``body[data-ready]`` before calling the page broken."""

SVG_SIZE = (
    "(() => { const s = document.getElementById('lineage');"
    " return [+s.getAttribute('width'), +s.getAttribute('height')]; })()"
)
SEARCH = (
    "(() => { const i = document.getElementById('search'); i.value = 'CTDPF';"
    " const t = performance.now(); i.dispatchEvent(new Event('input'));"
    " const ms = performance.now() - t; const keys = [...document.querySelectorAll("
    "'#lineage g.node')].map(g => g.dataset.key);"
    " return [ms, keys.length, keys.every(k => k.includes('CTDPF'))]; })()"
)
OPEN_ARRAY = (
    "(() => { const g = document.querySelector('#lineage g.array');"
    " if (!g) return null; const t = performance.now();"
    " g.dispatchEvent(new MouseEvent('click', {bubbles: true}));"
    " return [performance.now() - t, g.dataset.array]; })()"
)
EXPAND = (
    "(() => { document.getElementById('search').value = '';"
    " const t = performance.now(); document.getElementById('expand').click();"
    " return performance.now() - t; })()"
)


def clean_env(home: Path, configs: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_VENT_")}
    env["DATA_VENT_HOME"] = str(home)
    env["DATA_VENT_CONFIG_DIR"] = str(configs)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def sync_state(env: dict[str, str]) -> None:
    """``Workspace.load(get_settings()).sync()`` with this run's DATA_VENT_* variables."""
    from data_vent.run.workspace import Workspace
    from data_vent.settings import get_settings
    from data_vent.state.db import dispose_all

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        Workspace.load(get_settings()).sync()
    finally:
        dispose_all()
        os.environ.clear()
        os.environ.update(saved)


def evaluate(dt: DevTools, session: str, expression: str, timeout: float = 60) -> Any:
    res = dt.call(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True},
        session,
        timeout=timeout,
    )
    if "exceptionDetails" in res:
        raise RuntimeError(f"{expression[:60]}...: {res['exceptionDetails']}")
    return res["result"].get("value")


def open_until_ready(dt: DevTools, url: str) -> tuple[str, float | None]:
    """A new page (console captured from the start); seconds from navigate to ready."""
    target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Runtime", "Log", "Page"):
        dt.call(f"{domain}.enable", session=session)
    t0 = time.perf_counter()
    dt.call("Page.navigate", {"url": url}, session, timeout=READY_TIMEOUT)
    deadline = t0 + READY_TIMEOUT
    while time.perf_counter() < deadline:
        left = max(1.0, deadline - time.perf_counter())
        try:  # the old document's context may vanish under us while the new one commits
            ready = evaluate(
                dt, session, "document.body && document.body.dataset.ready", timeout=left
            )
        except RuntimeError:
            ready = None
        if ready == "true":
            return session, time.perf_counter() - t0
        time.sleep(0.01)
    return session, None


def measure(streams: int, work: Path, repeat: int) -> dict[str, Any]:
    configs, home, out = work / "configs", work / "home", work / "out"
    for d in (configs, home, out):
        d.mkdir(parents=True)
    sites = clone_configs(streams, configs)
    env = clean_env(home, configs)
    t = time.perf_counter()
    sync_state(env)
    sync_s = time.perf_counter() - t

    exe = Path(sys.executable).parent / "data-vent"
    t = time.perf_counter()
    res = subprocess.run(
        [str(exe), "graph", "--format", "html", "-o", "page.html"],
        env=env,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
    )
    cli_s = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"data-vent graph failed:\n{res.stdout}\n{res.stderr}")
    page = out / "page.html"
    fig: dict[str, Any] = {
        "streams": streams,
        "sites": sites,
        "assets": 3 * streams + 1,
        "sync s": sync_s,
        "cli s": cli_s,
        "page bytes": page.stat().st_size,
    }
    with DevTools(work / "ud", window="1400,1000") as dt:
        runs = [browse(dt, page.as_uri()) for _ in range(repeat)]
        fig["problems"] = dt.problems()
    for k, v in runs[-1].items():  # times: the median of the runs; the rest: the last run
        timed = k.endswith((" s", " ms")) and all(r[k] is not None for r in runs)
        fig[k] = statistics.median(r[k] for r in runs) if timed else v
        if k == "ready s":
            fig["ready first s"] = runs[0][k]  # the browser's first load of the page
    fig["problems"] = fig.pop("problems")  # printed last
    return fig


def browse(dt: DevTools, url: str) -> dict[str, Any]:
    """One fresh tab on the page: ready, search, expand-all."""
    s, ready_s = open_until_ready(dt, url)
    fig: dict[str, Any] = {"ready s": ready_s}
    if ready_s is None:
        return fig
    fig["labels fit"] = evaluate(dt, s, LABELS_FIT)
    fig["boxes collapsed"] = evaluate(dt, s, BOXES)
    fig["svg collapsed"] = evaluate(dt, s, SVG_SIZE)
    fig["catalog on screen"] = evaluate(dt, s, CATALOG_ON_SCREEN)
    opened = evaluate(dt, s, OPEN_ARRAY)  # the first array box, if the page opens by array
    if opened is not None:
        fig["open array ms"], fig["array opened"] = opened
        fig["boxes array open"] = evaluate(dt, s, BOXES)
        fig["array labels fit"] = evaluate(dt, s, LABELS_FIT)
        fig["catalog on screen array open"] = evaluate(dt, s, CATALOG_ON_SCREEN)
    ms, hits, all_match = evaluate(dt, s, SEARCH)
    fig["search ms"], fig["search hits"] = ms, hits
    fig["search all match"] = all_match
    fig["search labels fit"] = evaluate(dt, s, LABELS_FIT)
    fig["expand ms"] = evaluate(dt, s, EXPAND, timeout=READY_TIMEOUT)
    fig["boxes expanded"] = evaluate(dt, s, BOXES)
    fig["expanded labels fit"] = evaluate(dt, s, LABELS_FIT)
    fig["svg expanded"] = evaluate(dt, s, SVG_SIZE)
    target = dt.call("Target.getTargetInfo", session=s)["targetInfo"]["targetId"]
    dt.call("Target.closeTarget", {"targetId": target})
    return fig


def show(fig: dict[str, Any]) -> None:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if v >= 10 else f"{v:.3f}"
        if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
            return f"{v[0]:.0f} x {v[1]:.0f} px"
        return json.dumps(v) if isinstance(v, list) else str(v)

    print(f"--- {fig['streams']} streams ---")
    for k, v in fig.items():
        if k != "streams":
            print(f"  {k:<28} {fmt(v)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=600)
    ap.add_argument("--baseline", type=int, default=115, help="streams of the baseline run")
    ap.add_argument("--repeat", type=int, default=3, help="page loads; times are medians")
    args = ap.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install -y chromium")
    figs = []
    with tempfile.TemporaryDirectory(prefix="dv-lineage-") as tmp:
        for n in (args.streams, args.baseline):
            figs.append(measure(n, Path(tmp) / f"n{n}", args.repeat))
            show(figs[-1])
    big, base = figs
    if big["ready s"] and base["ready s"]:
        print(
            f"{big['streams']} vs {base['streams']}: "
            f"{big['ready s'] / base['ready s']:.2f}\u00d7 the time to ready, "
            f"{big['expand ms'] / base['expand ms']:.2f}\u00d7 to expand, "
            f"{big['page bytes'] / base['page bytes']:.2f}\u00d7 the bytes"
        )
    broken = [
        f"{f['streams']}: {what}"
        for f in figs
        for what, bad in (
            ("not ready", f["ready s"] is None),
            ("ready > 5 s", (f["ready s"] or 0) > 5),
            ("console problems", bool(f.get("problems"))),
            ("catalog off the first screen", f.get("catalog on screen") is not True),
            ("labels overflow", not f.get("labels fit", False)),
            ("opened array's labels overflow", not f.get("array labels fit", True)),
            ("search shows non-matches", not f.get("search all match", False)),
            ("expand > 5 s", f.get("expand ms", 0) > 5000),
            ("expanded boxes != assets", f.get("boxes expanded") != f["assets"]),
            ("expanded labels overflow", not f.get("expanded labels fit", False)),
        )
        if bad
    ]
    print("problems: " + ("; ".join(broken) if broken else "none"))


if __name__ == "__main__":
    main()

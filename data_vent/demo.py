"""``data-vent demo``: the whole product on the embedded defaults, in one command.

Starts the bundled OOI simulator on a free loopback port with the 31 demo streams (7 of them
replaying real Stream Engine files), runs the daily harvest, advances the simulated clock by a
day, runs it again (only the new range is requested and appended) and prints the status table.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from data_vent.settings import Settings, get_settings

DEMO_CONFIGS = Path(__file__).parent / "demo_configs"
DEMO_DEFAULTS: dict[str, Any] = {
    "config_dir": DEMO_CONFIGS,
    "ooi_request_wait": 60.0,
    "ooi_poll_interval": 0.5,
    # Demo streams hold days, not years: small chunks keep each daily append cheap
    # (a Zarr v2 tail chunk is rewritten whole on every append).
    "chunk_target_bytes": 1024 * 1024,
}


MARKER = ".data-vent-demo"


def _fresh_home(home: Path) -> Path:
    """Start each demo from scratch; never delete a folder the demo did not create."""
    from data_vent.core.errors import BadInput

    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise BadInput(f"{home} is not empty and not a demo folder; pass another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("created by `data-vent demo`; deleted by the next demo\n")
    return home


def demo_settings(home: Path, ooi_url: str) -> Settings:
    """The demo's settings: its home and simulator, the demo defaults where the
    environment sets nothing (the environment wins)."""
    env = get_settings()
    defaults = {k: v for k, v in DEMO_DEFAULTS.items() if k not in env.model_fields_set}
    return env.model_copy(update={**defaults, "home": home, "ooi_url": ooi_url})


def run_demo(
    home: Path, days: int = 2, ready_delay: float = 1.0, console: Console | None = None
) -> dict:
    """Run ``days`` simulated daily harvests; returns the runs' results and the settings."""
    from data_vent import flows
    from data_vent.core.timeutil import utcnow
    from data_vent.simulator import Simulator

    console = console or Console()
    home = _fresh_home(home.resolve())
    start = (utcnow() - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    sim = Simulator(
        DEMO_CONFIGS, ready_delay=ready_delay, start=start, workdir=home / "simulator"
    )
    base = sim.start()
    settings = demo_settings(home, base)
    console.print(
        f"[bold]OOI simulator[/bold] on {base} with {len(sim.streams)} streams; "
        f"simulated clock at {sim.now:%Y-%m-%d %H:%M}"
    )
    results = []
    try:
        for day in range(days):
            if day:
                now = sim.advance(86400)
                console.print(
                    f"\n[bold]Day {day + 1}[/bold]: simulated clock advanced to "
                    f"{now:%Y-%m-%d %H:%M}"
                )
            else:
                console.print("\n[bold]Day 1[/bold]: first harvest (full history)")
            before = sim.data_requests()
            result = flows.run_flow(flows.daily_harvest, settings=settings)
            results.append(result)
            counts: dict[str, int] = {}
            for o in result["outcomes"].values():
                counts[o["status"]] = counts.get(o["status"], 0) + 1
            console.print(
                f"  observed {result['observed']['observed']} sources "
                f"({len(result['observed']['changed'])} moved); planned {len(result['plan'])}"
                f" assets; {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}; "
                f"{sim.data_requests() - before} OOI data requests"
            )
    finally:
        sim.stop()
    console.print()
    console.print(f"Stores:   {settings.resolved_storage()}")
    console.print(f"State DB: {settings.resolved_db_url()}")
    console.print(f"Catalog:  {settings.resolved_storage()}/catalog.yaml")
    console.print(
        "\nTry next (status, why, history and graph need only the state DB):\n"
        f"  export DATA_VENT_HOME={home}\n"
        "  data-vent status --stale\n"
        "  data-vent why CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample\n"
        "  data-vent history CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample\n"
        "  data-vent graph --format html -o lineage.html\n"
        f"  data-vent plan -c {DEMO_CONFIGS}\n"
        "  python -c \"import xarray as xr; print(xr.open_zarr('"
        f"{settings.resolved_storage()}/CE04OSPS-SF01B-2A-CTDPFA107-streamed-"
        "ctdpf_sbe43_sample'))\""
    )
    return {"runs": results, "ooi_url": base, "settings": settings}

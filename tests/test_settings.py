"""The settings a user reads about are the settings the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_vent.settings import SettingsError, check_env

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_settings() -> list[str]:
    """Every ``DATA_VENT_*`` name in the README's Settings table rows."""
    rows = [
        line for line in README.read_text().splitlines() if line.startswith("| `DATA_VENT_")
    ]
    return sorted({re.match(r"\| `(DATA_VENT_[A-Z0-9_]+)`", r).group(1) for r in rows})


def test_every_documented_setting_is_accepted() -> None:
    names = readme_settings()
    assert "DATA_VENT_WORKER_NAME" in names and len(names) > 20
    for name in names:
        check_env({name: "x"})  # raises SettingsError on an unknown name


def test_an_unknown_setting_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(SettingsError, match="DATA_VENT_WORKER_NAM.*DATA_VENT_WORKER_NAME"):
        check_env({"DATA_VENT_WORKER_NAM": "wA"})

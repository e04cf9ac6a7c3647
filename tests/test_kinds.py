"""Asset kinds are found by name through the ``data_vent.kinds`` entry points, or imported
from ``package.module:Class``; an unknown name is a one-line config error."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from data_vent.assets import kinds
from data_vent.assets.kinds import ENTRY_POINT_GROUP, AssetKind, get_kind
from data_vent.core.errors import ConfigError

BUILTIN = {"ooi_source", "ooi_stream", "availability", "catalog"}


def test_builtin_kinds_are_entry_points_loaded_by_name() -> None:
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert installed.keys() >= BUILTIN
    for name in BUILTIN:
        kind = get_kind(name)
        assert isinstance(kind, AssetKind) and kind.name == name
        assert installed[name] == f"{type(kind).__module__}:{type(kind).__qualname__}"
    assert get_kind("catalog").partial_inputs_ok and get_kind("ooi_source").observable


def test_installed_entry_point_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party package's kind: an entry point of the group, loaded on first use."""
    from importlib.metadata import EntryPoint

    ep = EntryPoint("file_asset", "tests.kinds:FileAsset", ENTRY_POINT_GROUP)
    monkeypatch.setattr(kinds, "_entry_points", lambda: {"file_asset": ep})
    monkeypatch.setattr(kinds, "_KINDS", {})
    assert type(get_kind("file_asset")).__name__ == "FileAsset"
    assert get_kind("file_asset") is get_kind("file_asset")  # one instance per process


def test_module_class_plugin_still_works() -> None:
    kind = get_kind("tests.kinds:FileSource")
    assert kind.observable and get_kind("tests.kinds:FileSource") is kind


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ooi_strem", "unknown asset kind 'ooi_strem' (did you mean 'ooi_stream'?); known: a"),
        ("nosuch.module:Kind", "cannot load asset kind 'nosuch.module:Kind'"),
        ("tests.kinds:NoSuchKind", "cannot load asset kind 'tests.kinds:NoSuchKind'"),
    ],
)
def test_unknown_kind_is_one_line_config_error(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_kind(name)
    assert expected in str(info.value) and "\n" not in str(info.value)

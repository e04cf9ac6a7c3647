"""Building the asset graph: cycles, unknown dependencies, key validation."""

from __future__ import annotations

import pytest

from data_vent.assets.config import load_specs
from data_vent.core.errors import ConfigError, GraphError, KeyError_
from data_vent.core.keys import validate_key
from data_vent.core.spec import AssetSpec
from data_vent.graph.build import build_graph


def specs_of(*items: AssetSpec) -> dict[str, AssetSpec]:
    return {s.key: s for s in items}


def test_edges_point_from_dependency_to_asset() -> None:
    g = build_graph(specs_of(AssetSpec("a", "k"), AssetSpec("b", "k", ("a",))))
    assert set(g.edges) == {("a", "b")}
    assert set(g.nodes) == {"a", "b"}


@pytest.mark.parametrize(
    "deps, spelled",
    [
        ({"a": ("b",), "b": ("a",)}, {"a -> b -> a", "b -> a -> b"}),
        ({"a": ("a",)}, {"a -> a"}),
        (
            {"a": ("c",), "b": ("a",), "c": ("b",), "d": ()},
            {"a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"},
        ),
    ],
    ids=["two", "self", "three"],
)
def test_cycle_is_rejected_and_spelled_out(deps: dict, spelled: set[str]) -> None:
    specs = specs_of(*(AssetSpec(k, "k", d) for k, d in deps.items()))
    with pytest.raises(GraphError) as info:
        build_graph(specs)
    msg = str(info.value)
    assert msg.startswith("dependency cycle: ")
    assert msg.removeprefix("dependency cycle: ") in spelled


def test_unknown_dependency_names_both_keys() -> None:
    specs = specs_of(AssetSpec("ctd", "k"), AssetSpec("report", "k", ("ctd", "nowhere")))
    with pytest.raises(GraphError) as info:
        build_graph(specs)
    msg = str(info.value)
    assert "'report'" in msg and "'nowhere'" in msg
    assert "\n" not in msg


def test_unknown_dependency_names_the_file_and_suggests(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text(
        "assets:\n- {key: summary, kind: k, deps: [ctd_sampel]}\n"
        "- {key: ctd_sample, kind: k}\n"
    )
    with pytest.raises(GraphError) as info:
        build_graph(load_specs(tmp_path))
    msg = str(info.value)
    assert str(tmp_path / "a.yaml") in msg
    assert "'summary'" in msg and "'ctd_sampel'" in msg and "'ctd_sample'" in msg


BAD_KEYS = [
    "..",
    "../etc/passwd",
    "a/../b",
    "a/./b",
    "/abs/path",
    "trailing/",
    "a//b",
    "",
    "with space",
    "semi;colon",
    "back\\slash",
    "star*",
    "ümlaut",
    "new\nline",
    "s3://bucket/x",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_key_rejected(key: str) -> None:
    with pytest.raises(KeyError_) as info:
        validate_key(key)
    assert repr(key) in str(info.value)
    with pytest.raises(KeyError_):
        AssetSpec(key, "k")
    with pytest.raises(KeyError_):
        AssetSpec("fine", "k", (key,))


@pytest.mark.parametrize(
    "key",
    [
        "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample",
        "ooi/CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample",
        "x/availability",
        "catalog",
        "summary.daily",
        "a..b",
    ],
)
def test_valid_key_accepted(key: str) -> None:
    assert validate_key(key) == key
    assert AssetSpec(key, "k").key == key


@pytest.mark.parametrize("key", ["../evil", "/etc/x", "bad key"])
def test_invalid_key_in_config_is_config_error_naming_file(tmp_path, key: str) -> None:
    f = tmp_path / "gen.yaml"
    f.write_text(f'assets:\n- key: "{key}"\n  kind: k\n')
    with pytest.raises(ConfigError) as info:
        load_specs(tmp_path)
    assert str(f) in str(info.value)
    assert repr(key) in str(info.value)

"""The asset selection language: parsing, evaluation, errors."""

from __future__ import annotations

import contextlib
import re

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_vent.core.errors import SelectionError
from data_vent.core.spec import AssetSpec
from data_vent.graph.selection import (
    All,
    And,
    Key,
    Not,
    Or,
    Reason,
    Roots,
    Status,
    Tag,
    Traverse,
    evaluate,
    parse,
    select,
    uses_state,
)

CTD = "CE04OSPS-SF01B-2A-CTDPFA107-streamed-ctdpf_sbe43_sample"
OPT = "RS01SBPS-PC01A-4A-CTDPFA103-streamed-ctdpf_optode_sample"
SRC_CTD = f"ooi/{CTD}"
SRC_OPT = f"ooi/{OPT}"
AVAIL = f"{CTD}/availability"
SUMMARY = "summary.daily"
ORPHAN = "orphan_x"

#   ooi/CTD -> CTD -> CTD/availability -> summary.daily <- OPT <- ooi/OPT      orphan_x
SPECS = {
    s.key: s
    for s in [
        AssetSpec(SRC_CTD, "ooi_source", group="ooi", tags={"site": "CE04"}, observable=True),
        AssetSpec(SRC_OPT, "ooi_source", group="ooi", tags={"site": "RS01"}, observable=True),
        AssetSpec(CTD, "zarr", (SRC_CTD,), "stores", {"site": "CE04", "instrument": "ctd"}),
        AssetSpec(OPT, "zarr", (SRC_OPT,), "stores", {"site": "RS01", "instrument": "optode"}),
        AssetSpec(AVAIL, "availability", (CTD,), "reports", {"site": "CE04"}),
        AssetSpec(SUMMARY, "report", (AVAIL, OPT), "reports", {"tier": "gold", "and": "x"}),
        AssetSpec(ORPHAN, "report"),
    ]
}
ALL = set(SPECS)


def build_graph(specs: dict[str, AssetSpec]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(specs)
    for spec in specs.values():
        graph.add_edges_from((dep, spec.key) for dep in spec.deps)
    return graph


GRAPH = build_graph(SPECS)


class FakeState:
    def __init__(self, status: dict[str, set[str]], reasons: dict[str, set[str]]) -> None:
        self.status = status
        self.reasons = reasons

    def status_of(self, key: str) -> set[str]:
        return self.status.get(key, set())

    def reasons_of(self, key: str) -> set[str]:
        return self.reasons.get(key, set())


STATE = FakeState(
    status={CTD: {"stale"}, AVAIL: {"stale", "failed"}, OPT: {"fresh"}, ORPHAN: {"missing"}},
    reasons={CTD: {"upstream_changed"}, AVAIL: {"upstream_changed", "code_version"}},
)

CASES: list[tuple[str, set[str]]] = [
    # keys: bare, quoted, key:, globs
    (CTD, {CTD}),
    (SRC_CTD, {SRC_CTD}),
    (AVAIL, {AVAIL}),
    (SUMMARY, {SUMMARY}),
    (f'"{CTD}"', {CTD}),
    (f"key:{CTD}", {CTD}),
    (f'key:"{AVAIL}"', {AVAIL}),
    ('key:"CE04*"', {CTD, AVAIL}),
    ("key:CE04*", {CTD, AVAIL}),
    ("key:ooi/*", {SRC_CTD, SRC_OPT}),
    ("key:*/availability", {AVAIL}),
    ("key:*_sample", {CTD, OPT, SRC_CTD, SRC_OPT}),  # '*' also matches '/'
    ("CE04*", {CTD, AVAIL}),
    ("key:nomatch*", set()),
    ("*", ALL),
    # upstream / downstream
    (f"+{AVAIL}", {AVAIL, CTD, SRC_CTD}),
    (f"1+{AVAIL}", {AVAIL, CTD}),
    (f"2+{SUMMARY}", {SUMMARY, AVAIL, OPT, CTD, SRC_OPT}),
    (f"0+{AVAIL}", {AVAIL}),
    (f"{CTD}+", {CTD, AVAIL, SUMMARY}),
    (f"{SRC_CTD}+1", {SRC_CTD, CTD}),
    (f"{SRC_CTD}+2", {SRC_CTD, CTD, AVAIL}),
    (f"1+{CTD}+1", {SRC_CTD, CTD, AVAIL}),
    (f"+{CTD}+", {SRC_CTD, CTD, AVAIL, SUMMARY}),
    (f'+key:"{OPT}"', {OPT, SRC_OPT}),
    ("+(tag:instrument=optode)+", {SRC_OPT, OPT, SUMMARY}),
    ("(group:ooi)+1", {SRC_CTD, SRC_OPT, CTD, OPT}),
    (f"+roots({SUMMARY})", {SUMMARY, AVAIL, OPT, CTD, SRC_CTD, SRC_OPT}),
    # Dagster's "path between" idiom
    (f"{SRC_CTD}+ and +{SUMMARY}", {SRC_CTD, CTD, AVAIL, SUMMARY}),
    # attributes
    ("tag:site=CE04", {SRC_CTD, CTD, AVAIL}),
    ('tag:"site"="RS01"', {SRC_OPT, OPT}),
    ("tag:instrument", {CTD, OPT}),
    ("tag:and", {SUMMARY}),
    ("tag:site=nowhere", set()),
    ("group:reports", {AVAIL, SUMMARY}),
    ('group:"stores"', {CTD, OPT}),
    ("kind:report", {SUMMARY, ORPHAN}),
    ("kind:zarr", {CTD, OPT}),
    # boolean operators, case-insensitive, precedence not > and > or
    ("group:ooi or kind:zarr", {SRC_CTD, SRC_OPT, CTD, OPT}),
    ("tag:site=CE04 and kind:zarr", {CTD}),
    ("tag:site=CE04 AND NOT kind:zarr", {SRC_CTD, AVAIL}),
    ("not group:reports", ALL - {AVAIL, SUMMARY}),
    ("kind:report Or group:ooi and tag:site=CE04", {SUMMARY, ORPHAN, SRC_CTD}),
    ("(kind:report or group:ooi) and tag:site=CE04", {SRC_CTD}),
    ("not kind:zarr and not group:ooi", {AVAIL, SUMMARY, ORPHAN}),
    ("not not kind:zarr", {CTD, OPT}),
    (f"not +{AVAIL}", ALL - {AVAIL, CTD, SRC_CTD}),
    ("*  and\tnot\n*", set()),
    # functions
    ("roots()", {SRC_CTD, SRC_OPT, ORPHAN}),
    ("sinks()", {SUMMARY, ORPHAN}),
    ("roots(*)", {SRC_CTD, SRC_OPT, ORPHAN}),
    ("roots(kind:zarr or group:reports)", {CTD, OPT}),
    ("sinks(kind:zarr or group:reports)", {SUMMARY}),
    # no path inside the selection, but one through the whole graph: Dagster semantics
    (f"roots({CTD} or {SUMMARY})", {CTD}),
    (f"sinks({CTD} or {SUMMARY})", {SUMMARY}),
    (f"sinks(+{AVAIL})", {AVAIL}),
    ("ROOTS ( group:stores )", {CTD, OPT}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_select(text: str, expected: set[str]) -> None:
    assert select(text, GRAPH, SPECS) == expected


STATE_CASES: list[tuple[str, set[str]]] = [
    ("status:stale", {CTD, AVAIL}),
    ("status:failed", {AVAIL}),
    ("status:fresh", {OPT}),
    ("status:missing", {ORPHAN}),
    ("status:waiting", set()),
    ("status:STALE", {CTD, AVAIL}),
    ("status:stale and not status:failed", {CTD}),
    ("reason:upstream_changed", {CTD, AVAIL}),
    ('reason:"code_version"', {AVAIL}),
    ("(status:stale)+", {CTD, AVAIL, SUMMARY}),
    ("roots(status:stale)", {CTD}),
]


@pytest.mark.parametrize(("text", "expected"), STATE_CASES, ids=[c[0] for c in STATE_CASES])
def test_select_state(text: str, expected: set[str]) -> None:
    assert uses_state(parse(text))
    assert select(text, GRAPH, SPECS, STATE) == expected


def test_state_filter_without_state() -> None:
    with pytest.raises(SelectionError, match="status filters need the state database"):
        select("kind:zarr or status:stale", GRAPH, SPECS)


@pytest.mark.parametrize(
    "text", ["*", CTD, "+(tag:a=b)+", "roots()", "not group:x", "key:status*"]
)
def test_uses_state_false(text: str) -> None:
    assert not uses_state(parse(text))


def test_ast_shapes() -> None:
    assert parse("a") == Key("a")
    assert parse("*") == All()
    assert parse("2+a+") == Traverse(Key("a"), 2, None)
    assert parse("+a+3") == Traverse(Key("a"), None, 3)
    assert parse("a or b or c") == Or((Key("a"), Key("b"), Key("c")))
    assert parse("not a and b") == And((Not(Key("a")), Key("b")))
    assert parse("tag:k") == Tag("k")
    assert parse('tag:k="v w"') == Tag("k", "v w")
    assert parse("roots()") == Roots(None)
    assert parse("status:Fresh") == Status("fresh")
    assert parse("reason:x") == Reason("x")
    # a digit-only key still parses when it cannot be a depth
    assert parse("2+") == Traverse(Key("2"), 0, None)
    # roots/sinks are only functions before '('
    assert parse("roots") == Key("roots")


def test_unknown_key_suggests_close_matches() -> None:
    typo = CTD.replace("sbe43", "sbe34")
    with pytest.raises(SelectionError, match="unknown asset key") as err:
        select(f"+{typo}", GRAPH, SPECS)
    assert typo in str(err.value) and CTD in str(err.value)


def test_unknown_key_in_quotes_and_key_attr() -> None:
    for text in ['"nope"', "key:nope", 'key:"nope"']:
        with pytest.raises(SelectionError, match="unknown asset key 'nope'"):
            select(text, GRAPH, SPECS)


def test_unknown_status_lists_valid() -> None:
    with pytest.raises(SelectionError) as err:
        parse("status:bogus")
    msg = str(err.value)
    for status in ("stale", "fresh", "failed", "missing", "waiting"):
        assert status in msg
    assert err.value.position == 7


ERRORS: list[tuple[str, int, str]] = [
    ("", 0, "empty selection"),
    ("   ", 3, "empty selection"),
    ("a and", 5, "expected a selection"),
    ("(a", 2, "expected ')'"),
    ("a)", 1, "unbalanced"),
    ("roots(a", 7, "expected ')'"),
    ("tag:", 4, "expected a tag name"),
    ("tag:k=", 6, "expected a tag value"),
    ("key:", 4, "expected a key"),
    ('key:""', 4, "expected a key"),
    ("foo:bar", 0, "unknown attribute"),
    ("a or bad:x", 5, "unknown attribute"),
    ("status:bogus", 7, "unknown status"),
    ('a or "abc', 5, "unterminated"),
    ("a $ b", 2, "unexpected character"),
    ("a b", 2, "join selections"),
    ("+", 1, "expected a selection"),
    ("and a", 0, "keyword"),
    ("a or or b", 5, "keyword"),
    ("not", 3, "expected a selection"),
    ("a =b", 2, "join selections"),
    ("()", 1, "expected a selection"),
    ("1234567890+a", 0, "too large"),
    ("(" * 150 + "a" + ")" * 150, 100, "nested"),
    ("not " * 150 + "a", 400, "nested"),
]


@pytest.mark.parametrize(
    ("text", "position", "message"), ERRORS, ids=[e[0][:30] for e in ERRORS]
)
def test_parse_errors(text: str, position: int, message: str) -> None:
    with pytest.raises(SelectionError, match=re.escape(message)) as err:
        parse(text)
    assert err.value.position == position
    assert err.value.text == text
    if text:
        assert "⟨here⟩" in str(err.value)


def test_evaluate_matches_select() -> None:
    node = parse("+(group:reports)")
    assert evaluate(node, GRAPH, SPECS) == select("+(group:reports)", GRAPH, SPECS)


def test_nodes_without_spec_match_only_keys() -> None:
    graph = GRAPH.copy()
    graph.add_edge("external/thing", SRC_CTD)
    assert select("+" + SRC_CTD, graph, SPECS) == {"external/thing", SRC_CTD}
    assert select("not tag:site", graph, SPECS) == {"external/thing", SUMMARY, ORPHAN}
    assert select("kind:ooi_source", graph, SPECS) == {SRC_CTD, SRC_OPT}
    assert select("roots()", graph, SPECS) == {"external/thing", SRC_OPT, ORPHAN}


# --- fuzzing: parse never raises anything but SelectionError -----------------------------

TOKENS = [
    "(", ")", "+", "+", ":", "=", "*", '"', " ", "and", "or", "not", "AND", "Not",
    "key", "tag", "group", "kind", "status", "reason", "roots", "sinks", "owner",
    "stale", "fresh", "bogus", "1", "2", "0", "99999999999", CTD, SRC_CTD, AVAIL,
    SUMMARY, "CE04*", "a-b_c.d/e", '"x y"', "\t", "$", "é",
]  # fmt: skip

grammarish = st.lists(st.sampled_from(TOKENS), max_size=30).flatmap(
    lambda toks: st.sampled_from(["", " "]).map(lambda sep: sep.join(toks))
)


def _only_selection_errors(text: str) -> None:
    try:
        node = parse(text)
    except SelectionError as err:
        assert isinstance(err.position, int) and 0 <= err.position <= len(text)
        return
    with contextlib.suppress(SelectionError):
        evaluate(node, GRAPH, SPECS, STATE)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    _only_selection_errors(text)


@settings(max_examples=800, deadline=None)
@given(grammarish)
def test_fuzz_grammarish(text: str) -> None:
    _only_selection_errors(text)


@settings(max_examples=300, deadline=None)
@given(grammarish)
def test_fuzz_parse_is_deterministic(text: str) -> None:
    try:
        first = parse(text)
    except SelectionError:
        return
    assert parse(text) == first

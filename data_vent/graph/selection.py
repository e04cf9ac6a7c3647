"""Asset selection language (Dagster >= 1.10 string syntax, plus state filters).

Grammar (EBNF; keywords ``and``/``or``/``not`` are case-insensitive, whitespace is ignored)::

    selection = or_expr ;
    or_expr   = and_expr , { "or" , and_expr } ;
    and_expr  = not_expr , { "and" , not_expr } ;
    not_expr  = "not" , not_expr | traversal ;
    traversal = [ [ DIGITS ] , "+" ] , primary , [ "+" , [ DIGITS ] ] ;
    primary   = "(" , or_expr , ")"
              | ( "roots" | "sinks" ) , "(" , [ or_expr ] , ")"
              | "tag" , ":" , value , [ "=" , value ]
              | ( "key" | "group" | "kind" | "status" | "reason" ) , ":" , value
              | value ;                          (* a bare value is a key; "*" is all *)
    value     = WORD | QUOTED ;
    WORD      = { letter | digit | "_" | "." | "-" | "/" | "*" }- ;
    QUOTED    = '"' , { any character but '"' } , '"' ;

Meaning: a key containing ``*`` is an fnmatch glob over whole keys, otherwise it must
exist. ``+x`` adds all upstream (ancestors), ``n+x`` n levels up; ``x+`` / ``x+n`` the
same downstream; ``n+x+m`` is the union of both. ``roots(x)`` / ``sinks(x)`` are the
assets of ``x`` with no upstream / downstream asset in ``x`` (through any path of the
whole graph); without an argument they range over all assets. ``status:`` and
``reason:`` are answered by a :class:`StateView`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Protocol

from data_vent.core.errors import SelectionError
from data_vent.core.vocab import AssetStatus

if TYPE_CHECKING:
    import networkx as nx

    from data_vent.core.spec import AssetSpec

STATUSES = frozenset(AssetStatus) - {AssetStatus.SOURCE}
ATTRIBUTES = ("key", "tag", "group", "kind", "status", "reason")
FUNCTIONS = ("roots", "sinks")
KEYWORDS = frozenset({"and", "or", "not"})
MAX_NESTING = 100
_GLOB_CHARS = frozenset("*?[")


class StateView(Protocol):
    """What the state filters ask of the state database."""

    def status_of(self, key: str) -> AbstractSet[str]: ...

    def reasons_of(self, key: str) -> AbstractSet[str]: ...


# --- AST --------------------------------------------------------------------------------


@dataclass(frozen=True)
class All:
    """``*``: every asset."""


@dataclass(frozen=True)
class Key:
    """An exact key, or an fnmatch pattern when it contains ``*``."""

    pattern: str

    @property
    def is_glob(self) -> bool:
        return any(c in _GLOB_CHARS for c in self.pattern)


@dataclass(frozen=True)
class Tag:
    """``tag:name`` (has the tag) or ``tag:name=value``."""

    name: str
    value: str | None = None


@dataclass(frozen=True)
class Group:
    name: str


@dataclass(frozen=True)
class Kind:
    name: str


@dataclass(frozen=True)
class Status:
    value: str


@dataclass(frozen=True)
class Reason:
    code: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Traverse:
    """The operand plus ``up`` levels of ancestors and ``down`` of descendants.

    A depth of ``None`` is unbounded; ``0`` adds nothing in that direction.
    """

    operand: Node
    up: int | None = 0
    down: int | None = 0


@dataclass(frozen=True)
class Roots:
    """Assets of the operand (all assets if ``None``) with no upstream in it."""

    operand: Node | None = None


@dataclass(frozen=True)
class Sinks:
    """Assets of the operand (all assets if ``None``) with no downstream in it."""

    operand: Node | None = None


Node = (
    All
    | Key
    | Tag
    | Group
    | Kind
    | Status
    | Reason
    | Not
    | And
    | Or
    | Traverse
    | Roots
    | Sinks
)


# --- lexer ------------------------------------------------------------------------------

_WORD = "WORD"
_QUOTED = "QUOTED"
_PUNCT = "()+:="
_WORD_RE = re.compile(r"[A-Za-z0-9_.\-/*]+")
_DIGITS_RE = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _Tok:
    kind: str  # _WORD, _QUOTED, one of _PUNCT, or "EOF"
    value: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _PUNCT:
            toks.append(_Tok(c, c, i))
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise SelectionError("unterminated quoted string", text, i)
            toks.append(_Tok(_QUOTED, text[i + 1 : end], i))
            i = end + 1
        elif m := _WORD_RE.match(text, i):
            toks.append(_Tok(_WORD, m.group(), i))
            i = m.end()
        else:
            raise SelectionError(f"unexpected character {c!r}", text, i)
    toks.append(_Tok("EOF", "", n))
    return toks


# --- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def advance(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def error(self, message: str, tok: _Tok) -> SelectionError:
        return SelectionError(message, self.text, tok.pos)

    def is_keyword(self, tok: _Tok, word: str) -> bool:
        return tok.kind == _WORD and tok.value.lower() == word

    def describe(self, tok: _Tok) -> str:
        if tok.kind == "EOF":
            return "end of input"
        if tok.kind == _QUOTED:
            return f'"{tok.value}"'
        return repr(tok.value)

    def nest(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"selection nested deeper than {MAX_NESTING} levels", tok)

    # grammar
    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise self.error("empty selection", self.peek())
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "EOF":
            if tok.kind == ")":
                raise self.error("unbalanced ')'", tok)
            raise self.error(
                f"unexpected {self.describe(tok)}: join selections with 'and' / 'or'", tok
            )
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.is_keyword(self.peek(), "or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.is_keyword(self.peek(), "and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Node:
        tok = self.peek()
        if self.is_keyword(tok, "not"):
            self.advance()
            self.nest(tok)
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.traversal()

    def starts_primary(self, tok: _Tok) -> bool:
        return tok.kind in (_WORD, _QUOTED, "(")

    def depth_of(self, tok: _Tok) -> int:
        if len(tok.value) > 9:
            raise self.error(f"traversal depth {tok.value} is too large", tok)
        return int(tok.value)

    def traversal(self) -> Node:
        up: int | None = 0
        tok = self.peek()
        if tok.kind == "+":
            self.advance()
            up = None
        elif (
            tok.kind == _WORD
            and _DIGITS_RE.fullmatch(tok.value)
            and self.peek(1).kind == "+"
            and self.starts_primary(self.peek(2))
        ):
            up = self.depth_of(tok)
            self.advance()
            self.advance()
        node = self.primary()
        down: int | None = 0
        if self.peek().kind == "+":
            self.advance()
            down = None
            nxt = self.peek()
            if nxt.kind == _WORD and _DIGITS_RE.fullmatch(nxt.value):
                down = self.depth_of(nxt)
                self.advance()
        if up == 0 and down == 0:
            return node
        return Traverse(node, up, down)

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.advance()
            self.nest(tok)
            node = self.or_expr()
            self.close(tok)
            return node
        if tok.kind == _QUOTED:
            self.advance()
            return self.key(tok.value, tok)
        if tok.kind != _WORD:
            raise self.error(f"expected a selection, got {self.describe(tok)}", tok)
        word = tok.value
        lower = word.lower()
        if lower in KEYWORDS:
            raise self.error(f"expected a selection, got keyword {word!r}", tok)
        nxt = self.peek(1)
        if nxt.kind == ":":
            self.advance()
            self.advance()
            return self.attribute(lower, tok)
        if lower in FUNCTIONS and nxt.kind == "(":
            self.advance()
            self.advance()
            self.nest(nxt)
            operand = None if self.peek().kind == ")" else self.or_expr()
            self.close(nxt)
            return Roots(operand) if lower == "roots" else Sinks(operand)
        self.advance()
        if word.strip("*") == "":
            return All()
        return self.key(word, tok)

    def close(self, opener: _Tok) -> None:
        tok = self.peek()
        if tok.kind != ")":
            raise self.error(
                f"expected ')' to close '(' at position {opener.pos}, "
                f"got {self.describe(tok)}",
                tok,
            )
        self.advance()
        self.depth -= 1

    def key(self, pattern: str, tok: _Tok) -> Key:
        if not pattern:
            raise self.error("empty asset key", tok)
        return Key(pattern)

    def value(self, what: str) -> str:
        tok = self.peek()
        if tok.kind not in (_WORD, _QUOTED) or (tok.kind == _QUOTED and not tok.value):
            raise self.error(f"expected {what}, got {self.describe(tok)}", tok)
        return self.advance().value

    def attribute(self, name: str, tok: _Tok) -> Node:
        if name == "key":
            vtok = self.peek()
            return self.key(self.value("a key"), vtok)
        if name == "tag":
            tag = self.value("a tag name")
            if self.peek().kind == "=":
                self.advance()
                return Tag(tag, self.value("a tag value"))
            return Tag(tag)
        if name == "group":
            return Group(self.value("a group name"))
        if name == "kind":
            return Kind(self.value("a kind"))
        if name == "status":
            vtok = self.peek()
            status = self.value("a status").lower()
            if status not in STATUSES:
                raise self.error(
                    f"unknown status {vtok.value!r} (valid: {', '.join(sorted(STATUSES))})",
                    vtok,
                )
            return Status(status)
        if name == "reason":
            return Reason(self.value("a reason code"))
        raise self.error(
            f"unknown attribute {tok.value!r} (valid: {', '.join(ATTRIBUTES)})", tok
        )


def parse(text: str) -> Node:
    """Parse a selection into its AST; raise :class:`SelectionError` with a position."""
    if not isinstance(text, str):
        raise SelectionError(f"a selection is text, not {type(text).__name__}")
    return _Parser(text).parse()


# --- evaluation -------------------------------------------------------------------------


def uses_state(node: Node) -> bool:
    """Whether evaluating ``node`` needs a :class:`StateView` (status/reason filters)."""
    match node:
        case Status() | Reason():
            return True
        case Not(operand) | Traverse(operand):
            return uses_state(operand)
        case Roots(operand) | Sinks(operand):
            return operand is not None and uses_state(operand)
        case And(operands) | Or(operands):
            return any(uses_state(op) for op in operands)
    return False


def _reach(
    graph: nx.DiGraph, start: Iterable[str], depth: int | None, *, up: bool
) -> set[str]:
    """Nodes 1..depth steps from ``start`` (multi-source BFS, no graph copy)."""
    adj = graph.pred if up else graph.succ
    seen: set[str] = set()
    frontier = set(start)
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        nxt = {m for n in frontier for m in adj[n]} - seen
        seen |= nxt
        frontier = nxt
    return seen


class _Evaluator:
    def __init__(
        self, graph: nx.DiGraph, specs: Mapping[str, AssetSpec], state: StateView | None
    ) -> None:
        self.graph = graph
        self.specs = specs
        self.state = state
        self.universe: frozenset[str] = frozenset(graph.nodes)

    def matching(self, pred: Callable[[AssetSpec], bool]) -> set[str]:
        specs = self.specs
        return {k for k in self.universe if (s := specs.get(k)) is not None and pred(s)}

    def need_state(self) -> StateView:
        if self.state is None:
            raise SelectionError(
                "status filters need the state database (status:/reason: were used "
                "but no state was given)"
            )
        return self.state

    def key(self, node: Key) -> set[str]:
        if node.is_glob:
            return {k for k in self.universe if fnmatchcase(k, node.pattern)}
        if node.pattern in self.universe:
            return {node.pattern}
        close = difflib.get_close_matches(node.pattern, self.universe, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SelectionError(f"unknown asset key {node.pattern!r}{hint}")

    def run(self, node: Node) -> set[str]:
        match node:
            case All():
                return set(self.universe)
            case Key():
                return self.key(node)
            case Tag(name, None):
                return self.matching(lambda s: name in s.tags)
            case Tag(name, value):
                return self.matching(lambda s: s.tags.get(name) == value)
            case Group(name):
                return self.matching(lambda s: s.group == name)
            case Kind(name):
                return self.matching(lambda s: s.kind == name)
            case Status(value):
                state = self.need_state()
                return {k for k in self.universe if value in state.status_of(k)}
            case Reason(code):
                state = self.need_state()
                return {k for k in self.universe if code in state.reasons_of(k)}
            case Not(operand):
                return set(self.universe - self.run(operand))
            case And(operands):
                result = self.run(operands[0])
                for op in operands[1:]:
                    result &= self.run(op)
                return result
            case Or(operands):
                result = set()
                for op in operands:
                    result |= self.run(op)
                return result
            case Traverse(operand, up, down):
                base = self.run(operand)
                result = set(base)
                if up != 0:
                    result |= _reach(self.graph, base, up, up=True)
                if down != 0:
                    result |= _reach(self.graph, base, down, up=False)
                return result
            case Roots(operand):
                base = set(self.universe) if operand is None else self.run(operand)
                return base - _reach(self.graph, base, None, up=False)
            case Sinks(operand):
                base = set(self.universe) if operand is None else self.run(operand)
                return base - _reach(self.graph, base, None, up=True)
        raise TypeError(f"not a selection node: {node!r}")


@dataclass(frozen=True)
class Selected:
    """A selection's assets, and which of them only a downstream traversal (``x+``) added.

    A planned run takes in the stale ancestors of the assets the user *named* (``anchors``),
    never those reached through a fan-in below them: ``key:"RS01SBPS*"+`` reaches the catalog,
    and the catalog's other inputs are siblings, not what was asked for.
    """

    keys: frozenset[str]
    downstream_only: frozenset[str] = frozenset()

    @property
    def anchors(self) -> frozenset[str]:
        return self.keys - self.downstream_only


class _AnchorEvaluator(_Evaluator):
    """Evaluates a selection keeping track of what downstream traversals alone added."""

    def anchored(self, node: Node) -> tuple[set[str], set[str]]:
        """(keys, downstream-only keys) of ``node``."""
        match node:
            case Traverse(operand, up, down):
                base, via = self.anchored(operand)
                upset = _reach(self.graph, base, up, up=True) if up != 0 else set()
                downset = _reach(self.graph, base, down, up=False) if down != 0 else set()
                keys = base | upset | downset
                return keys, keys - ((base - via) | upset)
            case Or(operands):
                parts = [self.anchored(op) for op in operands]
                keys = set().union(*(k for k, _ in parts))
                anchors = set().union(*(k - v for k, v in parts))
                return keys, keys - anchors
            case And(operands):
                parts = [self.anchored(op) for op in operands]
                keys = set.intersection(*(k for k, _ in parts))
                anchors = set.intersection(*(k - v for k, v in parts))
                return keys, keys - anchors
            case Roots(operand) | Sinks(operand) if operand is not None:
                keys = self.run(node)
                _, via = self.anchored(operand)
                return keys, keys & via
        return self.run(node), set()


def evaluate(
    node: Node,
    graph: nx.DiGraph,
    specs: Mapping[str, AssetSpec],
    state: StateView | None = None,
) -> set[str]:
    """The keys of ``graph`` that ``node`` selects (edge u->v: v depends on u)."""
    return _Evaluator(graph, specs, state).run(node)


def select(
    text: str,
    graph: nx.DiGraph,
    specs: Mapping[str, AssetSpec],
    state: StateView | None = None,
) -> set[str]:
    """Parse ``text`` and evaluate it."""
    return evaluate(parse(text), graph, specs, state)


def select_anchored(
    text: str,
    graph: nx.DiGraph,
    specs: Mapping[str, AssetSpec],
    state: StateView | None = None,
) -> Selected:
    """Parse ``text`` and evaluate it, telling the named assets from the downstream-only."""
    keys, via = _AnchorEvaluator(graph, specs, state).anchored(parse(text))
    return Selected(frozenset(keys), frozenset(via))

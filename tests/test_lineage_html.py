"""``data-vent graph``: mermaid and dot counts, and the HTML page rendered by real headless
Chromium (DOM dump, console and exceptions over the DevTools pipe, screenshot).

CI needs Debian's ``chromium`` package (``apt-get install -y chromium``); without
``/usr/bin/chromium`` the browser tests are skipped with the reason printed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kinds import write_sources

REPO = Path(__file__).resolve().parents[1]
REAL_CONFIGS = REPO / "tests" / "data" / "configs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SRC, FILE = "tests.kinds:FileSource", "tests.kinds:FileAsset"
# src/a -> a, src/b -> b, src/c -> c; (a, b) -> ab; (ab, c) -> top
ASSETS = [
    {"key": "src/a", "kind": SRC, "observable": True},
    {"key": "src/b", "kind": SRC, "observable": True},
    {"key": "src/c", "kind": SRC, "observable": True},
    {"key": "a", "kind": FILE, "deps": ["src/a"]},
    {"key": "b", "kind": FILE, "deps": ["src/b"]},
    {"key": "c", "kind": FILE, "deps": ["src/c"]},
    {"key": "ab", "kind": FILE, "deps": ["a", "b"]},
    {"key": "top", "kind": FILE, "deps": ["ab", "c"]},
]
N_NODES = len(ASSETS)
N_EDGES = sum(len(a.get("deps", [])) for a in ASSETS)
MATERIALIZED = [a["key"] for a in ASSETS if not a.get("observable")]
EXPECTED_STATUS = {
    "src/a": "source",
    "src/b": "source",
    "src/c": "source",
    "a": "stale",  # its source moved after the run
    "ab": "stale",  # upstream planned
    "b": "fresh",
    "c": "failed",
    "top": "missing",  # skipped: its input c failed
}

_SKIP_REASON = None
if not CHROMIUM.exists():
    _SKIP_REASON = (
        f"{CHROMIUM} not found: install Debian's chromium package "
        "(apt-get install -y chromium)"
    )
if _SKIP_REASON:  # say it where CI output shows it
    print(f"\n[data-vent tests] headless browser tests will be skipped: {_SKIP_REASON}")
needs_chromium = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")


@pytest.fixture
def lineage_state(isolated_env: Path, tmp_path: Path, monkeypatch) -> dict[str, str]:
    """A small state with every status: fresh, stale, failed, missing (no Prefect needed)."""
    from data_vent.run import runner
    from data_vent.run.workspace import Workspace
    from data_vent.settings import get_settings

    cfg = tmp_path / "configs"
    cfg.mkdir()
    (cfg / "graph.yaml").write_text(yaml.safe_dump({"assets": ASSETS}))
    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(cfg))
    day = ("2024-01-01T00:00:00", "2024-01-02T00:00:00", 100)
    write_sources(isolated_env, {"src/a": day, "src/b": day, "src/c": day})
    (isolated_env / "fail").mkdir()
    (isolated_env / "fail" / "c").write_text("")

    ws = Workspace.load(get_settings())
    ws.sync()
    ws.observe()
    outcomes = ws.execute(ws.plan(), runner.new_run_id())
    assert {k: o.status for k, o in outcomes.items()} == {
        "a": "success",
        "b": "success",
        "c": "failed",
        "ab": "success",
        "top": "skipped",
    }
    moved = ("2024-01-01T00:00:00", "2024-01-03T00:00:00", 200)
    write_sources(isolated_env, {"src/a": moved, "src/b": day, "src/c": day})
    ws.observe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    exe = Path(sys.executable).parent / "data-vent"
    res = subprocess.run(
        [str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, f"data-vent {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_mermaid_and_dot_have_every_node_and_edge(lineage_state):
    env = lineage_state
    mermaid = cli(env, "graph", "--format", "mermaid")
    nodes = re.findall(r'^\s+(n\d+)\["([^"]+)"\]:::(\w+)$', mermaid, re.M)
    assert {key: st for _, key, st in nodes} == EXPECTED_STATUS
    ids = {i for i, _, _ in nodes}
    edges = re.findall(r"^\s+(n\d+) --> (n\d+)$", mermaid, re.M)
    assert len(edges) == N_EDGES and all(u in ids and v in ids for u, v in edges)
    by_id = {i: key for i, key, _ in nodes}
    assert (by_id[edges[0][0]], by_id[edges[0][1]]) in {
        (d, a["key"]) for a in ASSETS for d in a.get("deps", [])
    }

    dot = cli(env, "graph", "--format", "dot")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    dot_nodes = re.findall(r'^\s+"([^"]+)" \[fillcolor="(#[0-9a-f]{6})"\];$', dot, re.M)
    assert {k for k, _ in dot_nodes} == set(EXPECTED_STATUS)
    dot_edges = re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', dot, re.M)
    assert set(dot_edges) == {(d, a["key"]) for a in ASSETS for d in a.get("deps", [])}
    assert len(dot_edges) == N_EDGES


class PageParser(HTMLParser):
    """Counts the SVG's nodes and edges and the status table's rows in a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.svg_nodes: dict[str, str] = {}
        self.svg_edges = 0
        self.rows: dict[str, str] = {}
        self.body: dict[str, str | None] = {}
        self._in_svg = self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "svg" and a.get("id") == "lineage":
            self._in_svg = True
        elif tag == "tbody":
            self._in_tbody = True
        elif self._in_svg and tag == "g" and "node" in (a.get("class") or "").split():
            status = (a.get("class") or "").split()[1]
            self.svg_nodes[a["data-key"] or ""] = status
        elif self._in_svg and tag == "path" and "edge" in (a.get("class") or "").split():
            self.svg_edges += 1
        elif self._in_tbody and tag == "tr":
            self.rows[a.get("data-key") or ""] = a.get("class") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in_svg = False
        elif tag == "tbody":
            self._in_tbody = False


def chromium(*args: str, user_data: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={user_data}", *args],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class DevTools:
    """Chromium with ``--remote-debugging-pipe``: CDP over fds 3/4, standard library only."""

    def __init__(self, user_data: Path, window: str = "1400,1000"):
        def high(fd: int) -> int:  # away from 3/4 so the shell can place them there
            new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return new

        r_in, self._w = map(high, os.pipe())
        self._r, w_out = map(high, os.pipe())
        shell = f'exec "$0" "$@" 3<&{r_in} 4>&{w_out} {r_in}<&- {w_out}>&-'
        self.proc = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                shell,
                str(CHROMIUM),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={user_data}",
                f"--window-size={window}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(r_in, w_out),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(r_in)
        os.close(w_out)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _next(self, pred, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg:
                    self.events.append(msg)
                if pred(msg):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium over the DevTools pipe")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise EOFError("Chromium closed the DevTools pipe")
                self._buf += chunk

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        want = self._id
        answer = self._next(lambda m: m.get("id") == want, timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def open(self, url: str) -> str:
        """A new page with console, exceptions and log captured from before it loads."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Page.navigate", {"url": url}, session)
        self._next(lambda m: m.get("method") == "Page.loadEventFired", 30)
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        res = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session
        )
        assert "exceptionDetails" not in res, res
        return res["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors/warnings, uncaught exceptions and error log entries."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p["type"] in (
                "error",
                "assert",
                "warning",
            ):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p['args']]}")
            elif e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(
                    f"exception: {d.get('exception', {}).get('description', d['text'])}"
                )
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out

    def console(self, kind: str = "info") -> list[str]:
        return [
            " ".join(str(a.get("value")) for a in e["params"]["args"])
            for e in self.events
            if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == kind
        ]

    def close(self) -> None:
        with contextlib.suppress(EOFError, TimeoutError, OSError, RuntimeError):
            self.call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._w)
        os.close(self._r)

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@needs_chromium
@pytest.mark.slow  # chromium
def test_html_page_renders_graph_and_table_in_headless_chromium(lineage_state, tmp_path):
    env = lineage_state
    out = cli(env, "graph", "--format", "html", "-o", "page.html", cwd=tmp_path)
    assert "wrote page.html" in out
    page = tmp_path / "page.html"
    url = page.as_uri()
    # self-contained: nothing fetched from anywhere
    assert not re.search(r'(src|href)="(https?:)?//', page.read_text())

    # 1. the DOM after scripts ran (--dump-dom), console on stderr (--enable-logging)
    res = chromium(
        "--enable-logging=stderr", "--v=0", "--dump-dom", url, user_data=tmp_path / "ud-dom"
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    dom = PageParser()
    dom.feed(res.stdout.decode())
    assert dom.body.get("data-ready") == "true"  # the page's script ran to its end
    assert dom.svg_nodes == EXPECTED_STATUS
    assert len(dom.svg_nodes) == N_NODES and dom.svg_edges == N_EDGES
    assert set(dom.rows) == set(MATERIALIZED)
    assert dom.rows == {k: EXPECTED_STATUS[k] for k in MATERIALIZED}
    console = [
        ln for ln in res.stderr.decode(errors="replace").splitlines() if ":CONSOLE" in ln
    ]
    assert any("data-vent lineage ready: 8 nodes, 5 rows" in ln for ln in console), console
    assert not [ln for ln in console if "Uncaught" in ln or "Error" in ln], console

    # 2. the live page over the DevTools protocol: no console error, no exception
    with DevTools(tmp_path / "ud-cdp") as dt:
        s = dt.open(url)
        counts = dt.evaluate(
            s,
            "[document.querySelectorAll('#lineage g.node').length,"
            "document.querySelectorAll('#status tbody tr').length,"
            "document.querySelectorAll('#lineage path.edge').length]",
        )
        assert counts == [N_NODES, len(MATERIALIZED), N_EDGES]
        selected = dt.evaluate(
            s,
            "document.querySelector('#lineage g.node[data-key=\"c\"]')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}));"
            "[...document.querySelectorAll('#status tr.selected')].map(r => r.dataset.key)",
        )
        assert selected == ["c"]
        shown = dt.evaluate(
            s,
            "Object.fromEntries(JSON.parse(document.getElementById('data').textContent)"
            ".nodes.map(n => [n.key, n.status]))",
        )
        assert shown == EXPECTED_STATUS
        assert dt.problems() == []
        assert dt.console("info") == ["data-vent lineage ready: 8 nodes, 5 rows, 8 statuses"]

    # 3. a screenshot of the rendered page
    shot = tmp_path / "page.png"
    res = chromium(
        f"--screenshot={shot}", "--window-size=1400,1000", url, user_data=tmp_path / "ud-shot"
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1400, 1000)
    assert len(data) > 10_000  # a real render, not a blank page


@needs_chromium
@pytest.mark.slow  # chromium
def test_devtools_capture_sees_console_errors_and_exceptions(tmp_path: Path):
    """The control: the same capture reports a broken page (so a clean page means clean)."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'><script>"
        "console.error('boom'); undefinedFunction();</script></body></html>"
    )
    with DevTools(tmp_path / "ud") as dt:
        dt.open(bad.as_uri())
        problems = dt.problems()
    assert any(p.startswith("console.error") and "boom" in p for p in problems), problems
    assert any(p.startswith("exception") and "undefinedFunction" in p for p in problems)
    assert any(p.startswith("log") and "missing.png" in p for p in problems), problems


def _state_for(configs: Path, monkeypatch) -> dict[str, str]:
    """The real harvest configs synced into a fresh state DB (every store missing)."""
    from data_vent.run.workspace import Workspace
    from data_vent.settings import get_settings

    monkeypatch.setenv("DATA_VENT_CONFIG_DIR", str(configs))
    Workspace.load(get_settings()).sync()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def clone_configs(n: int, dest: Path, spread: bool = False) -> int:
    """Write ``n`` harvest configs cloned from the real ones into ``dest``; return the number
    of sites they span (a fleet-sized page without fleet-sized fixtures).

    Clone c of a real config is at site ``<site>X<c>`` (clone 0 keeps the real site); with
    ``spread`` config i is a real one picked evenly across them at site ``<site>S<i>``: every
    stream at a site of its own, arrays mixed, the fewest streams that make many sites.
    """
    real = sorted(REAL_CONFIGS.glob("*.yaml"))
    sites: set[str] = set()
    for i in range(n):
        clone, src = divmod(i, len(real))
        if spread:
            src = i * len(real) // n
        doc = yaml.safe_load(real[src].read_text())
        site, rest = doc["instrument"].split("-", 1)
        if spread:
            site = f"{site}S{i}"
        elif clone:
            site = f"{site}X{clone}"
        doc["instrument"] = f"{site}-{rest}"
        sites.add(site)
        stream = doc["stream"]
        out = dest / f"{doc['instrument']}-{stream['method']}-{stream['name']}.yaml"
        assert not out.exists(), out
        out.write_text(yaml.safe_dump(doc, sort_keys=True))
    return len(sites)


LABELS_FIT = """[...document.querySelectorAll('#lineage g.node, #lineage g.group')]
  .every(g => g.querySelector('text').getBBox().width + 8
              <= +g.querySelector('rect').getAttribute('width'))"""
BOXES = "document.querySelectorAll('#lineage g.node, #lineage g.group').length"
CATALOG_ON_SCREEN = (
    "(() => { const g = document.querySelector('#lineage g.group[data-group=catalog]');"
    " if (!g) return null; const r = g.getBoundingClientRect();"
    " return r.right <= innerWidth && r.bottom <= innerHeight && r.left >= 0 && r.top >= 0;"
    " })()"
)
SEARCH_CTDPF = (
    "(() => { const i = document.getElementById('search'); i.value = 'CTDPF';"
    "i.dispatchEvent(new Event('input')); return [...document.querySelectorAll("
    "'#lineage g.node')].map(g => g.dataset.key); })()"
)


@needs_chromium
@pytest.mark.slow  # chromium
@pytest.mark.parametrize("streams", [25, 115])
def test_lineage_page_at_fleet_scale(isolated_env, tmp_path, monkeypatch, streams):
    from data_vent.demo import DEMO_CONFIGS
    from tests.conftest import CONFIGS

    env = _state_for(DEMO_CONFIGS if streams == 25 else CONFIGS, monkeypatch)
    cli(env, "graph", "--format", "html", "-o", "page.html", cwd=tmp_path)
    page = tmp_path / "page.html"
    assert "dagre" in page.read_text() and not re.search(
        r'src="(https?:)?//', page.read_text()
    )
    with DevTools(tmp_path / "ud", window="1400,1000") as dt:
        s = dt.open(page.as_uri())
        assert dt.evaluate(s, "document.body.dataset.ready") == "true"
        assert dt.problems() == []
        assert dt.evaluate(s, LABELS_FIT) is True
        boxes = dt.evaluate(s, BOXES)
        # all 3N+1 assets, sites collapsed: one box per site and the catalog, all on screen
        assert (
            boxes
            == len(
                {
                    k.name.split("-")[0]
                    for k in (DEMO_CONFIGS if streams == 25 else CONFIGS).glob("*.yaml")
                }
            )
            + 1
        )
        assert dt.evaluate(s, CATALOG_ON_SCREEN) is True
        # search narrows the graph to the matching assets, each whole in its box
        shown = dt.evaluate(s, SEARCH_CTDPF)
        assert shown and all("CTDPF" in k for k in shown)
        assert dt.evaluate(s, LABELS_FIT) is True
        # a status filter takes the sources out; a click shows an asset's details
        keys = dt.evaluate(
            s,
            "(() => { document.querySelector('.status-filter[value=source]').click();"
            "return [...document.querySelectorAll('#lineage g.node')].map(g => g.dataset.key);"
            "})()",
        )
        assert keys and not any(k.startswith("ooi/") for k in keys) and len(keys) < len(shown)
        text = dt.evaluate(
            s,
            f"(() => {{ document.querySelector('#lineage g.node[data-key=\"{keys[0]}\"]')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}));"
            "return document.getElementById('details').textContent; })()",
        )
        assert keys[0] in text and "reasons" in text and "harvest lag" in text
        assert "last success" in text and "coverage" in text
        # expanded, every label still fits its box
        dt.evaluate(s, "document.getElementById('search').value = '';"
                       "document.getElementById('expand').click()")  # fmt: skip
        assert dt.evaluate(s, BOXES) > boxes and dt.evaluate(s, LABELS_FIT) is True
        assert dt.problems() == []


@needs_chromium
@pytest.mark.slow  # chromium
def test_lineage_page_collapses_by_array_past_a_screen_of_sites(
    isolated_env, tmp_path, monkeypatch
):
    """More sites than fit the screen open as one box per OOI array (the 600-stream fleet's
    90 site boxes made a column 2,500 px tall, the catalog below the fold)."""
    from data_vent.views.lineage import GROUPS_ON_SCREEN

    configs = tmp_path / "configs"
    configs.mkdir()
    sites = clone_configs(GROUPS_ON_SCREEN, configs, spread=True)  # + catalog: one too many
    arrays = {p.name[:2] for p in configs.glob("*.yaml")}
    assert sites == GROUPS_ON_SCREEN and len(arrays) > 1
    env = _state_for(configs, monkeypatch)
    cli(env, "graph", "--format", "html", "-o", "page.html", cwd=tmp_path)
    with DevTools(tmp_path / "ud", window="1400,1000") as dt:
        s = dt.open((tmp_path / "page.html").as_uri())
        assert dt.evaluate(s, "document.body.dataset.ready") == "true"
        # one box per array and the catalog, all on the first screen, labels inside
        assert dt.evaluate(s, BOXES) == len(arrays) + 1
        folded = "[...document.querySelectorAll('#lineage g.array')].map(g => g.dataset.array)"
        assert dt.evaluate(s, folded) == sorted(arrays)
        assert dt.evaluate(s, CATALOG_ON_SCREEN) is True
        assert dt.evaluate(s, LABELS_FIT) is True
        # a click on an array box opens it into its sites (still collapsed), the rest stays
        dt.evaluate(
            s,
            "document.querySelector('#lineage g.array[data-array=CE]')"
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        )
        assert dt.evaluate(s, folded) == sorted(arrays - {"CE"})
        groups = "[...document.querySelectorAll('#lineage [data-group]')]"
        groups += ".map(g => g.dataset.group)"
        ce_sites = {p.name.split("-")[0] for p in configs.glob("CE*.yaml")}
        assert sorted(dt.evaluate(s, groups)) == sorted(ce_sites | {"catalog"})
        assert dt.evaluate(s, LABELS_FIT) is True
        # search narrows to the matching assets, each whole in its box
        shown = dt.evaluate(s, SEARCH_CTDPF)
        assert shown and all("CTDPF" in k for k in shown) and len(shown) < 3 * sites
        assert dt.evaluate(s, LABELS_FIT) is True
        # expand all opens everything; collapse by array folds it back
        clear = "document.getElementById('search').value = '';"
        dt.evaluate(s, clear + "document.getElementById('expand').click()")
        assert dt.evaluate(s, BOXES) == 3 * sites + 1
        dt.evaluate(s, "document.getElementById('collapse-arrays').click()")
        assert dt.evaluate(s, BOXES) == len(arrays) + 1
        assert dt.problems() == []

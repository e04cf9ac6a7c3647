"""Load asset specs from a folder of harvest config YAMLs.

Two shapes are read:

* the upstream harvest config (one stream per file: ``instrument``, ``stream.method``,
  ``stream.name``, ``harvest_options``, ``workflow_config``; the misspelled ``assigness`` is
  tolerated) plus optional ``deps``, ``tags``, ``freshness``. It defines the observable source
  ``ooi/<table>`` and the stream store ``<table>``. The shapes are the pydantic models of
  ``config_schema``: an unknown key is an error naming the nearest valid one;
* a generic file with an ``assets:`` list of ``{key, kind, deps, group, tags, freshness,
  config}``, for other asset kinds.

Every stream also gets its derived assets (``<table>/availability``) and one ``catalog`` over
all stores; pass ``derived=False`` to leave them out.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from data_vent.assets.config_schema import AssetsFile, FreshnessConfig, StreamConfig, parse
from data_vent.core.errors import ConfigError, DataVentError
from data_vent.core.keys import source_key, table_name, validate_key
from data_vent.core.spec import AssetSpec, FreshnessPolicy

# Bump a kind's version when its materialization logic changes: its assets go stale
# with reason `code_changed`.
KIND_CODE_VERSIONS = {
    "ooi_source": "1",
    "ooi_stream": "1",
    "availability": "2",
    "catalog": "2",
}

CATALOG_KEY = "catalog"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that repeats a key (PyYAML keeps the last
    value silently: the first one would vanish without a word)."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"key '{key}' appears twice in one mapping (lines {seen[key]} and "
                    f"{line}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _freshness(value: FreshnessConfig | None) -> FreshnessPolicy | None:
    return None if value is None else FreshnessPolicy(warn=value.warn, fail=value.fail)


def stream_specs(doc: Mapping[str, Any], file: Path) -> list[AssetSpec]:
    """The source and store specs defined by one upstream harvest config."""
    cfg: StreamConfig = parse(StreamConfig, doc, file)
    instrument, method, stream = cfg.instrument, cfg.stream.method, cfg.stream.name
    parts = instrument.split("-")
    if len(parts) != 4:
        raise ConfigError(
            f"{file}: field 'instrument' must be a reference designator like "
            f"CE04OSPS-SF01B-2A-CTDPFA107, got {instrument!r}"
        )
    table = table_name(instrument, method, stream)
    try:
        validate_key(table)
    except DataVentError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    site, node = parts[0], parts[1]
    tags = {
        "site": site,
        "node": node,
        "instrument": instrument,
        "method": method,
        "stream": stream,
    }
    tags.update(cfg.tags)
    src = source_key(table)
    config = {
        "instrument": instrument,
        "method": method,
        "stream": stream,
        "refresh": cfg.harvest_options.refresh,
        "goldcopy": cfg.harvest_options.goldcopy,
    }
    return [
        AssetSpec(
            key=src,
            kind="ooi_source",
            group=site,
            tags=dict(tags),
            observable=True,
            code_version=KIND_CODE_VERSIONS["ooi_source"],
            config=config,
            source_file=str(file),
        ),
        AssetSpec(
            key=table,
            kind="ooi_stream",
            deps=(src, *cfg.deps),
            group=site,
            tags=tags,
            freshness=_freshness(cfg.freshness),
            code_version=KIND_CODE_VERSIONS["ooi_stream"],
            config=config,
            source_file=str(file),
        ),
    ]


def generic_specs(doc: Mapping[str, Any], file: Path) -> list[AssetSpec]:
    """The specs of a file with an ``assets:`` list (any kind)."""
    out = []
    for i, item in enumerate(parse(AssetsFile, doc, file).assets):
        try:
            out.append(
                AssetSpec(
                    key=item.key,
                    kind=item.kind,
                    deps=tuple(item.deps),
                    group=item.group,
                    tags=dict(item.tags),
                    freshness=_freshness(item.freshness),
                    code_version=item.code_version,
                    config=dict(item.config),
                    observable=item.observable,
                    source_file=str(file),
                )
            )
        except DataVentError as exc:
            raise ConfigError(f"{file}: assets[{i}]: {exc}") from None
    return out


def derived_specs(stores: list[AssetSpec]) -> list[AssetSpec]:
    """Per-stream availability and one catalog over all stream stores."""
    out = [
        AssetSpec(
            key=f"{s.key}/availability",
            kind="availability",
            deps=(s.key,),
            group=s.group,
            tags={k: v for k, v in s.tags.items()},
            code_version=KIND_CODE_VERSIONS["availability"],
        )
        for s in stores
    ]
    if stores:
        out.append(
            AssetSpec(
                key=CATALOG_KEY,
                kind="catalog",
                deps=tuple(sorted(s.key for s in stores)),
                group="catalog",
                code_version=KIND_CODE_VERSIONS["catalog"],
            )
        )
    return out


def load_file(file: Path) -> list[AssetSpec]:
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{file}: invalid YAML{where}: {problem}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    if "assets" in doc or ("instrument" not in doc and _close_to(doc, "assets")):
        return generic_specs(doc, file)
    return stream_specs(doc, file)


def _close_to(doc: Mapping[str, Any], key: str) -> bool:
    return bool(difflib.get_close_matches(key, [str(k) for k in doc], n=1, cutoff=0.8))


def load_specs(config_dir: Path | str, derived: bool = True) -> dict[str, AssetSpec]:
    """All specs defined under ``config_dir`` (``*.yaml``/``*.yml``, recursively)."""
    root = Path(config_dir)
    if not root.is_dir():
        raise ConfigError(
            f"config folder {root} does not exist; "
            "pass --config-dir or set DATA_VENT_CONFIG_DIR"
        )
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    specs: dict[str, AssetSpec] = {}
    origin: dict[str, Path] = {}
    for file in files:
        for spec in load_file(file):
            if spec.key in specs and origin[spec.key] != file:
                raise ConfigError(
                    f"{file}: asset {spec.key!r} is already defined in {origin[spec.key]}"
                )
            specs[spec.key] = spec
            origin[spec.key] = file
    if not specs:
        raise ConfigError(
            f"config folder {root} defines no assets (no harvest config YAMLs in it): pass "
            "the folder of harvest configs with --config-dir or DATA_VENT_CONFIG_DIR"
        )
    if derived:
        stores = [s for s in specs.values() if s.kind == "ooi_stream"]
        for spec in derived_specs(stores):
            specs.setdefault(spec.key, spec)
    return specs

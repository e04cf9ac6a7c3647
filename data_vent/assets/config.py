"""Load asset specs from a folder of harvest config YAMLs.

Two shapes are read:

* the upstream harvest config (one stream per file: ``instrument``, ``stream.method``,
  ``stream.name``, ``harvest_options``, ``workflow_config``; the misspelled ``assigness`` is
  tolerated) plus optional ``deps``, ``tags``, ``freshness``. It defines the observable source
  ``ooi/<table>`` and the stream store ``<table>``;
* a generic file with an ``assets:`` list of ``{key, kind, deps, group, tags, freshness,
  config}``, for other asset kinds.

Every stream also gets its derived assets (``<table>/availability``) and one ``catalog`` over
all stores; pass ``derived=False`` to leave them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from data_vent.core.errors import ConfigError, DataVentError
from data_vent.core.keys import source_key, table_name, validate_key
from data_vent.core.spec import AssetSpec, FreshnessPolicy
from data_vent.core.timeutil import parse_duration

# Bump a kind's version when its materialization logic changes: its assets go stale
# with reason `code_changed`.
KIND_CODE_VERSIONS = {
    "ooi_source": "1",
    "ooi_stream": "1",
    "availability": "2",
    "catalog": "2",
}

CATALOG_KEY = "catalog"


def _field(doc: Mapping[str, Any], path: str, file: Path) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur or cur[part] in (None, ""):
            raise ConfigError(f"{file}: missing field '{path}'")
        cur = cur[part]
    if not isinstance(cur, str):
        raise ConfigError(f"{file}: field '{path}' must be a string, got {cur!r}")
    return cur.strip()


def _freshness(value: Any, file: Path) -> FreshnessPolicy | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{file}: field 'freshness' must be a mapping like {{warn: 6h, fail: 1d}}"
        )
    try:
        warn = parse_duration(value["warn"]) if value.get("warn") is not None else None
        fail = parse_duration(value["fail"]) if value.get("fail") is not None else None
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{file}: field 'freshness': {exc}; use durations like 6h, 1d"
        ) from None
    return FreshnessPolicy(warn=warn, fail=fail)


def _tags(value: Any, file: Path) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):  # upstream `labels` style: bare tags
        return {str(v): "" for v in value}
    raise ConfigError(f"{file}: field 'tags' must be a mapping of key: value")


def _deps(value: Any, file: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise ConfigError(f"{file}: field 'deps' must be a list of asset keys")
    try:
        return tuple(validate_key(d) for d in value)
    except DataVentError as exc:
        raise ConfigError(f"{file}: field 'deps': {exc}") from None


def stream_specs(doc: Mapping[str, Any], file: Path) -> list[AssetSpec]:
    """The source and store specs defined by one upstream harvest config."""
    instrument = _field(doc, "instrument", file)
    method = _field(doc, "stream.method", file)
    stream = _field(doc, "stream.name", file)
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
    tags.update(_tags(doc.get("tags"), file))
    opts = doc.get("harvest_options") or {}
    if not isinstance(opts, Mapping):
        raise ConfigError(f"{file}: field 'harvest_options' must be a mapping")
    src = source_key(table)
    config = {
        "instrument": instrument,
        "method": method,
        "stream": stream,
        "refresh": bool(opts.get("refresh", False)),
        "goldcopy": bool(opts.get("goldcopy", False)),
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
            deps=(src, *_deps(doc.get("deps"), file)),
            group=site,
            tags=tags,
            freshness=_freshness(doc.get("freshness"), file),
            code_version=KIND_CODE_VERSIONS["ooi_stream"],
            config=config,
            source_file=str(file),
        ),
    ]


def generic_specs(doc: Mapping[str, Any], file: Path) -> list[AssetSpec]:
    items = doc.get("assets")
    if not isinstance(items, list):
        raise ConfigError(f"{file}: field 'assets' must be a list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{file}: assets[{i}] must be a mapping")
        where = f"assets[{i}]"
        for req in ("key", "kind"):
            if not isinstance(item.get(req), str) or not item.get(req):
                raise ConfigError(f"{file}: missing field '{where}.{req}'")
        try:
            out.append(
                AssetSpec(
                    key=item["key"],
                    kind=item["kind"],
                    deps=_deps(item.get("deps"), file),
                    group=item.get("group"),
                    tags=_tags(item.get("tags"), file),
                    freshness=_freshness(item.get("freshness"), file),
                    code_version=str(item.get("code_version", "1")),
                    config=dict(item.get("config") or {}),
                    observable=bool(item.get("observable", False)),
                    source_file=str(file),
                )
            )
        except DataVentError as exc:
            raise ConfigError(f"{file}: {where}: {exc}") from None
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
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{file}: invalid YAML{where}: {problem}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    if "assets" in doc:
        return generic_specs(doc, file)
    return stream_specs(doc, file)


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
    if derived:
        stores = [s for s in specs.values() if s.kind == "ooi_stream"]
        for spec in derived_specs(stores):
            specs.setdefault(spec.key, spec)
    return specs

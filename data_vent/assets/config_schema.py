"""The harvest config files as pydantic models, and their errors as one line each.

Two shapes: the upstream stream config (``instrument``, ``stream``, ``harvest_options``,
``workflow_config``; ``assigness`` sic) plus data-vent's optional ``deps``, ``tags`` and
``freshness``; and a generic file with an ``assets:`` list. A key that is not part of the
shape is an error naming the nearest valid key; inside the sections upstream owns
(``harvest_options``, ``workflow_config``) only a near miss of a known key is.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from data_vent.core.errors import ConfigError, DataVentError
from data_vent.core.keys import validate_key
from data_vent.core.timeutil import parse_duration

SHAPES = {
    "freshness": "must be a mapping like {warn: 6h, fail: 1d}",
    "tags": "must be a mapping of key: value",
    "deps": "must be a list of asset keys",
    "harvest_options": "must be a mapping",
    "workflow_config": "must be a mapping",
    "stream": "must be a mapping with method and name",
    "assets": "must be a list",
}
"""What a section must be, said when it is not (``field 'tags' must be ...``)."""
HINTS = {"freshness": "; use durations like 6h, 1d"}
UNKNOWN_KEY = ("extra_forbidden", "near_miss")


def _duration(value: Any) -> timedelta | None:
    return None if value is None else parse_duration(value)


def _key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"asset keys are text, not {value!r}")
    try:
        return validate_key(value)
    except DataVentError as exc:
        raise ValueError(str(exc)) from None


def _tags(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, list):  # upstream `labels` style: bare tags
        return {str(v): "" for v in value}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return value


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


def _none_is_empty_dict(value: Any) -> Any:
    return {} if value is None else value


def _text(value: Any) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return str(value) if number else value


Duration = Annotated[timedelta | None, BeforeValidator(_duration)]
AssetKey = Annotated[str, BeforeValidator(_key)]
AssetKeys = Annotated[list[AssetKey], BeforeValidator(_none_is_empty)]
Tags = Annotated[dict[str, str], BeforeValidator(_tags)]
Text = Annotated[str, Field(min_length=1)]
Label = Annotated[str, BeforeValidator(_text)]
"""Text that YAML may have read as a number (``code_version: 2``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Upstream(BaseModel):
    """A section upstream owns: unknown keys pass, a near miss of a known key does not."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _near_misses(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = list(cls.model_fields)
            for key in data:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.8)
                if key not in known and close:
                    raise PydanticCustomError(
                        "near_miss", "unknown field", {"key": str(key), "nearest": close[0]}
                    )
        return data


class FreshnessConfig(_Strict):
    warn: Duration = None
    fail: Duration = None


class StreamRef(_Strict):
    method: Text
    name: Text


class HarvestOptions(_Upstream):
    refresh: bool = False
    goldcopy: bool = False
    test: bool = False
    path: str | None = None


class WorkflowConfig(_Upstream):
    schedule: str | None = None


class StreamConfig(_Strict):
    """One upstream harvest config: one OOI stream."""

    @model_validator(mode="before")
    @classmethod
    def _blank_sections(cls, data: Any) -> Any:
        """``harvest_options:`` left empty in YAML is the defaults, not an error."""
        if isinstance(data, Mapping) and data.get("harvest_options") is None:
            data = {k: v for k, v in data.items() if k != "harvest_options"}
        return data

    instrument: Text
    stream: StreamRef
    harvest_options: HarvestOptions = HarvestOptions()
    workflow_config: WorkflowConfig | None = None
    assignees: list[Any] | None = None
    assigness: list[Any] | None = None  # sic, in every upstream config
    labels: list[Any] | None = None
    extra_attributes: dict[str, Any] | None = None
    deps: AssetKeys = []
    tags: Tags = {}
    freshness: FreshnessConfig | None = None
    simulator: dict[str, Any] | None = None
    """Read by the OOI simulator only: a stream's synthetic history and faults, or the real
    Stream Engine files it replays (``files``)."""


class AssetEntry(_Strict):
    key: Text
    kind: Text
    deps: AssetKeys = []
    group: Label | None = None
    tags: Tags = {}
    freshness: FreshnessConfig | None = None
    code_version: Label = "1"
    config: Annotated[dict[str, Any], BeforeValidator(_none_is_empty_dict)] = {}
    observable: bool = False


class AssetsFile(_Strict):
    """A generic file: a list of assets of any kind."""

    assets: list[AssetEntry]


def parse(model: type[BaseModel], doc: Any, file: Path) -> Any:
    """``model`` from a YAML document, or a one-line :class:`ConfigError` naming the file."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        # a misspelt key also leaves its right spelling missing: name the misspelling
        first = min(exc.errors(), key=lambda e: e["type"] not in UNKNOWN_KEY)
        raise ConfigError(f"{file}: {describe(model, first)}") from None


def describe(model: type[BaseModel], err: Mapping[str, Any]) -> str:
    """One pydantic error in the words of a config file's author."""
    loc = list(err["loc"])
    where = _dotted(loc)
    top = str(loc[0]) if loc else ""
    kind, value = err["type"], err.get("input")
    if kind == "missing" or (
        kind in ("string_type", "string_too_short") and value in (None, "")
    ):
        return f"missing field '{where}'"
    if kind == "extra_forbidden":
        return f"unknown field '{where}'{_nearest(model, loc)}"
    if kind == "near_miss":
        ctx = err["ctx"]
        return (
            f"unknown field '{_dotted([*loc, ctx['key']])}' (did you mean '{ctx['nearest']}'?)"
        )
    if kind == "value_error":
        cause = err["ctx"]["error"]
        return f"field '{top}': {cause}{HINTS.get(top, '')}"
    if len(loc) == 1 and top in SHAPES:
        return f"field '{top}' {SHAPES[top]}"
    if kind == "string_type":
        return f"field '{where}' must be a string, got {value!r}"
    if loc and isinstance(loc[-1], int) and kind in ("model_type", "dict_type"):
        return f"{where} must be a mapping"
    return f"field '{where}': {err['msg']}"


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest(model: type[BaseModel], loc: list[Any]) -> str:
    """`` (did you mean 'x'?)`` for the unknown key at ``loc``, from the fields beside it."""
    fields = _fields_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f"; valid: {', '.join(fields)}" if fields else ""


def _fields_at(model: type[BaseModel], loc: list[Any]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part)) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_in(annotation: Any) -> Any:
    """The model class inside ``X``, ``X | None`` or ``list[X]``."""
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None

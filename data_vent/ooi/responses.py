"""The OOI M2M answers data-vent reads, as pydantic models; a wrong shape is one line.

Each ``parse_*`` takes the decoded JSON and returns plain values, or raises
:class:`OOIParseError` saying what was expected and the start of what came. Only the fields
data-vent reads are declared; OOI may add others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from data_vent.core.errors import OOIParseError
from data_vent.core.timeutil import parse_ooi_time
from data_vent.ooi.thredds import catalog_xml_url


def _ooi_time(value: Any) -> datetime | None:
    return parse_ooi_time(value) if value else None


OOITime = Annotated[datetime | None, BeforeValidator(_ooi_time)]


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class StreamTimes(_Answer):
    """One entry of ``metadata/times``."""

    stream: str
    method: str
    count: int | None = None
    begin_time: OOITime = Field(None, alias="beginTime")
    end_time: OOITime = Field(None, alias="endTime")

    @classmethod
    def from_json(cls, d: Any) -> StreamTimes:
        try:
            return cls.model_validate(d)
        except ValidationError as exc:
            raise OOIParseError(
                f"metadata/times entry without {_first_field(exc)}: {str(d)[:200]}"
            ) from None


class AsyncResponse(_Answer):
    """Answer to a data request (or its estimate): where the results will appear."""

    request_uuid: str = Field(alias="requestUUID")
    output_url: str | None = Field(None, alias="outputURL")
    all_urls: tuple[str, ...] = Field((), alias="allURLs")
    size_calculation: int | None = Field(None, alias="sizeCalculation")
    time_calculation: int | None = Field(None, alias="timeCalculation")
    number_of_sub_jobs: int | None = Field(None, alias="numberOfSubJobs")

    @property
    def catalog_url(self) -> str | None:
        url = self.all_urls[0] if self.all_urls else self.output_url
        return catalog_xml_url(url) if url else None

    @property
    def status_url(self) -> str | None:
        """``status.txt`` under ``allURLs[1]``: present once the request is complete."""
        if len(self.all_urls) < 2:
            return None
        return self.all_urls[1].rstrip("/") + "/status.txt"

    @classmethod
    def from_json(cls, d: Any) -> AsyncResponse:
        if not isinstance(d, dict) or "requestUUID" not in d:
            raise OOIParseError(
                f"not an async request answer (no requestUUID): {str(d)[:200]}"
            )
        try:
            return cls.model_validate({**d, "allURLs": d.get("allURLs") or ()})
        except ValidationError as exc:
            raise OOIParseError(
                f"async request answer: bad {_first_field(exc)}: {str(d)[:200]}"
            ) from None


class _TocInstrument(_Answer):
    reference_designator: str
    streams: list[dict[str, Any]]


class _Toc(_Answer):
    instruments: list[_TocInstrument]


class _StreamDefinition(_Answer):
    model_config = ConfigDict(extra="allow")
    name: str
    parameters: Any


class _DeploymentRecord(_Answer):
    model_config = ConfigDict(extra="allow")
    deployment_number: Any = Field(alias="deploymentNumber")


_NAMES = TypeAdapter(list[StrictStr])
_NUMBERS = TypeAdapter(list[StrictInt])
_RECORDS = TypeAdapter(list[_DeploymentRecord])
_OBJECTS = TypeAdapter(list[dict[str, Any]])


def _check(adapter: TypeAdapter, body: Any, expected: str) -> Any:
    try:
        adapter.validate_python(body)
    except ValidationError:
        raise OOIParseError(f"{expected}, got {str(body)[:120]}") from None
    return body


def _first_field(exc: ValidationError) -> str:
    loc = exc.errors()[0]["loc"]
    return repr(str(loc[0])) if loc else "a field"


def parse_inventory(body: Any) -> list[str]:
    return _check(_NAMES, body, "sensor inventory: expected a list of names")


def parse_metadata_times(body: Any) -> list[StreamTimes]:
    """``metadata/times`` is a list; the full ``metadata`` answer has it under ``times``."""
    if isinstance(body, dict) and "times" in body:
        body = body["times"]
    if not isinstance(body, list):
        raise OOIParseError(f"metadata/times: expected a list, got {str(body)[:120]}")
    return [StreamTimes.from_json(d) for d in body]


def parse_toc(body: Any) -> dict[str, StreamTimes]:
    """``sensor/inv/toc``: every stream OOI lists, by table name (``{instruments:
    [{reference_designator, streams: [{stream, method, count, beginTime, endTime}]}]}``)."""
    try:
        toc = _Toc.model_validate(body)
    except ValidationError:
        raise OOIParseError(
            "sensor/inv/toc: expected instruments with a reference_designator and streams, "
            f"got {str(body)[:120]}"
        ) from None
    out: dict[str, StreamTimes] = {}
    for inst in toc.instruments:
        for entry in inst.streams:
            st = StreamTimes.from_json(entry)
            out[f"{inst.reference_designator}-{st.method}-{st.stream}"] = st
    return out


def parse_stream_byname(body: Any) -> dict[str, Any]:
    try:
        _StreamDefinition.model_validate(body)
    except ValidationError:
        raise OOIParseError(
            f"stream/byname: expected an object with name and parameters, "
            f"got {str(body)[:120]}"
        ) from None
    return body


def parse_deployment_numbers(body: Any) -> list[int]:
    return _check(_NUMBERS, body, "deployment numbers: expected a list of integers")


def parse_deployment_records(body: Any) -> list[dict[str, Any]]:
    """``.XDeployment`` records (``deploymentNumber``, ``eventStartTime``, ...)."""
    return _check(_RECORDS, body, "deployment records: expected .XDeployment objects")


def parse_annotations(body: Any) -> list[dict[str, Any]]:
    return _check(_OBJECTS, body, "annotations: expected a list of objects")

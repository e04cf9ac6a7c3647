"""Streams that replay real Stream Engine files, time-shifted onto the simulated clock.

A :class:`RealStream` lays its files (one or more, e.g. two deployments of a glider) end to
end as one *cycle* and repeats the cycle every ``period`` seconds (at least a day) from
``first`` on, so new data keeps arriving as the clock advances. A request gets the rows of
its range, one file per run of rows from the same source file, each written with the source
file's own dimensions, variables, dtypes, attributes, ``_FillValue``s (string fills too),
QC variables, deployment numbers and provenance variables. Only two things change: every
variable in ``seconds since <epoch>`` is shifted by a whole number of seconds (its fills
are left alone), and the global ``requestUUID``/``time_coverage_*`` name the new request.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from data_vent.core.timeutil import NTP_EPOCH, from_ntp_seconds, to_naive_utc, to_ntp_seconds
from data_vent.ncio import netcdf4_file
from data_vent.ooi.names import TableName, data_file_name, parse_table
from data_vent.simulator.streams import FAULTS, FILE_FAULTS, check_faults, times_entry

DATA_DIR = Path(__file__).parent / "data"
"""The real files the demo serves (origin of each in ``data/README.md``)."""
DAY = 86400
MS = 1e-3
_SINCE = re.compile(
    r"^\s*seconds?\s+since\s+(\d{4}-\d{1,2}-\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?))?\s*(?:Z|UTC)?\s*$",
    re.IGNORECASE,
)
_DEPLOYMENT_NAME = re.compile(r"deployment(\d{4})_")


def epoch_seconds(units: str) -> float | None:
    """Seconds from 1900-01-01 to the epoch of ``seconds since <epoch>`` units, else None."""
    m = _SINCE.match(units or "")
    if m is None:
        return None
    day = datetime.strptime(m[1], "%Y-%m-%d")
    secs = int(m[2] or 0) * 3600 + int(m[3] or 0) * 60 + float(m[4] or 0)
    return (day - NTP_EPOCH).total_seconds() + secs


@dataclass
class _Var:
    name: str
    datatype: Any
    dims: tuple[str, ...]
    fill: Any
    attrs: dict[str, Any]
    zlib: bool
    complevel: int
    shuffle: bool
    data: np.ndarray
    seconds: bool  # units are ``seconds since <epoch>``: shifted with the clock


@dataclass
class _Content:
    data_model: str
    dims: dict[str, tuple[int, bool]]  # name -> (size, unlimited)
    attrs: dict[str, Any]
    variables: list[_Var]


class RealFile:
    """One real Stream Engine file: its row times up front, its content when first served."""

    def __init__(self, path: Path):
        self.path = path
        self.obs = "obs"
        self._content: _Content | None = None
        self._lock = threading.Lock()
        with netcdf4_file(path) as ds:
            if self.obs not in ds.dimensions:
                raise ValueError(f"{path.name}: no 'obs' dimension; not a Stream Engine file")
            t = ds.variables["time"]
            t.set_auto_maskandscale(False)
            epoch = epoch_seconds(getattr(t, "units", ""))
            if epoch is None:
                raise ValueError(f"{path.name}: time units {t.units!r} are not seconds since")
            self.times = np.asarray(t[:], dtype="f8") + epoch
            self.deployment = _deployment(ds, path.name)
            self.attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        if not len(self.times) or not np.all(np.diff(self.times) > 0):
            raise ValueError(f"{path.name}: time is empty or not strictly increasing")

    def content(self) -> _Content:
        with self._lock:
            if self._content is None:
                self._content = _read(self.path)
            return self._content

    def write(
        self, dest: Path, rows: np.ndarray, shifts: np.ndarray, request_uuid: str
    ) -> Path:
        """Write ``rows`` (indices into obs) with each row's time shift (whole seconds)."""
        c = self.content()
        with netcdf4_file(dest, "w", format=c.data_model) as ds:
            for name, (size, unlimited) in c.dims.items():
                size = len(rows) if name == self.obs else size
                ds.createDimension(name, None if unlimited else size)
            for v in c.variables:
                kw: dict[str, Any] = {}
                if v.zlib:
                    kw = {"zlib": True, "complevel": v.complevel, "shuffle": v.shuffle}
                out = ds.createVariable(v.name, v.datatype, v.dims, fill_value=v.fill, **kw)
                out.setncatts(v.attrs)
                out.set_auto_maskandscale(False)
                if isinstance(v.datatype, np.dtype) and v.datatype.kind == "S":
                    out.set_auto_chartostring(False)
                out[...] = self._rows(v, rows, shifts)
            attrs = dict(c.attrs)
            if "requestUUID" in attrs:
                attrs["requestUUID"] = request_uuid
            t = self.times[rows] + shifts
            for key, value in (("time_coverage_start", t[0]), ("time_coverage_end", t[-1])):
                if key in attrs:
                    attrs[key] = from_ntp_seconds(float(value)).isoformat()
            ds.setncatts(attrs)
        return dest

    def _rows(self, v: _Var, rows: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        if self.obs not in v.dims:
            return v.data
        axis = v.dims.index(self.obs)
        data = np.take(v.data, rows, axis=axis)
        if not v.seconds or data.dtype.kind not in "iuf":
            return data
        shape = [1] * data.ndim
        shape[axis] = len(rows)
        shift = shifts.reshape(shape)
        valid = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
        if v.fill is not None:
            valid &= data != v.fill
        shifted = data.astype("f8" if data.dtype.kind == "f" else "i8") + shift
        if data.dtype.kind in "iu":
            info = np.iinfo(data.dtype)
            if shifted[valid].size and (
                shifted[valid].min() < info.min or shifted[valid].max() > info.max
            ):
                return data  # the shifted clock does not fit this integer: left as it was
        return np.where(valid, shifted, data).astype(data.dtype)


def _deployment(ds: netCDF4.Dataset, name: str) -> int:
    """The file's deployment: its ``deployment`` variable, else its name, else 0."""
    if "deployment" in ds.variables:
        values = np.ma.masked_invalid(np.ma.asarray(ds.variables["deployment"][:]))
        values = values.compressed()
        if values.size:
            found, counts = np.unique(values.astype("i8"), return_counts=True)
            return int(found[np.argmax(counts)])
    m = _DEPLOYMENT_NAME.search(name)
    return int(m[1]) if m else 0


def _read(path: Path) -> _Content:
    with netcdf4_file(path) as ds:
        ds.set_auto_maskandscale(False)
        dims = {n: (len(d), d.isunlimited()) for n, d in ds.dimensions.items()}
        variables = []
        for name, v in ds.variables.items():
            v.set_auto_maskandscale(False)
            if isinstance(v.datatype, np.dtype) and v.datatype.kind == "S":
                v.set_auto_chartostring(False)
            attrs = {k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"}
            filters = v.filters() or {}
            variables.append(
                _Var(
                    name=name,
                    datatype=v.datatype,
                    dims=tuple(v.dimensions),
                    fill=v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None,
                    attrs=attrs,
                    zlib=bool(filters.get("zlib")),
                    complevel=int(filters.get("complevel") or 0),
                    shuffle=bool(filters.get("shuffle")),
                    data=np.asarray(v[...]),
                    seconds=epoch_seconds(str(attrs.get("units", ""))) is not None,
                )
            )
        return _Content(
            data_model=ds.data_model,
            dims=dims,
            attrs={k: ds.getncattr(k) for k in ds.ncattrs()},
            variables=variables,
        )


@dataclass
class RealStream:
    """A stream whose samples are real files' rows, repeated every ``period`` seconds.

    ``first`` is where the first file's first row lands (to the whole second); the files
    follow one another with the gap of their own median sampling interval. ``period``
    defaults to a day, or the cycle's length (to the whole second) when that is longer.
    """

    table: str
    files: Sequence[str | Path]
    first: datetime
    period: float | None = None
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)

    kind = "real"
    allowed_faults = tuple(f for f in FAULTS if f not in FILE_FAULTS)

    def __post_init__(self) -> None:
        self.name: TableName = parse_table(self.table)
        check_faults(self.faults, self.allowed_faults)
        self.sources = [RealFile(Path(p)) for p in self.files]
        if not self.sources:
            raise ValueError(f"{self.table}: a real stream needs at least one file")
        for src in self.sources:
            _check_table(src, self.table)
        anchor = to_ntp_seconds(to_naive_utc(self.first))
        shifts, ends = [], []
        for i, src in enumerate(self.sources):
            if i == 0:
                shift = round(anchor - src.times[0])
            else:
                shift = math.ceil(ends[-1] + _gap(self.sources[i - 1]) - src.times[0])
            shifts.append(shift)
            ends.append(src.times[-1] + shift)
        self.shifts = np.array(shifts, dtype="i8")
        self.t0 = float(self.sources[0].times[0] + shifts[0])
        self.first = from_ntp_seconds(self.t0)
        span = ends[-1] + _gap(self.sources[-1]) - self.t0
        self.period = float(self.period or max(DAY, math.ceil(span)))
        if self.period < span:
            raise ValueError(
                f"{self.table}: period {self.period:g} s is shorter than its files "
                f"({math.ceil(span)} s)"
            )
        # one cycle: every row of every file, in time order, with where it comes from
        self._file = np.concatenate(
            [np.full(len(s.times), i) for i, s in enumerate(self.sources)]
        )
        self._row = np.concatenate([np.arange(len(s.times)) for s in self.sources])
        self._rel = (
            np.concatenate([s.times + sh for s, sh in zip(self.sources, shifts, strict=True)])
            - self.t0
        )

    def _cycles(self, begin: float, end: float) -> range:
        lo = max(0, math.floor((begin - self.t0 - self._rel[-1]) / self.period))
        hi = math.floor((end + MS - self.t0) / self.period)
        return range(lo, hi + 1)

    def _select(self, begin: float, end: float) -> list[tuple[int, np.ndarray]]:
        """(cycle, indices into the cycle's rows) of the rows in [begin, end].

        OOI prints times to the millisecond (``metadata/times``), and a harvester asks up
        to the ``endTime`` it was shown: a row counts as at or before ``end`` when its time
        truncated to the millisecond is, or real files' sub-millisecond times would drop
        the last row of every request.
        """
        out = []
        for k in self._cycles(begin, end):
            t = self.t0 + k * self.period + self._rel
            idx = np.nonzero((t >= begin) & (t < end + MS))[0]
            if len(idx):
                out.append((k, idx))
        return out

    def times(self, begin: float, end: float) -> np.ndarray:
        """Sorted NTP sample times in [begin, end], as the served files carry them."""
        parts = [self._shifted(k, idx) for k, idx in self._select(begin, end)]
        return np.concatenate(parts) if parts else np.empty(0)

    def _shifted(self, k: int, idx: np.ndarray) -> np.ndarray:
        """The times as the served files carry them: file time + whole-second shift."""
        out = np.empty(len(idx))
        for j in np.unique(self._file[idx]):
            sel = self._file[idx] == j
            out[sel] = self.sources[j].times[self._row[idx][sel]] + self._shift(j, k)
        return out

    def _shift(self, j: int, k: int) -> int:
        return int(self.shifts[j]) + k * int(self.period)

    def summary(self, now: float) -> dict[str, Any] | None:
        """The ``metadata/times`` entry as of ``now`` (None before the first sample)."""
        return times_entry(self.name, self.times(self.t0, now))

    def deployments(self, begin: float, end: float) -> list[int]:
        files = {int(j) for _, idx in self._select(begin, end) for j in self._file[idx]}
        return sorted({self.sources[j].deployment for j in files})

    def deployment_start(self, number: int) -> float:
        for j, src in enumerate(self.sources):
            if src.deployment == number:
                return float(src.times[0] + self.shifts[j])
        return self.t0

    def write_files(
        self, folder: Path, begin: float, end: float, request_uuid: str
    ) -> dict[str, Path]:
        """One file per run of consecutive rows from one source file."""
        runs: list[tuple[int, list[np.ndarray], list[np.ndarray]]] = []
        for k, idx in self._select(begin, end):
            files = self._file[idx]
            cuts = np.nonzero(np.diff(files))[0] + 1
            for part in np.split(idx, cuts):
                j = int(self._file[part[0]])
                rows = self._row[part]
                shifts = np.full(len(part), self._shift(j, k), dtype="i8")
                if runs and runs[-1][0] == j:
                    runs[-1][1].append(rows)
                    runs[-1][2].append(shifts)
                else:
                    runs.append((j, [rows], [shifts]))
        out: dict[str, Path] = {}
        for j, rows_parts, shift_parts in runs:
            src = self.sources[j]
            rows, shifts = np.concatenate(rows_parts), np.concatenate(shift_parts)
            t = src.times[rows] + shifts
            name = data_file_name(
                src.deployment,
                self.table,
                from_ntp_seconds(float(t[0])),
                from_ntp_seconds(float(t[-1])),
            )
            out[name] = src.write(folder / name, rows, shifts, request_uuid)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "first": self.first.isoformat(),
            "period": self.period,
            "files": [s.path.name for s in self.sources],
            "faults": self.faults,
        }


def _gap(src: RealFile) -> float:
    """A file's own median sampling interval, at least a second."""
    return max(1.0, float(np.median(np.diff(src.times)))) if len(src.times) > 1 else 1.0


def _check_table(src: RealFile, table: str) -> None:
    """A file serves only its own stream: its global attributes, else its name, say which."""
    a = src.attrs
    keys = ("subsite", "node", "sensor", "collection_method", "stream")
    if all(k in a for k in keys):
        named = "{}-{}-{}-{}-{}".format(*(a[k] for k in keys))
        if named != table:
            raise ValueError(f"{src.path.name} holds {named}, not {table}")
    elif table not in src.path.name:
        raise ValueError(f"{src.path.name}: no global attributes and not named for {table}")


def resolve_file(name: str | Path, config_dir: Path | None = None) -> Path:
    """A ``files:`` entry: absolute, beside the config, or one of the bundled real files."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else []
    if config_dir is not None:
        candidates.append(config_dir / path)
    candidates.append(DATA_DIR / path)
    for c in candidates:
        if c.is_file():
            return c
    raise ValueError(f"real file {name} not found (beside the config or in {DATA_DIR})")


def real_stream_from_config(
    table: str, clock: datetime, sim: dict[str, Any], config_dir: Path | None = None
) -> RealStream:
    """``simulator: {files: [...], first?, days?, period?, faults?}`` of a harvest config;
    without ``first`` the stream begins ``days`` (default 3) before the clock."""
    files = sim.get("files") or []
    if isinstance(files, str | Path):
        files = [files]
    first = sim.get("first")
    if first is None:
        first = (clock - timedelta(days=float(sim.get("days", 3)))).replace(microsecond=0)
    elif isinstance(first, str):
        first = datetime.fromisoformat(first.replace("Z", "+00:00"))
    return RealStream(
        table,
        [resolve_file(f, config_dir) for f in files],
        first,
        period=sim.get("period"),
        faults=dict(sim.get("faults") or {}),
    )

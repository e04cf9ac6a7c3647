"""Normalise one OOI NetCDF file to the stream-store schema, lazily.

Rules (each one is applied the same way to every file, so files of one stream line up):

* **Record dimension**: ``obs`` (or an already harvested ``time``) becomes ``time``. The
  ``obs`` index variable is dropped: it is the row number inside one request, meaningless
  once files are concatenated.
* **Coordinates as the source declares them**: the file is opened with ``decode_cf=False`` so
  no integer is widened while converting; each variable keeps its ``coordinates`` attribute,
  limited to variables the file has (``obs`` goes), so a reader of the store gets the same
  coordinates (``lat``, ``lon``, CTD ``pressure``, glider GPS ...) as plain xarray opening
  the source file.
* **Fill values**: ``_FillValue`` leaves the attributes and becomes the zarr ``fill_value``
  (readers see it as ``_FillValue``). Variables without one keep ``fill_value = null``, so a
  consumer reads integers as integers.
* **Time**: float64 seconds since 1900-01-01 (CF ``units``/``calendar``). Every float variable
  whose units are ``seconds since <epoch>`` with another epoch (``time`` of the ADCP and HPIES
  files, per-file ``driver_timestamp`` epochs, ``profiler_timestamp`` in 1970) is shifted to
  1900 with one correctly rounded addition done in extended precision; values equal to the
  variable's ``_FillValue`` stay the fill value.
* **Strings**: char arrays ``(obs, stringNN)`` and variable-length strings on ``obs`` become
  variable-length UTF-8 strings (``vlen-utf8``; width changes between files are then harmless);
  their ``_FillValue`` (``b'e'``, the cause of "Failed to decode fill_value |S19") is dropped
  and the missing string is ``''``. Kept: every string on ``obs`` except ``DROPPED_STRINGS``
  (per-row UUIDs ``id`` and ``provenance`` that point into OOI's own database, and the
  ``l0_provenance_information`` blob).
* **Not on obs**: provenance strings (``computed_provenance``, ``l0_provenance_*``,
  ``query_parameter_provenance`` ...) and their dimensions are dropped. Numeric variables not
  on  ``obs`` (``wavelength``, ``spectral_channels_dim_0``) are kept as *static* arrays.
* **Scalars**: 0-d numeric variables become global attributes.
* **Attributes** (``clean_attrs``): netCDF/HDF5 internals and ``_FillValue`` removed
  (``coordinates`` too, but for the variables' own, above), numpy values made JSON (NaN/inf
  -> their string), bytes decoded. Global attributes that describe one request
  (``PER_REQUEST_ATTRS``) are dropped; the store sets ``time_coverage_start``/``end`` itself.

Nothing is read until ``read`` is called for a row range of one variable, so a file larger
than memory is converted piece by piece.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from data_vent import ncio

TIME = "time"
TIME_UNITS = "seconds since 1900-01-01 0:0:0"
TIME_ATTRS = {
    "units": TIME_UNITS,
    "calendar": "gregorian",
    "standard_name": "time",
    "long_name": "time",
    "axis": "T",
}
NTP_EPOCH = datetime(1900, 1, 1)
DROPPED_STRINGS = frozenset({"id", "provenance", "l0_provenance_information"})
COORDINATES = "coordinates"
DROPPED_ATTRS = frozenset(
    {
        COORDINATES,
        "_FillValue",
        "_ChunkSizes",
        "_Netcdf4Dimid",
        "_Netcdf4Coordinates",
        "_nc3_strict",
        "_NCProperties",
        "DIMENSION_LIST",
        "REFERENCE_LIST",
        "CLASS",
        "NAME",
        "_ARRAY_DIMENSIONS",
    }
)
PER_REQUEST_ATTRS = frozenset(
    {
        "requestUUID",
        "date_created",
        "date_modified",
        "date_issued",
        "history",
        "time_coverage_start",
        "time_coverage_end",
        "time_coverage_resolution",
        "geospatial_lat_min",
        "geospatial_lat_max",
        "geospatial_lon_min",
        "geospatial_lon_max",
        "geospatial_vertical_min",
        "geospatial_vertical_max",
    }
)
_SECONDS_SINCE = re.compile(r"^\s*seconds?\s+since\s+(.+?)\s*$", re.IGNORECASE)
STR_DTYPE = np.dtypes.StringDType()  # strings in memory: what zarr reads back, no objects


@dataclass(frozen=True)
class VarSpec:
    """How one variable looks in the store (not how it is stored in the file)."""

    name: str
    dims: tuple[str, ...]
    dtype: np.dtype  # object dtype ``O`` stands for vlen-utf8 strings
    shape_inner: tuple[int, ...]  # sizes of non-time dims (or all dims of a static array)
    fill_value: Any
    attrs: dict[str, Any]

    @property
    def is_string(self) -> bool:
        return self.dtype.kind in "OUST"

    @property
    def timed(self) -> bool:
        return bool(self.dims) and self.dims[0] == TIME


@dataclass
class NormalizeReport:
    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # name -> reason
    converted: dict[str, str] = field(default_factory=dict)  # name -> what was done

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped": self.dropped, "converted": self.converted}


@dataclass
class _Source:
    """Where a store variable comes from in the file and how to convert a piece of it."""

    name: str
    char_width: int | None = None  # char array -> string
    epoch_shift: Fraction | None = None  # seconds to add to reach the 1900 epoch
    raw_fill: Any = None


TIME_BLOCK = 1 << 22
"""Rows of time read at once when scanning or planning (32 MB of float64)."""


@dataclass
class TimeScan:
    """What one blockwise pass over a file's time axis found."""

    rows: int
    n_valid: int = 0
    first: float = math.inf  # smallest valid time
    last: float = -math.inf  # largest valid time
    increasing: bool = True  # valid times strictly increasing in file order

    @property
    def clean(self) -> bool:
        """Every row valid and strictly increasing: rows can be planned as a range."""
        return self.n_valid == self.rows and self.increasing

    @classmethod
    def of(cls, nf: NormalizedFile, block: int = 0) -> TimeScan:
        block = block or TIME_BLOCK
        sc = cls(nf.rows)
        prev = -math.inf
        for a in range(0, nf.rows, block):
            t, valid = nf.time_block(a, min(nf.rows, a + block))
            tv = t[valid]
            if not tv.size:
                continue
            sc.n_valid += int(tv.size)
            sc.first = min(sc.first, float(tv.min()))
            sc.last = max(sc.last, float(tv.max()))
            if sc.increasing and (tv[0] <= prev or np.any(tv[1:] <= tv[:-1])):
                sc.increasing = False
            prev = float(tv[-1])
        return sc


class NormalizedFile:
    """One OOI NetCDF file seen through the store schema; data read on demand."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.ds = ncio.open_lazy(self.path, decode_cf=False)
        try:
            self._read_schema()
        except BaseException:
            self.close()  # never leave a handle for the garbage collector to close
            raise

    def _read_schema(self) -> None:
        self.report = NormalizeReport()
        self.record_dim = "obs" if "obs" in self.ds.dims else TIME
        if self.record_dim not in self.ds.dims or TIME not in self.ds.variables:
            raise ValueError(
                f"{self.path.name}: no obs/time record dimension or no time variable"
            )
        self.rows = int(self.ds.sizes[self.record_dim])
        self.specs: dict[str, VarSpec] = {}
        self._sources: dict[str, _Source] = {}
        self.attrs: dict[str, Any] = {
            k: v for k, v in clean_attrs(self.ds.attrs).items() if k not in PER_REQUEST_ATTRS
        }
        self._build()
        self._keep_coordinates()
        self._time: np.ndarray | None = None
        self._scan: TimeScan | None = None

    # ---------------------------------------------------------------- schema
    def _build(self) -> None:
        rec = self.record_dim
        for name, var in self.ds.variables.items():
            name = str(name)
            dims = tuple(str(d) for d in var.dims)
            if name == rec and rec != TIME:
                self.report.dropped[name] = "obs row index (replaced by time)"
                continue
            kind = var.dtype.kind
            is_char = kind == "S" and var.dtype.itemsize == 1 and len(dims) >= 2
            is_text = kind in "OUS"
            if rec not in dims:
                if var.ndim == 0 and kind in "iufb":
                    self.attrs[name] = _jsonable(var.values.item())
                    self.report.converted[name] = "scalar -> global attribute"
                elif is_text:
                    self.report.dropped[name] = "string not on obs (provenance)"
                else:
                    self._add_static(name, var)
                continue
            if dims[0] != rec:
                raise ValueError(f"{self.path.name}: {name} has {rec} not first: {dims}")
            if is_text:
                if name in DROPPED_STRINGS:
                    self.report.dropped[name] = "per-row OOI identifier (DROPPED_STRINGS)"
                    continue
                if is_char:
                    src = _Source(name, char_width=int(np.prod(var.shape[1:])))
                elif var.ndim == 1:
                    src = _Source(name)
                else:
                    self.report.dropped[name] = f"string array with dims {dims}"
                    continue
                attrs = clean_attrs(var.attrs)
                self._add(name, (TIME,), np.dtype("O"), (), "", attrs, src)
                self.report.converted[name] = "chars -> vlen utf-8 string, _FillValue dropped"
                continue
            if kind not in "iufb":
                self.report.dropped[name] = f"unsupported dtype {var.dtype}"
                continue
            attrs = clean_attrs(var.attrs)
            fill = var.attrs.get("_FillValue")
            fill = None if fill is None else var.dtype.type(fill)
            src = _Source(name, raw_fill=fill)
            units = str(var.attrs.get("units", ""))
            if name == TIME:
                attrs = {**attrs, **TIME_ATTRS}
                fill = None  # a dimension coordinate has no missing values
            m = _SECONDS_SINCE.match(units)
            if m and kind == "f":
                shift = epoch_offset_seconds(m.group(1))
                if shift != 0:
                    src.epoch_shift = shift
                    self.report.converted[name] = f"epoch {m.group(1)!r} -> 1900-01-01"
                attrs["units"] = TIME_UNITS if name == TIME else "seconds since 1900-01-01"
            elif name == TIME:
                raise ValueError(
                    f"{self.path.name}: time units {units!r} are not seconds since"
                )
            inner = tuple(int(s) for s in var.shape[1:])
            out_dims = (TIME, *dims[1:])
            self._add(name, out_dims, var.dtype, inner, fill, attrs, src)

    def _keep_coordinates(self) -> None:
        """Each variable's ``coordinates`` attribute, limited to variables it keeps: plain
        xarray promotes exactly those (``obs``, gone, is left out)."""
        for name, spec in self.specs.items():
            text = self.ds.variables[self._sources[name].name].attrs.get(COORDINATES)
            if not isinstance(text, str):
                continue
            names = [c for c in text.split() if c in self.specs]
            if names:
                attrs = {**spec.attrs, COORDINATES: " ".join(names)}
                self.specs[name] = VarSpec(
                    name, spec.dims, spec.dtype, spec.shape_inner, spec.fill_value, attrs
                )

    def _add(self, name, dims, dtype, inner, fill, attrs, src) -> None:
        self.specs[name] = VarSpec(name, dims, np.dtype(dtype), inner, fill, attrs)
        self._sources[name] = src
        self.report.kept.append(name)

    def _add_static(self, name: str, var: xr.Variable) -> None:
        fill = var.attrs.get("_FillValue")
        fill = None if fill is None else var.dtype.type(fill)
        dims = tuple(str(d) for d in var.dims)
        shape = tuple(int(s) for s in var.shape)
        self._add(name, dims, var.dtype, shape, fill, clean_attrs(var.attrs), _Source(name))
        self.report.converted[name] = "not on obs: static array"

    # ---------------------------------------------------------------- data
    def read(self, name: str, index: slice | np.ndarray | None = None) -> np.ndarray:
        """Rows ``index`` of variable ``name``, converted to the store's dtype and units."""
        spec, src = self.specs[name], self._sources[name]
        var = self.ds.variables[src.name]
        if not spec.timed:
            return np.asarray(var.values)
        if index is None:
            index = slice(0, self.rows)
        raw = _take(var, index)
        if spec.is_string:
            return strings_from_raw(raw, src.char_width)
        if src.epoch_shift is not None:
            raw = shift_epoch(raw, src.epoch_shift, src.raw_fill)
        return raw

    def time_fill(self) -> Any:
        """The file's ``_FillValue`` of time (rows holding it have no time)."""
        return self._sources[TIME].raw_fill

    def time(self) -> np.ndarray:
        """All times of the file in the store's units (cached: 8 bytes a row).

        Whole-file: only the slow path of row planning (a file with invalid, unsorted or
        duplicate times) uses it; everything else reads time in blocks (``time_block``).
        """
        if self._time is None:
            self._time = self.read(TIME)
        return self._time

    def time_block(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Times of rows [a, b) in store units and which of them are valid (not NaN and
        not the file's time ``_FillValue``), from one read of the raw values."""
        src = self._sources[TIME]
        raw = _take(self.ds.variables[src.name], slice(a, b))
        valid = ~np.isnan(raw)
        fill = src.raw_fill
        if fill is not None and not np.isnan(fill):
            valid &= raw != fill
        t = shift_epoch(raw, src.epoch_shift, fill) if src.epoch_shift is not None else raw
        return t, valid

    def time_scan(self) -> TimeScan:
        """One blockwise pass over time (cached): memory stays at one block."""
        if self._scan is None:
            self._scan = TimeScan.of(self)
        return self._scan

    def dataset(self) -> xr.Dataset:
        """The whole file as an in-memory Dataset in store schema (small files, tests)."""
        data_vars = {}
        coord_names = {TIME}
        for name, spec in self.specs.items():
            attrs = dict(spec.attrs)
            coord_names.update(str(attrs.pop(COORDINATES, "")).split())
            if spec.fill_value is not None:
                attrs["_FillValue"] = spec.fill_value
            values = self.read(name)
            if spec.is_string:
                values = values.astype(object)
            data_vars[name] = xr.Variable(spec.dims, values, attrs)
        coords = {n: data_vars.pop(n) for n in sorted(coord_names)}
        return xr.Dataset(data_vars, coords=coords, attrs=self.attrs)

    def close(self) -> None:
        ncio.close(self.ds)

    def __enter__(self) -> NormalizedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def normalize_file(path: str | Path) -> tuple[xr.Dataset, NormalizeReport]:
    """Whole-file convenience: the normalised Dataset (in memory) and the report."""
    with NormalizedFile(path) as nf:
        return nf.dataset(), nf.report


# -------------------------------------------------------------------- helpers
def _take(var: xr.Variable, index: slice | np.ndarray) -> np.ndarray:
    """Rows of a lazily indexed variable: contiguous runs as a slice, else sorted unique."""
    if isinstance(index, slice):
        return np.asarray(var[index].values)
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return np.asarray(var[0:0].values)
    lo, hi = int(index[0]), int(index[-1])
    if hi - lo + 1 == index.size and np.all(np.diff(index) == 1):
        return np.asarray(var[lo : hi + 1].values)
    uniq, inv = np.unique(index, return_inverse=True)
    if int(uniq[-1]) - int(uniq[0]) + 1 <= 4 * uniq.size:
        block = np.asarray(var[int(uniq[0]) : int(uniq[-1]) + 1].values)
        return block[index - uniq[0]]
    return np.asarray(var[uniq].values)[inv]


def strings_from_raw(raw: np.ndarray, char_width: int | None) -> np.ndarray:
    """Char array ``(rows, n)`` of ``S1`` (or 1-D bytes/str) -> ``StringDType`` strings.

    Vectorized: the rows become fixed-width bytes (trailing NULs dropped) and, when they are
    ASCII (OOI's timestamps, flags and serial numbers are), one C-level cast makes them
    strings; only rows with other bytes are decoded one by one (UTF-8, else Latin-1).
    """
    if char_width is not None:
        raw = np.ascontiguousarray(raw).reshape(raw.shape[0], char_width)
        raw = raw.view(f"S{char_width}").reshape(raw.shape[0])
    if raw.dtype.kind == "U":
        return raw.astype(STR_DTYPE)
    if raw.dtype.kind == "S":
        raw = np.ascontiguousarray(raw)
        width = raw.dtype.itemsize
        if raw.size == 0 or width == 0:
            return np.full(raw.shape, "", dtype=STR_DTYPE)
        other = (raw.view(np.uint8).reshape(raw.size, width) >= 0x80).any(axis=1)
        if not other.any():
            return raw.astype(STR_DTYPE)
        out = np.where(other, b"", raw).astype(STR_DTYPE)
        for i in np.nonzero(other)[0]:
            out[i] = _decode(raw[i])
        return out
    out = np.empty(raw.shape, dtype=STR_DTYPE)  # vlen strings (object): rare, row by row
    for i, v in enumerate(raw.tolist()):
        out[i] = _decode(v) if isinstance(v, bytes) else ("" if v is None else str(v))
    return out


def _decode(v: bytes) -> str:
    v = v.rstrip(b"\x00")
    try:
        return v.decode("utf-8")
    except UnicodeDecodeError:
        return v.decode("latin-1")


def epoch_offset_seconds(epoch_text: str) -> Fraction:
    """Exact seconds from 1900-01-01 to ``epoch_text`` ('2016-09-28 09:59:46.935698032')."""
    text = epoch_text.strip().replace("T", " ").rstrip("Z").strip()
    date_part, _, time_part = text.partition(" ")
    y, mo, d = (int(x) for x in date_part.split("-"))
    secs = Fraction(0)
    if time_part:
        time_part = time_part.split("+")[0].strip()
        hms = time_part.split(":")
        h = int(hms[0])
        mi = int(hms[1]) if len(hms) > 1 else 0
        secs = Fraction(h * 3600 + mi * 60)
        if len(hms) > 2:
            secs += Fraction(hms[2])
    days = (datetime(y, mo, d) - NTP_EPOCH).days
    return Fraction(days * 86400) + secs


def shift_epoch(values: np.ndarray, shift: Fraction, fill: Any) -> np.ndarray:
    """``values + shift`` rounded once: extended precision, fill values left untouched."""
    v = np.asarray(values)
    num = np.longdouble(shift.numerator) / np.longdouble(shift.denominator)
    out = (v.astype(np.longdouble) + num).astype(v.dtype)
    if fill is not None:
        keep = (v == fill) | (np.isnan(v) if np.isnan(fill) else False)
        out = np.where(keep, v, out)
    out[np.isnan(v)] = np.nan
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v.decode("latin-1")
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes a zarr reader can take: internals dropped, values JSON."""
    return {str(k): _jsonable(v) for k, v in attrs.items() if k not in DROPPED_ATTRS}

"""One Settings object, read from DATA_VENT_* environment variables (and OOI_* secrets).

Defaults work on a laptop: everything lives under ``./.data-vent``. Every value is checked
when the settings are built (types, ranges, URL schemes, folders that cannot be), so a bad
value is one line naming the variable and what it must be (exit 2) instead of a pydantic
traceback, or a zero that reaches Prefect. ``get_settings`` also refuses a ``DATA_VENT_*``
variable it does not know (a misspelled ``DATA_VENT_STORGE`` would silently harvest into
the default folder) and names the nearest one.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

OOINET_M2M_URL = "https://ooinet.oceanobservatories.org/api/m2m"
ENV_PREFIX = "DATA_VENT_"
EXTRA_ENV = frozenset({"DATA_VENT_DEBUG"})
"""DATA_VENT_* variables that are not settings (``DATA_VENT_TEST_*`` belong to the tests)."""


class SettingsError(ValueError):
    """A setting with a bad value or an unknown name: bad input (exit 2), one line.

    Not a ``core.errors.BadInput``: settings and core sit side by side on the bottom floor
    and do not import each other; the CLI maps it to exit 2."""

    exit_code = 2


def _whole(ge: int, le: int | None = None, **kw: Any) -> Any:
    what = f"a whole number from {ge} to {le}" if le is not None else f"a whole number ≥ {ge}"
    return Field(ge=ge, le=le, description=what, **kw)


def _seconds(gt: float | None = None, ge: float | None = None, le: float = 86400.0) -> Any:
    low = f"> {gt:g}" if gt is not None else f"≥ {ge:g}"
    return {"gt": gt, "ge": ge, "le": le, "description": f"seconds, {low} and ≤ {le:g}"}


def sqlite_path(url: Any) -> str | None:
    """The file a SQLite URL (a SQLAlchemy ``URL``) names, also in the ``file:`` URI form
    (``sqlite:///file:/path/state.db?mode=ro&uri=true``); None for an in-memory DB."""
    db = url.database
    if not db or db == ":memory:":
        return None
    if url.query.get("uri") in ("true", "1") and db.startswith("file:"):
        db = unquote(db[len("file:") :].split("?", 1)[0])
        if db.startswith("//"):  # file://host/path: only the local host is meaningful
            db = "/" + db[2:].split("/", 1)[-1]
    return db


class Settings(BaseSettings):
    """Runtime configuration. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True
    )

    home: Path = Field(Path(".data-vent"), description="a folder (created if absent)")
    db_url: str | None = Field(
        None,
        description="a SQLAlchemy URL like sqlite:////path/state.db or "
        "postgresql+psycopg://user@host/db",
    )
    storage: str | None = Field(
        None, description="a local folder or s3://bucket/prefix (created if absent)"
    )
    config_dir: Path | None = Field(None, description="a folder of harvest config YAMLs")

    ooi_url: str = Field(OOINET_M2M_URL, description="an http(s) URL of the OOI M2M API")
    ooi_username: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OOI_USERNAME", "DATA_VENT_OOI_USERNAME"),
        description="your OOINet API user name",
    )
    ooi_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OOI_TOKEN", "DATA_VENT_OOI_TOKEN"),
        description="your OOINet API token",
    )
    ooi_connect_timeout: float = Field(10.0, **_seconds(gt=0, le=600))
    ooi_read_timeout: float = Field(120.0, **_seconds(gt=0, le=3600))
    ooi_retries: int = _whole(0, 20, default=4)
    ooi_backoff: float = Field(1.0, **_seconds(ge=0, le=600))
    ooi_retry_after_max: float = Field(120.0, **_seconds(ge=0, le=3600))
    """The longest ``Retry-After`` (429/503) honoured before a retry; longer ones are cut."""
    ooi_request_wait: float = Field(30.0, **_seconds(ge=0))
    """Seconds a run waits for an OOI request to become ready before moving on (`waiting`)."""
    ooi_poll_interval: float = Field(2.0, **_seconds(gt=0, le=3600))
    ooi_results_url: str | None = Field(None, description="an http(s) URL of a THREDDS folder")
    """The account's THREDDS folder (``.../thredds/catalog/ooi/<account>/catalog.xml``), where
    finished requests are looked for before a full rebuild asks OOI again; by default the
    parent of the last request folder OOI named."""
    ooi_max_calls: int = _whole(0, 1024, default=8)
    """Cap on concurrent calls to OOI, summed over every worker on the state DB (0: none)."""
    ooi_call_slot_seconds: float = Field(60.0, **_seconds(ge=1))
    """Expiry of a call slot; a live holder renews it, a crashed one frees it after this."""
    observe_concurrency: int = _whole(1, 64, default=8)
    """``metadata/times`` calls a run sends at once (and never more than ``ooi_max_calls``)."""

    s3_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATA_VENT_S3_KEY", "AWS_ACCESS_KEY_ID"),
        description="an S3 access key id",
    )
    s3_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATA_VENT_S3_SECRET", "AWS_SECRET_ACCESS_KEY"),
        description="an S3 secret key",
    )
    s3_endpoint_url: str | None = Field(None, description="an http(s) URL of an S3 API")
    s3_connect_timeout: float = Field(10.0, **_seconds(gt=0, le=600))
    s3_read_timeout: float = Field(30.0, **_seconds(gt=0, le=3600))
    s3_retries: int = _whole(0, 20, default=1)
    """Retries botocore makes after a failed S3 call. s3fs adds its own 5 attempts, so a hung
    endpoint fails one call within about 5 x (retries + 1) x the read timeout (5 min)."""
    db_connect_timeout: float = Field(10.0, **_seconds(gt=0, le=600))
    catalog_anon: bool = Field(True, description="true or false")
    """Readers of the catalogs (intake, STAC) read an S3 storage root anonymously (a public
    bucket); false: they bring their own credentials. Never our keys in a catalog."""

    concurrency: int = _whole(1, 256, default=4)
    """Assets materialized at once by one run (threads, or local Dask worker processes)."""
    task_runner: str = Field("thread", description="thread or dask")
    """Where a run's asset tasks execute: ``thread`` (a pool in the flow's process) or
    ``dask`` (a dask.distributed cluster: ``dask_address``, else a local one)."""
    dask_address: str | None = None
    """Scheduler of an existing Dask cluster, e.g. ``tcp://10.0.0.5:8786``."""
    dask_workers: int | None = _whole(1, 256, default=None)
    """Worker processes of the local Dask cluster (default: ``concurrency``)."""
    fan_out: str = Field("", description="group, a number of assets per child run, or off")
    """The daily harvest's fan-out over child runs of the ``materialize`` deployment (so
    every worker of the pool shares the day): ``group`` (one child per asset group), a
    number of assets per child, or off (empty, the default: one run does it all)."""
    fan_out_deployment: str = "materialize/materialize"
    fan_out_timeout: float = Field(86400.0, **_seconds(gt=0, le=7 * 86400.0))
    """Seconds the parent waits for its children before reporting the rest as failed."""
    db_pool_size: int = _whole(1, 1000, default=10)
    """PostgreSQL connections a process keeps open (each worker process has its own pool)."""
    db_max_overflow: int = _whole(0, 1000, default=20)
    """Extra PostgreSQL connections a process may open under load, closed after use."""
    lease_seconds: float = Field(60.0, **_seconds(ge=1))
    """A writer's lease expires this long after its last renewal: a dead writer's asset is
    free again (and its store repaired by the next run) within about this long."""
    lease_renew_seconds: float = Field(10.0, **_seconds(ge=0.1))
    """How often a live writer renews (heartbeats) its lease; well inside the expiry."""
    lease_wait: float = Field(120.0, **_seconds(ge=0))
    """Seconds a writer waits for another live writer's lease on the same asset; past that,
    a run reports the asset ``locked`` (that run's work) and ``ingest`` exits 1."""
    chunk_target_bytes: int = _whole(1024, 1 << 40, default=100 * 1024 * 1024)
    worker_name: str | None = Field(None, description="a name for this worker")
    """Names this process in ``materialization.worker`` (default: the host name); read from
    the environment by the state layer, declared here so a worker's env is not refused."""

    @field_validator("ooi_url", "s3_endpoint_url", "ooi_results_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        return value

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL") from None
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ValueError(
                f"unknown database dialect {url.drivername!r} (sqlite or postgresql+psycopg)"
            ) from None
        except ImportError as exc:
            raise ValueError(
                f"the database driver of {url.drivername!r} is not installed ({exc.name}); "
                "use sqlite or postgresql+psycopg"
            ) from None
        db = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
        if db is not None:
            folder = Path(db).parent
            if folder.exists() and not folder.is_dir():
                raise ValueError(f"{folder} is a file, not a folder for the SQLite file")
            if not folder.is_dir():
                raise ValueError(
                    f"the folder {folder} of the SQLite file does not exist; create it first"
                )
        return value

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = urlsplit(value).scheme
        if scheme == "s3":
            if not urlsplit(value).netloc:
                raise ValueError("an s3:// URL needs a bucket")
            return value
        if scheme not in ("", "file") and len(scheme) > 1:  # 1 letter: a Windows drive
            raise ValueError(f"{scheme}:// storage is not supported")
        _check_folder(Path(value.removeprefix("file://")))
        return value

    @field_validator("home")
    @classmethod
    def _home(cls, value: Path) -> Path:
        _check_folder(value)
        return value

    def to_env(self) -> dict[str, str]:
        """These settings as DATA_VENT_* variables, for the worker processes a run starts
        itself (a local Dask cluster). Holds the secrets: never log or persist it."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, Path):
                value = value.resolve()
            env[f"DATA_VENT_{name.upper()}"] = str(value)
        return env

    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.home / 'state.db').resolve()}"

    def resolved_storage(self) -> str:
        if self.storage:
            return self.storage.rstrip("/")
        return str((self.home / "stores").resolve())

    def storage_options(self) -> dict:
        """fsspec options for an ``s3://`` storage root (with connect/read timeouts and a
        bounded number of retries, so a hung endpoint fails instead of hanging); empty for a
        local folder."""
        if not self.resolved_storage().startswith("s3://"):
            return {}
        opts: dict = {
            "config_kwargs": {
                "connect_timeout": self.s3_connect_timeout,
                "read_timeout": self.s3_read_timeout,
                "retries": {"max_attempts": self.s3_retries + 1, "mode": "standard"},
            },
        }
        if self.s3_key and self.s3_secret:
            opts["key"] = self.s3_key.get_secret_value()
            opts["secret"] = self.s3_secret.get_secret_value()
        if self.s3_endpoint_url:
            opts["client_kwargs"] = {"endpoint_url": self.s3_endpoint_url}
        return opts


def _check_folder(path: Path) -> None:
    """A folder that exists, or could: refuse a path under (or at) a regular file."""
    probe = path.expanduser()
    while not probe.exists():
        if probe.parent == probe:
            return
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"is under the file {probe}"
        raise ValueError(f"{where}, not a folder")


def env_name(field: str) -> str:
    """The environment variable a user sets for ``field`` (its first alias, if any)."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{ENV_PREFIX}{field.upper()}"


def known_env_names() -> set[str]:
    names: set[str] = set()
    for field, info in Settings.model_fields.items():
        names.add(f"{ENV_PREFIX}{field.upper()}")
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(c) for c in info.validation_alias.choices)
    return names


def check_env(environ: Mapping[str, str]) -> None:
    """Refuse a ``DATA_VENT_*`` variable that is no setting, naming the nearest one."""
    known = known_env_names()
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name in EXTRA_ENV:
            continue
        if name.startswith(f"{ENV_PREFIX}TEST_"):
            continue
        near = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else "see the Settings table in README.md"
        raise SettingsError(f"unknown setting {name}: {hint}")


OPTION_NAMES = {"config_dir": "--config-dir"}
"""Settings that a command-line option can give (named as the option in errors)."""


def describe_error(exc: ValidationError, overrides: Mapping[str, Any] | None = None) -> str:
    """One line for the first invalid setting: its variable, its value (never a secret's)
    and what it must be."""
    err = exc.errors()[0]
    loc = [str(x) for x in err.get("loc", ())]
    field = loc[0] if loc else ""
    if field in ("OOI_USERNAME", "OOI_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        field = next(
            f for f in Settings.model_fields if env_name(f) == field or field in _choices(f)
        )
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if field not in Settings.model_fields:  # a model-level check (OOI_USERNAME w/o TOKEN)
        return f"settings: {msg}"
    info = Settings.model_fields[field]
    name = (
        OPTION_NAMES[field]
        if overrides and field in overrides and field in OPTION_NAMES
        else env_name(field)
    )
    secret = info.annotation is not None and "SecretStr" in str(info.annotation)
    value = "" if secret else f"={_shown(err.get('input'))!r}"
    want = info.description or "a valid value"
    if err.get("type") in ("value_error", "assertion_error"):
        return f"{name}{value}: {msg}" + ("" if "; " in msg else f"; set it to {want}")
    return f"{name}{value} is not valid: set it to {want}"


def _shown(value: Any) -> Any:
    """A value for a message: a URL's password masked."""
    if not isinstance(value, str) or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        if parts.password is None:
            return value
        return value.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        return "<hidden>"


def _choices(field: str) -> tuple[str, ...]:
    alias = Settings.model_fields[field].validation_alias
    return tuple(str(c) for c in alias.choices) if isinstance(alias, AliasChoices) else ()


def get_settings(**overrides: Any) -> Settings:
    """The environment's settings with ``overrides`` on top; a bad value: ``SettingsError``."""
    check_env(os.environ)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise SettingsError(describe_error(exc, given)) from None
    _check_credentials(settings)
    return settings


def _check_credentials(settings: Settings) -> None:
    """OOI credentials come in pairs (or in the URL's ``user:token@``): one alone would
    only earn a 401 from every call."""
    if (settings.ooi_username is None) == (settings.ooi_token is None):
        return
    if urlsplit(settings.ooi_url).username:
        return
    given, missing = (
        ("OOI_USERNAME", "OOI_TOKEN")
        if settings.ooi_username is not None
        else ("OOI_TOKEN", "OOI_USERNAME")
    )
    raise SettingsError(f"{given} is set but {missing} is not: set both")

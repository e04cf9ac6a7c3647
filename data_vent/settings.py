"""One Settings object, read from DATA_VENT_* environment variables (and OOI_* secrets).

Defaults work on a laptop: everything lives under ``./.data-vent``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

OOINET_M2M_URL = "https://ooinet.oceanobservatories.org/api/m2m"


class Settings(BaseSettings):
    """Runtime configuration. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_prefix="DATA_VENT_", extra="ignore")

    home: Path = Path(".data-vent")
    db_url: str | None = None
    storage: str | None = None
    config_dir: Path | None = None

    ooi_url: str = OOINET_M2M_URL
    ooi_username: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OOI_USERNAME", "DATA_VENT_OOI_USERNAME")
    )
    ooi_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OOI_TOKEN", "DATA_VENT_OOI_TOKEN")
    )
    ooi_connect_timeout: float = 10.0
    ooi_read_timeout: float = 120.0
    ooi_retries: int = 4
    ooi_backoff: float = 1.0
    ooi_request_wait: float = 30.0
    """Seconds a run waits for an OOI request to become ready before moving on (`waiting`)."""
    ooi_poll_interval: float = 2.0
    ooi_results_url: str | None = None
    """The account's THREDDS folder (``.../thredds/catalog/ooi/<account>/catalog.xml``), where
    finished requests are looked for before a full rebuild asks OOI again; by default the
    parent of the last request folder OOI named."""
    ooi_max_calls: int = 8
    """Cap on concurrent calls to OOI, summed over every worker on the state DB (0: none)."""
    ooi_call_slot_seconds: float = 60.0
    """Expiry of a call slot; a live holder renews it, a crashed one frees it after this."""
    observe_concurrency: int = 8
    """``metadata/times`` calls a run sends at once (and never more than ``ooi_max_calls``)."""

    s3_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATA_VENT_S3_KEY", "AWS_ACCESS_KEY_ID")
    )
    s3_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATA_VENT_S3_SECRET", "AWS_SECRET_ACCESS_KEY"),
    )
    s3_endpoint_url: str | None = None
    catalog_anon: bool = True
    """Readers of the catalogs (intake, STAC) read an S3 storage root anonymously (a public
    bucket); false: they bring their own credentials. Never our keys in a catalog."""

    concurrency: int = 4
    """Assets materialized at once by one run (threads, or local Dask worker processes)."""
    task_runner: str = "thread"
    """Where a run's asset tasks execute: ``thread`` (a pool in the flow's process) or
    ``dask`` (a dask.distributed cluster: ``dask_address``, else a local one)."""
    dask_address: str | None = None
    """Scheduler of an existing Dask cluster, e.g. ``tcp://10.0.0.5:8786``."""
    dask_workers: int | None = None
    """Worker processes of the local Dask cluster (default: ``concurrency``)."""
    fan_out: str = ""
    """The daily harvest's fan-out over child runs of the ``materialize`` deployment (so
    every worker of the pool shares the day): ``group`` (one child per asset group), a
    number of assets per child, or off (empty, the default: one run does it all)."""
    fan_out_deployment: str = "materialize/materialize"
    fan_out_timeout: float = 86400.0
    """Seconds the parent waits for its children before reporting the rest as failed."""
    lease_seconds: float = 600.0
    db_pool_size: int = 10
    """PostgreSQL connections a process keeps open (each worker process has its own pool)."""
    db_max_overflow: int = 20
    """Extra PostgreSQL connections a process may open under load, closed after use."""
    chunk_target_bytes: int = 100 * 1024 * 1024

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
        """fsspec options for an ``s3://`` storage root; empty for a local folder."""
        if not self.resolved_storage().startswith("s3://"):
            return {}
        opts: dict = {}
        if self.s3_key and self.s3_secret:
            opts["key"] = self.s3_key.get_secret_value()
            opts["secret"] = self.s3_secret.get_secret_value()
        if self.s3_endpoint_url:
            opts["client_kwargs"] = {"endpoint_url": self.s3_endpoint_url}
        return opts


def get_settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})

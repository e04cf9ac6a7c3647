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
    observe_concurrency: int = 4

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
    """Assets materialized at once inside one generation."""
    lease_seconds: float = 60.0
    """A writer's lease expires this long after its last renewal: a dead writer's asset is
    free again (and its store repaired by the next run) within about this long."""
    lease_renew_seconds: float = 10.0
    """How often a live writer renews (heartbeats) its lease; well inside the expiry."""
    lease_wait: float = 120.0
    """Seconds a writer waits for another live writer's lease on the same asset; past that,
    a run reports the asset ``locked`` (that run's work) and ``ingest`` exits 1."""
    chunk_target_bytes: int = 100 * 1024 * 1024

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

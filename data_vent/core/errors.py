"""Errors a user can act on. Each carries a one-line message and an exit code.

The OOI errors live here too, so that every layer (runner, CLI) can name them without
importing the OOI client; their ``str()`` never holds credentials.
"""

from __future__ import annotations


class DataVentError(Exception):
    """Base: ``str(err)`` is a single line that names the thing and what to do."""

    exit_code = 1


class BadInput(DataVentError):
    """Bad config, selection, key, URL or file given by the user: exit 2."""

    exit_code = 2


class ConfigError(BadInput):
    pass


class NoStateDB(BadInput):
    """The state DB does not exist yet, or holds no data-vent schema."""


class ServiceUnavailable(DataVentError):
    """A service (state DB, S3, OOI) cannot be reached or timed out: exit 1, try later."""


class StateDBUnavailable(ServiceUnavailable):
    """The state database does not answer."""


class StorageUnavailable(ServiceUnavailable):
    """The storage root (S3) does not answer."""


class SelectionError(BadInput):
    """A selection that does not parse or names an unknown asset."""

    def __init__(self, message: str, text: str = "", position: int | None = None):
        self.text = text
        self.position = position
        if position is not None and text:
            message = (
                f"{message} at position {position}: {text[:position]}⟨here⟩{text[position:]}"
            )
        super().__init__(message)


class GraphError(BadInput):
    """A cycle or unknown dependency in the asset definitions."""


class KeyError_(BadInput):
    """An invalid asset key."""


class LeaseHeld(DataVentError):
    """Another live writer holds the asset's lease (and kept it past the bounded wait)."""

    def __init__(self, message: str, lease: object = None):
        super().__init__(message)
        self.lease = lease


class LeaseLost(DataVentError):
    """This writer's lease expired and another writer took it: it must not write on."""


# ---- OOI -------------------------------------------------------------------------------


class OOIError(DataVentError):
    """Base of every OOI error: the one-line message, and for a program the URL asked
    (credentials stripped), the HTTP status and OOI's own words, when there were any."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        ooi_message: str | None = None,
    ):
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.ooi_message = ooi_message


class OOIUnavailable(OOIError, ServiceUnavailable):
    """OOINet cannot be reached, timed out, answered 5xx or a maintenance page: try later."""


class OOIRequestFailed(OOIError):
    """OOINet refused the request (4xx) or an async request ended in failure."""


class OOIAuthError(OOIRequestFailed):
    """401/403: the credentials are missing or wrong."""

    exit_code = 2


class OOINotFound(OOIError):
    """The stream/instrument is not (or no longer) in the OOI database: discontinued."""


class OOINoData(OOIError):
    """OOI has no data for the primary stream in the requested range (404 "no results")."""


class OOIDownloadError(OOIError):
    """A THREDDS file download was incomplete or did not match the catalog size."""


class OOIParseError(OOIError):
    """An OOI answer did not have the expected shape."""

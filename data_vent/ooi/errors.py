"""Errors of the OOI side; each ``str()`` is one line, never holding credentials."""

from __future__ import annotations

from data_vent.errors import DataVentError


class OOIError(DataVentError):
    """Base of every OOI error."""


class OOIUnavailable(OOIError):
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

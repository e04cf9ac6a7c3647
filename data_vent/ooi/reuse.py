"""Reuse a finished OOI request instead of asking again for a stream's whole history.

A full-history request takes OOI hours to days. Its results stay in the account's THREDDS
folder (``.../thredds/catalog/ooi/<account>/``) for weeks, one sub-folder per request named
``<created>-<table>``, with ``status.txt`` beside the results once complete. Before a full
build or rebuild asks OOI, the harvest looks there for the newest finished request of the
same stream whose data files cover the range, and harvests those files (the predecessor did
the same; it saved days of OOI work per refresh).

The account folder is ``DATA_VENT_OOI_RESULTS_URL`` when set, else the parent of the last
request folder OOI named in an answer (recorded in the state DB).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from data_vent.core.errors import OOIError
from data_vent.ooi.client import OOIClient
from data_vent.ooi.thredds import Listing, ThreddsFolder, catalog_xml_url

log = logging.getLogger(__name__)

_FOLDER_TIME = re.compile(r"^(\d{8}T\d{6})(\d*)Z?-")
_REQUEST_FOLDER = re.compile(r"^(?P<account>.*/thredds/catalog/ooi/[^/]+)/[^/]+/catalog\.\w+$")
MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class FinishedRequest:
    """A complete request folder of the account whose files cover the wanted range."""

    folder: str
    catalog_url: str
    status_url: str
    listing: Listing
    created: datetime | None

    def details(self) -> dict[str, str | None]:
        return {
            "folder": self.folder,
            "catalog": self.catalog_url,
            "created": self.created.isoformat() if self.created else None,
        }


def account_url(output_url: str | None) -> str | None:
    """``.../thredds/catalog/ooi/<account>/<folder>/catalog.html`` -> the account's
    ``catalog.xml``; None for a URL of another shape."""
    if not output_url:
        return None
    parts = urlsplit(output_url)
    m = _REQUEST_FOLDER.match(parts.path)
    if m is None:
        return None
    return urlunsplit((parts.scheme, parts.netloc, m["account"] + "/catalog.xml", "", ""))


def status_url(folder_catalog_url: str) -> str:
    """Where OOI writes ``status.txt`` for a request folder (``async_results``)."""
    base = catalog_xml_url(folder_catalog_url).rsplit("/", 1)[0]
    return base.replace("/thredds/catalog/ooi/", "/async_results/", 1) + "/status.txt"


def folder_created(name: str) -> datetime | None:
    """``20210301T000522896Z-<table>`` -> when OOI created the request (UTC)."""
    m = _FOLDER_TIME.match(name)
    if m is None:
        return None
    created = datetime.strptime(m[1], "%Y%m%dT%H%M%S")
    return created + timedelta(milliseconds=int(m[2][:3] or 0))


def find_finished(
    client: OOIClient, account: str, table: str, begin: datetime, end: datetime
) -> FinishedRequest | None:
    """The newest complete request folder of ``table`` whose data files cover
    [begin, end] (to OOI's millisecond); None when there is none or THREDDS cannot tell."""
    try:
        folders = client.folders(account)
    except OOIError as exc:
        log.info("no reusable request for %s: account folder unreadable (%s)", table, exc)
        return None
    mine = [f for f in folders if f.name.endswith(f"-{table}")]
    mine.sort(key=lambda f: (folder_created(f.name) or datetime.min, f.name), reverse=True)
    for folder in mine:
        found = _check(client, folder, table, begin, end)
        if found is not None:
            return found
    return None


def _check(
    client: OOIClient, folder: ThreddsFolder, table: str, begin: datetime, end: datetime
) -> FinishedRequest | None:
    status = status_url(folder.catalog_url)
    try:
        if client.request_status(status).state != "ready":
            return None
        listing = client.listing(folder.catalog_url, table)
    except OOIError as exc:
        log.info("request folder %s not reusable: %s", folder.name, exc)
        return None
    starts = [f.start for f in listing.data if f.start is not None]
    ends = [f.end for f in listing.data if f.end is not None]
    if not listing.data or len(starts) < len(listing.data) or len(ends) < len(listing.data):
        return None
    if min(starts) > begin + MS or max(ends) + MS < end:
        return None
    return FinishedRequest(
        folder.name, folder.catalog_url, status, listing, folder_created(folder.name)
    )

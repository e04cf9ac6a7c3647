"""Time conventions: every datetime in data-vent is *naive UTC*.

OOI reports UTC, stores keep seconds since 1900-01-01 UTC, and SQLite has no time zones:
one convention everywhere avoids silent offsets.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

NTP_EPOCH = datetime(1900, 1, 1)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_ooi_time(text: str) -> datetime:
    """Parse OOI's ``2015-08-25T00:36:10.708Z`` (and variants) to naive UTC."""
    return to_naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def format_ooi_time(value: datetime) -> str:
    """OOI request format ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return to_naive_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_ntp_seconds(value: datetime) -> float:
    return (to_naive_utc(value) - NTP_EPOCH) / timedelta(seconds=1)


def from_ntp_seconds(seconds: float) -> datetime:
    return NTP_EPOCH + timedelta(seconds=float(seconds))


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """``'6h'``, ``'1d'``, ``'30m'``, ``'45s'``, ``'2w'`` or seconds -> timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    s = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if s and s[-1] in units:
        return timedelta(seconds=float(s[:-1]) * units[s[-1]])
    return timedelta(seconds=float(s))


def fmt_lag(lag: timedelta | None) -> str:
    """A lag for people: ``2d 3h``, ``5h 10m``, ``12m`` (``-`` when unknown)."""
    if lag is None:
        return "-"
    secs = int(lag.total_seconds())
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"

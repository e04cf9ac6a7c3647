"""Any exception that reaches the command line -> (exit code, one line), never a traceback.

Our own errors carry their code (2 bad input, 1 a failure); raw ones from the libraries
underneath are named by the service they come from: the state DB (SQLAlchemy), S3 (botocore,
aiohttp), a local folder (OSError), Prefect's API. An unreachable service is exit 1; a
refusal the operator must fix (no such database or bucket, access denied) is exit 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from data_vent.core.errors import BadInput, DataVentError, ServiceUnavailable
from data_vent.settings import Settings, SettingsError

DEBUG_HINT = " (set DATA_VENT_DEBUG=1 for the traceback)"


def flat(text: str) -> str:
    """One line, whatever the message held."""
    return " ".join(str(text).split())


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _type_names(exc: BaseException) -> set[str]:
    return {t.__name__ for t in type(exc).__mro__}


S3_UNREACHABLE = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
}
S3_REFUSED = {"NoCredentialsError", "PartialCredentialsError"}
S3_REFUSAL_CODES = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "403",
    "404",
}


def classify(exc: BaseException, settings: Callable[[], Settings | None]) -> DataVentError:
    """The ``DataVentError`` to show for ``exc`` (``settings`` gives URLs to name)."""
    if isinstance(exc, DataVentError):
        return exc
    if isinstance(exc, SettingsError):
        return BadInput(str(exc))
    for cause in _chain(exc):
        names = _type_names(cause)
        if "DBAPIError" in names:  # SQLAlchemy, any driver
            from data_vent.state.db import db_error

            s = settings()
            return db_error(s.resolved_db_url() if s else "sqlite://", cause)
        s3 = _storage(settings).startswith("s3://")
        if names & S3_UNREACHABLE or (s3 and isinstance(cause, asyncio.TimeoutError)):
            return ServiceUnavailable(
                f"storage {_storage(settings)} does not answer ({type(cause).__name__}: "
                f"{flat(str(cause))[:160]}); check DATA_VENT_S3_ENDPOINT_URL and the "
                "network, or try again later"
            )
        if names & S3_REFUSED:
            return BadInput(
                f"storage {_storage(settings)}: no S3 credentials; set DATA_VENT_S3_KEY "
                "and DATA_VENT_S3_SECRET"
            )
        if "ClientError" in names and hasattr(cause, "response"):
            code = str(cause.response.get("Error", {}).get("Code", ""))  # type: ignore[attr-defined]
            if code in S3_REFUSAL_CODES:
                return BadInput(
                    f"storage {_storage(settings)} refused the request ({code}); check the "
                    "bucket in DATA_VENT_STORAGE and the S3 credentials"
                )
        if isinstance(cause, PermissionError | IsADirectoryError | NotADirectoryError):
            where = getattr(cause, "filename", None) or "a path"
            return BadInput(
                f"{where}: {cause.strerror or type(cause).__name__}; check DATA_VENT_HOME "
                "and DATA_VENT_STORAGE (a folder data-vent can write)"
            )
        text = flat(str(cause))
        if isinstance(cause, TimeoutError):
            return ServiceUnavailable(f"timed out: {text[:200] or type(cause).__name__}")
        if "ephemeral Prefect API server" in text or "PREFECT_API_URL" in text:
            return ServiceUnavailable(
                f"Prefect's API did not answer ({text[:160]}); set PREFECT_API_URL to a "
                "running server, or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
            )
    head = flat(str(exc))
    return DataVentError(
        f"{type(exc).__name__}: {head[:300]}{DEBUG_HINT}" if head else type(exc).__name__
    )


def _storage(settings: Callable[[], Settings | None]) -> str:
    s = settings()
    return s.resolved_storage() if s else "(storage)"

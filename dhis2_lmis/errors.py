"""The exception hierarchy: one root, leaves that say what the caller does next.

::

    Dhis2Error
    ├── Dhis2DisabledError       "Use DHIS2" is off: nothing was sent
    ├── ConfigError (ValueError) fix the configuration; carries every problem found
    ├── Dhis2ConnectionError     network trouble after retries: try again later
    │   └── Dhis2TimeoutError    the server did not answer in time
    ├── AuthenticationError      credentials refused, or a login page instead of JSON
    ├── PermissionDeniedError    authenticated, but the user lacks an authority or sharing
    ├── NotFoundError            the object or endpoint does not exist on this server
    ├── RequestRejectedError     400/409/422 the server explained: fix the request or data
    ├── ServerError              5xx after retries: the server or its proxy is unwell
    ├── ResponseFormatError      the body is not the JSON DHIS2 should send
    ├── ImportFailedError        an import was aborted; carries the normalised summary
    └── UnknownReferenceError    an item, store or org unit has no counterpart

Every error keeps ``method``, ``path`` (query string removed, so no value from it can leak),
``status`` and the DHIS2 ``message`` when there was a response. No error text ever contains a
password, token or client secret: messages are built from these fields only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # pragma: no cover - import for type checkers only
    from dhis2_lmis.imports import ImportSummary

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConfigProblem",
    "Dhis2ConnectionError",
    "Dhis2DisabledError",
    "Dhis2Error",
    "Dhis2TimeoutError",
    "ImportFailedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RequestRejectedError",
    "ResponseFormatError",
    "ServerError",
    "UnknownReferenceError",
    "redact_path",
]


def redact_path(url_or_path: str) -> str:
    """Return the path of a URL without scheme, host, credentials or query string.

    Query strings may carry filter values or, on badly configured proxies, tokens; the path is
    what a reader needs to find the failing call.
    """
    path = url_or_path.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path


class Dhis2Error(Exception):
    """Base of every error this library raises.

    Args:
        message: what went wrong and what to do next.
        method: HTTP method of the failing request, when there was one.
        path: request path; any query string is dropped.
        status: HTTP status code, when a response arrived.
        dhis2_message: the ``message`` of DHIS2's WebMessage, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        dhis2_message: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.path = redact_path(path) if path else None
        self.status = status
        self.dhis2_message = dhis2_message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.method and self.path:
            where = f"{self.method} {self.path}"
            if self.status is not None:
                where += f" -> {self.status}"
            where += ": "
        text = where + self.message
        if self.dhis2_message and self.dhis2_message not in self.message:
            text += f" (DHIS2 says: {self.dhis2_message})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class Dhis2DisabledError(Dhis2Error):
    """The integration is switched off (``enabled = false``); no request was sent."""

    def __init__(self, message: str = "DHIS2 integration is disabled (enabled = false)") -> None:
        super().__init__(message)


@attrs.frozen
class ConfigProblem:
    """One configuration problem: the key, the offending value (secrets masked) and why."""

    key: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key} = {self.value}: {self.reason}"


class ConfigError(Dhis2Error, ValueError):
    """The configuration is invalid. ``problems`` lists every problem, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem(key="", value="", reason=problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        lines = [str(p) if p.key else p.reason for p in self.problems]
        if len(lines) == 1:
            text = f"invalid configuration: {lines[0]}"
        else:
            text = "invalid configuration:\n  " + "\n  ".join(lines)
        super().__init__(text)


class Dhis2ConnectionError(Dhis2Error):
    """The server could not be reached (DNS, refused, reset) even after retries."""


class Dhis2TimeoutError(Dhis2ConnectionError):
    """The server accepted the connection but did not answer within the read timeout."""


class AuthenticationError(Dhis2Error):
    """DHIS2 refused the credentials, or answered with a login page instead of JSON.

    Never retried automatically: DHIS2 locks an account after four failed logins.
    """


class PermissionDeniedError(Dhis2Error):
    """HTTP 403: the user is known but lacks the authority or sharing for this call."""


class NotFoundError(Dhis2Error):
    """HTTP 404: the object or endpoint does not exist (check UIDs and the server version)."""


class RequestRejectedError(Dhis2Error):
    """HTTP 400, 409 or 422 that carried no import summary: the request or its data is wrong."""


class ServerError(Dhis2Error):
    """HTTP 5xx that persisted after retries."""


class ResponseFormatError(Dhis2Error):
    """The response body is not the JSON DHIS2 should send (malformed, truncated, wrong shape)."""


class ImportFailedError(Dhis2Error):
    """An import was aborted by DHIS2 (status ERROR); ``summary`` holds the normalised result."""

    def __init__(
        self,
        message: str,
        *,
        summary: ImportSummary,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        self.summary = summary
        super().__init__(message, method=method, path=path, status=status)


class UnknownReferenceError(Dhis2Error):
    """An mSupply item, store or customer has no DHIS2 counterpart, or the reverse."""

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
    ├── UnsupportedVersionError  the server is older than the oldest supported DHIS2
    ├── ImportFailedError        an import was aborted; carries the summary (in dhis2.imports)
    ├── UnknownReferenceError    an item, store or org unit has no counterpart
    ├── PeriodError (ValueError) a period id, type or format DHIS2 does not know
    ├── InvalidValueError (ValueError)  a data value that cannot be sent as given
    │   └── DuplicateValueError  the same data value key added twice
    ├── PreflightError (ValueError)     a push would lose values (in lmis.checks)
    ├── StateError               the sync's state file cannot be used (left untouched)
    ├── StateLockedError         another sync runner holds the state file
    └── MissingExtraError (ImportError) an optional extra (pandas) is not installed

Every error keeps ``method``, ``path`` (query string removed, so no value from it can leak),
``status`` and the DHIS2 ``message`` when there was a response. No error text ever contains a
password, token or client secret: messages are built from these fields only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:  # pragma: no cover - import for type checkers only
    pass

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ConfigProblem",
    "Dhis2ConnectionError",
    "Dhis2DisabledError",
    "Dhis2Error",
    "Dhis2TimeoutError",
    "DuplicateValueError",
    "InvalidValueError",
    "MissingExtraError",
    "NotFoundError",
    "PackingListError",
    "PeriodError",
    "PermissionDeniedError",
    "RequestRejectedError",
    "ResponseFormatError",
    "ServerError",
    "StateError",
    "StateLockedError",
    "UnknownReferenceError",
    "UnsupportedVersionError",
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


# Values a ConfigProblem shows that say nothing the reason does not: unset, masked, none.
_UNINFORMATIVE_VALUES = frozenset({"", "<unset>", "***"})


@attrs.frozen
class ConfigProblem:
    """One configuration problem: the key, the offending value (secrets masked) and why.

    ``str()`` puts the key first and the value last (``dhis2.url: must be an http:// or
    https:// address (got "ftp://x")``), so a list of problems reads down its keys.
    """

    key: str
    value: str
    reason: str

    def __str__(self) -> str:
        got = "" if self.value in _UNINFORMATIVE_VALUES else f" (got {self.value})"
        return f"{self.key}: {self.reason}{got}" if self.key else self.reason + got


class ConfigError(Dhis2Error, ValueError):
    """The configuration is invalid. ``problems`` lists every problem, not just the first.

    ``str()`` gives one problem per line, each starting with its key, because the reasons
    themselves may contain ``;`` or ``,`` and a joined line of several is unreadable.
    """

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem(key="", value="", reason=problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        lines = [str(p) for p in self.problems]
        if len(lines) == 1:
            text = f"invalid configuration: {lines[0]}"
        else:
            text = "invalid configuration:\n  " + "\n  ".join(lines)
        super().__init__(text)


class Dhis2ConnectionError(Dhis2Error):
    """The server could not be reached (DNS, refused, reset, TLS) even after retries.

    Attributes:
        address: ``host:port`` the session tried to reach, when known.
        cause: what failed, in words: ``connection refused``, ``host name not resolved``,
            ``timed out``, ``TLS handshake failed``, ...
    """

    def __init__(
        self,
        message: str,
        *,
        address: str | None = None,
        cause: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.address = address
        self.cause = cause
        super().__init__(message, method=method, path=path)


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


class UnsupportedVersionError(Dhis2Error):
    """The server runs a DHIS2 older than the oldest this library supports (2.36).

    Nothing was read or written: the names older versions use are not known here, and guessing
    them could read the wrong events. Upgrade DHIS2, or use a release of this library that
    supports it.
    """


class UnknownReferenceError(Dhis2Error):
    """An mSupply item, store or customer has no DHIS2 counterpart, or the reverse."""


class PeriodError(Dhis2Error, ValueError):
    """A period id, period type or date format is not one DHIS2 understands.

    Raised before anything is sent, so the fix is in the caller's configuration or data.
    ``value`` holds the offending string.
    """

    def __init__(self, message: str, *, value: str) -> None:
        self.value = value
        super().__init__(message)


class InvalidValueError(Dhis2Error, ValueError):
    """A data value cannot be sent as given (not a finite number, or missing its org unit).

    Raised while building, before anything is sent: fix the source data.
    ``data_element`` and ``value`` (its ``repr``) say which.
    """

    def __init__(self, message: str, *, data_element: str, value: str) -> None:
        self.data_element = data_element
        self.value = value
        super().__init__(message)


class DuplicateValueError(InvalidValueError):
    """The same (data element, category and attribute option combos, org unit, period) was
    added twice.

    DHIS2 would silently keep only the last one; ``key`` names the repeated combination.
    """

    def __init__(
        self, message: str, *, key: tuple[str, str | None, str | None, str, str], value: str
    ) -> None:
        self.key = key
        super().__init__(message, data_element=key[0], value=value)


class PackingListError(Dhis2Error, ValueError):
    """A packing list cannot be read, or a received consignment is not on it.

    A sync handler raises it for a receipt whose consignment is missing: the receipt is then
    failed and retried next run (once the packing list has the consignment), never dropped.
    """


class StateError(Dhis2Error):
    """The state file cannot be used: not a dhis2-lmis database, unreadable, or not writable.

    The file is left exactly as it was. Fix the permission, restore it from a backup, or point
    ``[sync] state`` at a new path (a new file starts from scratch: every event is fetched again
    and handed over again unless its handler recognises it).

    Attributes:
        state_path: the file concerned.
    """

    def __init__(self, message: str, *, state_path: str | os.PathLike[str]) -> None:
        self.state_path = str(state_path)
        super().__init__(message)


class StateLockedError(Dhis2Error):
    """Another runner holds the lock: only one sync may work on a state file at a time.

    Wait for the other run to finish, or stop that process. The lock is an OS file lock, so it
    disappears with the process that held it: there is never a stale lock to delete by hand.

    Attributes:
        lock_path: the lock file.
        holder_pid: process id written by the holder, when readable.
        holder_owner: the holder's ``owner`` label, when readable.
    """

    def __init__(
        self,
        message: str,
        *,
        lock_path: str,
        holder_pid: int | None = None,
        holder_owner: str | None = None,
    ) -> None:
        self.lock_path = lock_path
        self.holder_pid = holder_pid
        self.holder_owner = holder_owner
        super().__init__(message)


class MissingExtraError(Dhis2Error, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` line.

    It is an :class:`ImportError` too, so code that already guards optional imports with
    ``except ImportError`` keeps working.
    """

    def __init__(self, module: str, feature: str, extra: str = "notebook") -> None:
        super().__init__(
            f"{feature} needs {module}, which is not installed: pip install 'dhis2-lmis[{extra}]'"
        )
        self.name = module

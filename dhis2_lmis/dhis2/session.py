"""Dhis2Session: the one place every request to DHIS2 passes through.

``_send`` joins the base URL, sets the headers DHIS2 needs to answer an API client as an API
client (``X-Requested-With``, or it redirects to an HTML login page: WEB_API.md §2.5), never
follows redirects, always passes a ``(connect, read)`` timeout, applies the :class:`RetryPolicy`,
logs one line per attempt, and maps every failure to a :class:`~dhis2_lmis.errors.Dhis2Error`.
Everything else (``get_json``, ``post_json``, ``iter_pages``) is a thin wrapper.

Sharing one session across threads is supported (the parallel event reads do it):
``requests.Session`` pools connections per host (size the pool with ``pool_maxsize`` or
:meth:`Dhis2Session.reserve_connections`), the system info is fetched once under a lock, and
the auth schemes lock their own state, so threads whose credentials expired together renew
them once.
"""

from __future__ import annotations

import errno
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import tzinfo
from typing import Generic, TypeAlias, TypeVar, Union
from urllib.parse import urlencode, urlsplit

import attrs
import requests
from dateutil import tz
from requests.adapters import HTTPAdapter

from dhis2_lmis._version import __version__
from dhis2_lmis.dhis2 import _json
from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2.auth import Dhis2Auth
from dhis2_lmis.dhis2.retry import FailureKind, RetryPolicy, parse_retry_after
from dhis2_lmis.dhis2.versions import (
    NEWEST_KNOWN_TEXT,
    Dialect,
    ServerVersion,
    dialect_for,
    newer_than_known,
)
from dhis2_lmis.errors import (
    AuthenticationError,
    Dhis2ConnectionError,
    Dhis2DisabledError,
    Dhis2Error,
    Dhis2TimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    ResponseFormatError,
    ServerError,
    redact_path,
)

__all__ = [
    "MAX_URL_LENGTH",
    "Dhis2Session",
    "JsonResponse",
    "Page",
    "PageLoop",
    "ParamValue",
    "Params",
    "is_last_page",
    "paging_params",
]

MAX_URL_LENGTH = 6 * 1024
"""Longest request URL (base URL, path and encoded query) a batched look-up may send.

Tomcat and the usual reverse proxies in front of DHIS2 reject request lines of 8 KB and more
with 400 or 414; 6 KB leaves room for the other headers within the same buffer.
"""

log = logging.getLogger(__name__)
# One DEBUG line per HTTP attempt (method, path, status, ms, bytes); never a credential.
http_log = logging.getLogger("dhis2_lmis.http")

_Scalar: TypeAlias = Union[str, int, float, bool]  # noqa: UP007 - a runtime alias on 3.10
ParamValue: TypeAlias = Union[_Scalar, Sequence[_Scalar], None]  # noqa: UP007
Params = Mapping[str, ParamValue]
_T = TypeVar("_T")
_Item = TypeVar("_Item")


@attrs.frozen
class JsonResponse:
    """A decoded answer: the HTTP status, the JSON body (None when empty) and the headers."""

    status: int
    body: JsonValue
    headers: Mapping[str, str] = attrs.field(repr=False)


@attrs.frozen
class Page(Generic[_Item]):
    """One page of a paged list.

    Attributes:
        number: the page's number (1-based).
        items: what the page holds (never empty).
        body: the decoded body, or for a typed decoder the paging keys it kept.
        last: the server says no page follows (:func:`is_last_page`).
    """

    number: int
    items: list[_Item]
    body: JsonObject = attrs.field(repr=False)
    last: bool


def _encode_params(params: Params | None) -> list[tuple[str, str]]:
    """Query pairs with bools as DHIS2 wants them (``async=false``, never ``async=False``)."""

    def text(value: _Scalar) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, (str, int, float, bool)):
            pairs.append((key, text(value)))
        else:
            pairs.extend((key, text(v)) for v in value)
    return pairs


class Dhis2Session:
    """A connection to one DHIS2 server.

    Args:
        url: the DHIS2 base URL, with any context path (``https://host/dhis``); a trailing
            ``/api`` is accepted and removed.
        auth: a scheme from :mod:`dhis2_lmis.dhis2.auth`, or None for anonymous calls.
        timeout: read timeout in seconds.
        connect_timeout: connect timeout in seconds; short, because a dead host should fail fast.
        retry: which failures to retry and how long to wait.
        verify: TLS verification: True, False or a CA bundle path.
        http: a ``requests.Session`` to use (proxies, client certificates); owned afterwards.
        enabled: False turns every call into :class:`Dhis2DisabledError` ("Use DHIS2" off).
        pool_maxsize: connections kept per host; size it to the number of sharing threads.
        legacy_events: read events and write STR events through the legacy ``/api/events``
            (``tracker_api = "legacy"``; DHIS2 2.36-2.41) instead of ``/api/tracker``.
        sleep, clock, rng: injectable for tests, so retries never really sleep there.
    """

    def __init__(
        self,
        url: str,
        auth: Dhis2Auth | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        verify: bool | str = True,
        http: requests.Session | None = None,
        enabled: bool = True,
        pool_maxsize: int = 10,
        legacy_events: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.url = _normalise_base_url(url)
        self._address = _host_port(self.url)
        self.auth = auth
        self.timeout = (connect_timeout, timeout)
        self.retry = retry or RetryPolicy()
        self.enabled = enabled
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._http = http or requests.Session()
        self._http.verify = verify
        self._http.trust_env = http is not None and http.trust_env
        self._pool_lock = threading.Lock()
        self._pool_maxsize = 0
        self.reserve_connections(pool_maxsize)
        self._http.headers.update(
            {
                "Accept": "application/json",
                "X-Requested-With": "XMLHttpRequest",
                "User-Agent": f"dhis2-lmis/{__version__} {requests.utils.default_user_agent()}",
            }
        )
        if auth is not None:
            auth.bind(self._http, self.url, self.timeout)
        self.legacy_events = legacy_events
        self._info: JsonObject | None = None
        self._dialect: Dialect | None = None
        self._info_lock = threading.Lock()

    def __repr__(self) -> str:
        mode = self.auth.mode if self.auth else "anonymous"
        return f"Dhis2Session(url={self.url!r}, auth={mode!r})"

    def __enter__(self) -> Dhis2Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def reserve_connections(self, count: int) -> None:
        """Pool at least ``count`` connections per host, for ``count`` threads sharing this
        session (a pool smaller than its threads opens and drops a connection per request).

        Only grows the pool; connections of the replaced pool close once their request ends.
        """
        with self._pool_lock:
            if count <= self._pool_maxsize:
                return
            replaced = self._http.adapters.get("https://")
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=count, max_retries=0)
            self._http.mount("http://", adapter)
            self._http.mount("https://", adapter)
            self._pool_maxsize = count
            if replaced is not None:
                replaced.close()

    # -- server facts --------------------------------------------------------------------------

    @property
    def server_info(self) -> JsonObject:
        """``/api/system/info``, fetched once and cached."""
        with self._info_lock:
            if self._info is None:
                body = self.get_json("system/info")
                if not isinstance(body, dict) or not isinstance(body.get("version"), str):
                    raise ResponseFormatError(
                        "system info has no version", method="GET", path="/api/system/info"
                    )
                self._info = body
            return self._info

    @property
    def version(self) -> ServerVersion:
        """The server's version, parsed from the cached system info."""
        return ServerVersion.parse(str(self.server_info["version"]))

    @property
    def dialect(self) -> Dialect:
        """How this server wants requests phrased: resolved once, from the cached system info.

        Raises:
            UnsupportedVersionError: the server is older than DHIS2 2.36.
            ConfigError: ``legacy_events`` on DHIS2 2.42+, where ``/api/events`` is gone.
        """
        if self._dialect is not None:  # every request asks: no lock once it is known
            return self._dialect
        version = self.version
        with self._info_lock:
            if self._dialect is None:
                self._dialect = dialect_for(version, legacy_events=self.legacy_events)
                if newer_than_known(version):
                    log.warning(
                        "DHIS2 %s is newer than any version this library knows; speaking to it "
                        "as to the newest known one (%s)",
                        version,
                        NEWEST_KNOWN_TEXT,
                    )
            return self._dialect

    @property
    def time_zone(self) -> tzinfo | None:
        """The server's time zone (``serverTimeZoneId``); DHIS2 timestamps carry no offset."""
        name = self.server_info.get("serverTimeZoneId")
        return tz.gettz(name) if isinstance(name, str) and name else None

    # -- requests ------------------------------------------------------------------------------

    def get_json(self, path: str, params: Params | None = None) -> JsonValue:
        """GET a JSON document (retried on transient failures)."""
        return self.request("GET", path, params=params).body

    def get_decoded(
        self, path: str, params: Params | None, decode: Callable[[bytes], _T]
    ) -> _T | None:
        """GET a JSON document and decode it with ``decode`` instead of into plain values.

        For hot paths: a typed decoder (event pages, :mod:`dhis2_lmis.dhis2.convert`) reads the body
        straight into the structures it needs. None for an empty body; a ``ValueError`` of
        ``decode`` becomes a :class:`ResponseFormatError`, as for any unreadable body.
        """
        return self._decode(self._call("GET", path, params=params), decode)

    def post_json(
        self,
        path: str,
        payload: JsonValue | bytes,
        *,
        params: Params | None = None,
        idempotent: bool = False,
        accept_status: Collection[int] = (),
    ) -> JsonResponse:
        """POST a JSON body.

        Args:
            payload: the body as plain values, or already encoded as JSON bytes (a data value
                push encodes each chunk straight from its compact rows).
            idempotent: True only when repeating the call cannot double anything (data value
                upserts; tracker imports with client-made UIDs under CREATE_AND_UPDATE). Only
                then are read timeouts and 5xx retried.
            accept_status: non-2xx statuses whose body is a result, not an error (409 import
                summaries).
        """
        return self.request(
            "POST",
            path,
            params=params,
            data=payload if isinstance(payload, bytes) else _json.dumps(payload),
            content_type="application/json",
            idempotent=idempotent,
            accept_status=accept_status,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        idempotent: bool | None = None,
        accept_status: Collection[int] = (),
    ) -> JsonResponse:
        """Send one logical request (with retries) and decode its JSON answer.

        Raises:
            Dhis2DisabledError, AuthenticationError, PermissionDeniedError, NotFoundError,
            RequestRejectedError, ServerError, Dhis2ConnectionError, Dhis2TimeoutError,
            ResponseFormatError.
        """
        response = self._call(
            method,
            path,
            params=params,
            data=data,
            content_type=content_type,
            idempotent=idempotent,
            accept_status=accept_status,
        )
        return JsonResponse(
            response.status_code, self._decode(response, _json.loads), response.headers
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        idempotent: bool | None = None,
        accept_status: Collection[int] = (),
    ) -> requests.Response:
        if not self.enabled:
            raise Dhis2DisabledError()
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        return self._send(
            method.upper(),
            path,
            params=_encode_params(params),
            data=data,
            content_type=content_type,
            idempotent=idempotent,
            accept_status=accept_status,
        )

    def iter_pages(
        self,
        path: str,
        params: Params | None = None,
        *,
        items_key: str,
        page_size: int = 50,
        start_page: int = 1,
        link_paging: bool = False,
    ) -> Iterator[Page[JsonValue]]:
        """Yield pages of a paged list until the server's last page.

        Reads every DHIS2 envelope: metadata ``pager`` + collection key, the tracker list key
        with flat paging (2.36-2.40), ``events`` with a ``pager`` (2.41), ``pager.nextPage``
        (2.42+, say ``link_paging=True``), and the legacy ``/api/events`` ``isLastPage``.
        Never asks for totals (an extra count query on the server). The paging itself is the
        one :class:`PageLoop`; this adds the GET and the envelope check.

        Raises:
            ResponseFormatError: a page lacks ``items_key`` or repeats the previous page.
        """
        base = dict(params or {})
        api_path = self._api_path(path)

        def fetch(number: int) -> tuple[JsonObject, list[JsonValue]]:
            body = self.get_json(path, {**base, **paging_params(number, page_size)})
            if not isinstance(body, dict):
                raise ResponseFormatError(
                    "expected a JSON object page", method="GET", path=api_path
                )
            items = body.get(items_key)
            if items is None and not _has_paging_keys(body):
                items = []  # some versions omit an empty list entirely
            if not isinstance(items, list):
                raise ResponseFormatError(
                    f"page {number} has no list {items_key!r}", method="GET", path=api_path
                )
            return body, items

        return PageLoop(
            fetch,
            page_size=page_size,
            link_paging=link_paging,
            path=api_path,
            start_page=start_page,
        )

    # -- URL budget ----------------------------------------------------------------------------

    def url_length(self, path: str, params: Params | None = None) -> int:
        """The length of the URL a GET of ``path`` with ``params`` sends, encoded as sent."""
        query = urlencode(_encode_params(params))
        return len(self.url) + len(self._api_path(path)) + (1 + len(query) if query else 0)

    def batches(
        self,
        path: str,
        params: Params,
        values: Sequence[str],
        select: Callable[[Sequence[str]], Params],
        *,
        max_count: int | None = None,
        page_size: int | None = None,
        max_url_length: int = MAX_URL_LENGTH,
    ) -> list[list[str]]:
        """Split ``values`` into consecutive groups, each one request within the URL budget.

        ``select(group)`` names a group in the query (a filter with the values joined, or a
        repeated parameter); with ``params`` its URL stays within ``max_url_length``, and a group
        holds at most ``max_count`` values. A group read page by page of ``page_size`` counts
        its paging parameters in the budget too. The one batching rule for every UID or code
        list; a value too long to fit even alone is sent alone (and logged).
        """
        if page_size is not None:
            params = {**params, **paging_params(1, page_size)}

        def query_length(group: Sequence[str]) -> int:
            return len(urlencode(_encode_params(select(group))))

        fixed = self.url_length(path, params) + 1  # "&" or "?" before the group's part
        groups: list[list[str]] = []
        current: list[str] = []
        used = 0
        for value in values:
            alone = query_length([value])
            more = query_length([value, value]) - alone  # a separator and the value again
            full = max_count is not None and len(current) >= max_count
            if current and (full or fixed + used + more > max_url_length):
                groups.append(current)
                current, used = [], 0
            if not current and fixed + alone > max_url_length:
                log.warning(
                    "%s: %.40r alone exceeds the %d-byte URL limit; sending it anyway",
                    self._api_path(path),
                    value,
                    max_url_length,
                )
            used += more if current else alone
            current.append(value)
        if current:
            groups.append(current)
        return groups

    # -- the choke point -----------------------------------------------------------------------

    def _api_path(self, path: str) -> str:
        path = path.lstrip("/")
        if not path.startswith("api/") and path != "api":
            path = "api/" + path
        return "/" + path

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]],
        data: bytes | None,
        content_type: str | None,
        idempotent: bool,
        accept_status: Collection[int],
    ) -> requests.Response:
        api_path = self._api_path(path)
        url = self.url + api_path
        headers = {"Content-Type": content_type} if content_type else None
        started = self._clock()
        attempt = 0
        reauthenticated = False
        while True:
            began = time.perf_counter()
            try:
                response = self._http.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    auth=self.auth,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                kind, error = self._map_exception(exc, method, api_path)
                http_log.debug("%s %s -> %s, attempt %d", method, api_path, kind.value, attempt + 1)
                if self._may_retry(attempt, started, kind, idempotent=idempotent):
                    self._wait(attempt, None, method, api_path, kind.value)
                    attempt += 1
                    continue
                raise error from exc
            http_log.debug(
                "%s %s -> %d in %.0f ms, %d bytes, attempt %d",
                method,
                api_path,
                response.status_code,
                (time.perf_counter() - began) * 1000,
                len(response.content),
                attempt + 1,
            )
            status = response.status_code
            if status == 401 and not reauthenticated and self.auth is not None:
                reauthenticated = True
                if self.auth.reauthenticate(response.request):
                    continue
            retryable = status in self.retry.statuses
            if retryable and self._may_retry(
                attempt, started, FailureKind.STATUS, idempotent=idempotent, status=status
            ):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                self._wait(attempt, retry_after, method, api_path, str(status))
                attempt += 1
                continue
            self._raise_for_status(response, method, api_path, accept_status)
            return response

    def _may_retry(
        self,
        attempt: int,
        started: float,
        kind: FailureKind,
        *,
        idempotent: bool,
        status: int | None = None,
    ) -> bool:
        if attempt + 1 >= self.retry.attempts:
            return False
        if self._clock() - started >= self.retry.deadline_s:
            return False
        return self.retry.should_retry(kind, idempotent=idempotent, status=status)

    def _wait(
        self, attempt: int, retry_after: float | None, method: str, path: str, why: str
    ) -> None:
        delay = self.retry.delay(attempt, self._rng, retry_after)
        log.warning("%s %s failed (%s); retrying in %.1f s", method, path, why, delay)
        self._sleep(delay)

    def _map_exception(
        self, exc: requests.RequestException, method: str, path: str
    ) -> tuple[FailureKind, Dhis2Error]:
        """Translate a requests failure: was the request possibly received, and what to raise.

        Every message names ``host:port`` and the cause in words, because "could not connect"
        alone cannot tell a stopped server from a typo in the host name or a TLS mismatch.
        """
        address = self._address
        where = {"address": address, "method": method, "path": path}
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return FailureKind.READ, Dhis2TimeoutError(
                f"no answer within {self.timeout[1]:g} s from {address}: the server is slow or "
                "overloaded; raise [dhis2] timeout or retry later",
                cause="timed out waiting for the answer",
                **where,
            )
        reason = exc.args[0] if exc.args else None
        never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or type(
            getattr(reason, "reason", None)
        ).__name__ in {"NewConnectionError", "NameResolutionError"}
        cause, hint = _connect_cause(exc, self.timeout[0])
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return FailureKind.CONNECT, Dhis2TimeoutError(
                f"cannot reach {address} ({cause}): {hint}", cause=cause, **where
            )
        if isinstance(exc, requests.exceptions.SSLError) or never_sent:
            return FailureKind.CONNECT, Dhis2ConnectionError(
                f"cannot reach {address} ({cause}): {hint}", cause=cause, **where
            )
        return FailureKind.READ, Dhis2ConnectionError(
            f"the connection to {address} broke before an answer ({cause}): retry later; "
            "if it keeps happening, check the proxy or load balancer in front of DHIS2",
            cause=cause,
            **where,
        )

    def _raise_for_status(
        self,
        response: requests.Response,
        method: str,
        path: str,
        accept_status: Collection[int],
    ) -> None:
        status = response.status_code
        if 300 <= status < 400:
            target = response.headers.get("Location", "")
            raise AuthenticationError(
                f"redirected to {_redact_location(target)}: DHIS2 sends unauthenticated calls "
                f"to its login page; check the {self._auth_name()} credentials, and the URL "
                "(http vs https, context path)",
                method=method,
                path=path,
                status=status,
            )
        if 200 <= status < 300 or status in accept_status:
            if _is_html(response):
                raise AuthenticationError(
                    f"got an HTML page instead of JSON: a login page means the "
                    f"{self._auth_name()} credentials were not accepted; otherwise check that "
                    "the URL points at DHIS2",
                    method=method,
                    path=path,
                    status=status,
                )
            return
        if status == 401:
            error_type: type[Dhis2Error] = AuthenticationError
            advice = (
                f"authentication failed with {self._auth_name()}: check the credentials "
                "(not retried: DHIS2 locks accounts after repeated failures)"
            )
        elif status == 403:
            error_type = PermissionDeniedError
            advice = "permission denied: the DHIS2 user lacks an authority or sharing access"
        elif status == 404:
            error_type = NotFoundError
            advice = "not found: check the UID and that this DHIS2 version has the endpoint"
        elif status >= 500:
            error_type = ServerError
            advice = "DHIS2 (or its proxy) failed; retry later or ask the server administrator"
        else:
            error_type = RequestRejectedError
            advice = "DHIS2 rejected the request"
        raise error_type(
            advice,
            method=method,
            path=path,
            status=status,
            dhis2_message=_webmessage_text(response),
        )

    def _decode(self, response: requests.Response, decode: Callable[[bytes], _T]) -> _T | None:
        content = response.content
        if not content or content.isspace():  # unlike strip(), copies nothing
            return None
        try:
            return decode(content)
        except ValueError as exc:
            raise ResponseFormatError(
                f"the body is not valid JSON ({len(content)} bytes, possibly truncated): {exc}",
                method=response.request.method,
                path=response.request.path_url,
                status=response.status_code,
            ) from exc

    def _auth_name(self) -> str:
        return self.auth.describe() if self.auth else "anonymous (no credentials configured)"


def _host_port(url: str) -> str:
    """``host:port`` of a base URL, the port filled in from the scheme, for error messages."""
    parts = urlsplit(url)
    host = parts.hostname or parts.netloc or url
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: the URL itself will fail to send
        port = None
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    return f"{host}:{port}"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: requests, then urllib3, then the socket or ssl."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (*current.args, getattr(current, "reason", None))
        linked += (current.__cause__, current.__context__)
        pending += [e for e in linked if isinstance(e, BaseException)]


_HINTS = {
    "host name not resolved": "check the host name in [dhis2] url, and the DNS of this machine",
    "connection refused": "is DHIS2 running there, and is the port in [dhis2] url right?",
    "network unreachable": "check the network connection and routes of this machine",
    "timed out": "check the URL, the firewall and the network, or raise [dhis2] connect_timeout",
}
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})
_TLS_HINT = (
    "check verify_tls and the server certificate, and that the server speaks https on this port"
)


def _connect_cause(exc: BaseException, connect_timeout: float) -> tuple[str, str]:
    """Name why a connection failed (refused, not resolved, timed out, TLS) and what to do."""
    chain = list(_exception_chain(exc))
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {error.verify_message}", _TLS_HINT
    for error in chain:
        if isinstance(error, ssl.SSLError):
            detail = (error.reason or "").replace("_", " ").lower()
            return ("TLS handshake failed" + (f": {detail}" if detail else "")), _TLS_HINT
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed", _TLS_HINT
    if any(isinstance(e, socket.gaierror) for e in chain):
        cause = "host name not resolved"
    elif any(isinstance(e, ConnectionRefusedError) for e in chain):
        cause = "connection refused"
    elif any(isinstance(e, OSError) and e.errno in _UNREACHABLE for e in chain):
        cause = "network unreachable"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"timed out after {connect_timeout:g} s", _HINTS["timed out"]
    else:
        return type(exc).__name__, "check the URL and network, or retry later"
    return cause, _HINTS[cause]


def _normalise_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    return url


def _is_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type:
        return True
    head = response.content[:64].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


class PageLoop(Generic[_Item]):
    """The one page loop of the library: every paged read, metadata lists and events alike.

    Asks ``fetch(number)`` for page after page (from ``start_page``) and hands each out as a
    :class:`Page`, under one rule: an empty page ends the read; a page equal to the one before
    (compared by ``identity``, the items themselves by default) is a server that ignores
    paging, a :class:`ResponseFormatError` rather than an endless read; and after a page that
    :func:`is_last_page` calls the last, nothing more is asked.

    An iterator object rather than a generator, so that between pages it holds nothing but
    the previous page's identity: with an ``identity`` such as the event reader's UIDs, a
    caller that drops a page before asking for the next (or before other requests of its own)
    has no copy of it left here. (Small metadata lists keep the default, the items.)

    Args:
        fetch: one request: page ``number``'s paging keys and its items.
        page_size: items asked for per page.
        link_paging: the server signals more pages only by ``pager.nextPage`` (2.42+).
        path: the endpoint, named in errors.
        start_page: the first page asked for.
        identity: what two pages are compared by; the UIDs of events, say.
        previous: the identity of the page read just before ``start_page`` (a keyset cursor
            resuming a run at page 2), checked like any other.
    """

    def __init__(
        self,
        fetch: Callable[[int], tuple[JsonObject, list[_Item]]],
        *,
        page_size: int,
        link_paging: bool,
        path: str,
        start_page: int = 1,
        identity: Callable[[list[_Item]], object] | None = None,
        previous: object = None,
    ) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._link_paging = link_paging
        self._path = path
        self._number = start_page
        self._identity = identity
        self._previous = previous
        self._ended = False

    @property
    def previous(self) -> object:
        """The identity of the page handed out last (before the first: ``previous``)."""
        return self._previous

    def __iter__(self) -> PageLoop[_Item]:
        return self

    def __next__(self) -> Page[_Item]:
        if self._ended:
            raise StopIteration
        number = self._number
        body, items = self._fetch(number)
        if not items:
            self._ended = True
            raise StopIteration
        key = items if self._identity is None else self._identity(items)
        if self._previous is not None and key == self._previous:
            self._ended = True
            raise ResponseFormatError(
                f"page {number} repeats page {number - 1}: the server ignores paging here",
                method="GET",
                path=self._path,
            )
        last = is_last_page(body, len(items), self._page_size, number, self._link_paging)
        self._ended, self._previous, self._number = last, key, number + 1
        return Page(number, items, body, last)


def _has_paging_keys(body: JsonObject) -> bool:
    return "pager" in body or "page" in body


def paging_params(page: int, page_size: int) -> dict[str, ParamValue]:
    """The query parameters of one page of a paged list: the same on every DHIS2 version."""
    return {"page": page, "pageSize": page_size}


def is_last_page(
    body: JsonObject, count: int, page_size: int, number: int, link_paging: bool
) -> bool:
    """The one stop rule for every paging envelope, asked by :class:`PageLoop` only; an empty
    page stops before this is asked.

    Args:
        body: the decoded page.
        count: items on the page.
        page_size: items asked for.
        number: this page's number (1-based).
        link_paging: the server signals more pages only by ``pager.nextPage`` (tracker 2.42+).
    """
    pager = body.get("pager")
    if isinstance(pager, dict):
        if "isLastPage" in pager:  # legacy /api/events
            return bool(pager["isLastPage"])
        if pager.get("nextPage"):  # metadata lists, tracker 2.42+
            return False
        if link_paging:  # 2.42+: no nextPage means no more
            return True
        page_count = pager.get("pageCount")
        if isinstance(page_count, int):
            return number >= page_count
    return count < page_size


def _webmessage_text(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description") or body.get("error")
        return str(message) if message else None
    return None


def _redact_location(location: str) -> str:
    return redact_path(location) if location else "another page"

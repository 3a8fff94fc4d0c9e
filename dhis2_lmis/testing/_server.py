"""HTTP plumbing of FakeDhis2: requests, responses, routing, fault injection, request log.

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1, port 0, daemon threads, HTTP/1.1 keep-alive (so
clients pool connections as they would against a real server). Faults are matched first, as a
reverse proxy in front of DHIS2 would act, then the request is routed to a handler.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = [
    "FaultKind",
    "HttpServer",
    "Latency",
    "RecordedRequest",
    "Request",
    "Response",
    "Route",
    "html_response",
    "json_response",
    "text_response",
    "web_message",
]

log = logging.getLogger(__name__)

FaultKind = Literal[
    "status", "drop", "drop_after", "delay", "html_login", "malformed_json", "truncated_json"
]

_REASONS = {
    200: "OK",
    201: "Created",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

LOGIN_HTML = (
    b"<!DOCTYPE html><html><head><title>DHIS 2</title></head><body>"
    b'<form id="loginForm" method="post" action="login.action">'
    b'<input type="text" name="j_username"><input type="password" name="j_password">'
    b"</form></body></html>"
)


def reason(status: int) -> str:
    """The reason phrase DHIS2 puts into ``httpStatus``."""
    return _REASONS.get(status, "Unknown")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received.

    ``status`` is None when no response was sent (the ``drop`` and ``drop_after`` faults).
    ``headers`` keep the client's spelling of names.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int | None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Request:
    """A parsed request as handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    base_url: str
    api_version: int | None = None

    def header(self, name: str) -> str | None:
        """A header value (case-insensitive name)."""
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        """Every value of a repeatable query parameter."""
        return list(self.query.get(name, []))

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter parsed like Spring does (case-insensitive true)."""
        value = self.param(name)
        return default if value is None else value.strip().lower() == "true"

    def cookies(self) -> dict[str, str]:
        """Cookies sent by the client."""
        out: dict[str, str] = {}
        for part in (self.header("cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name:
                out[name] = value
        return out

    def form(self) -> dict[str, str]:
        """A ``application/x-www-form-urlencoded`` body."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def url_with(self, **changes: str) -> str:
        """The absolute URL of this request with some query parameters replaced."""
        query = {k: list(v) for k, v in self.query.items()}
        for k, v in changes.items():
            query[k] = [v]
        return f"{self.base_url}{self.path}?{urlencode(query, doseq=True)}"


@dataclass
class Response:
    """What a handler answers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    items: int | None = None  # records on a page, for Latency; None: not a page of records


@dataclass(frozen=True)
class Latency:
    """How long a real server takes to answer a page: ``per_request`` seconds, plus
    ``per_item`` for each record on it (DHIS2 spends most of an events page in SQL and JSON).

    The fake's own work counts toward that time: the page goes out once it has passed since
    the request arrived (at once when the fake took longer). Requests are answered
    concurrently, as DHIS2 does, so ``N`` requests in flight take about the time of one.
    """

    per_request: float = 0.1
    per_item: float = 0.00005

    def of(self, items: int) -> float:
        """Seconds a page of ``items`` records takes."""
        return self.per_request + self.per_item * items


def json_response(
    status: int, payload: object, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """A JSON response (compact, as DHIS2 sends it)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, headers=list(headers))


def text_response(status: int, text: str) -> Response:
    """A ``text/plain`` response."""
    return Response(status, text.encode(), "text/plain;charset=UTF-8")


def html_response(status: int, html: bytes = LOGIN_HTML) -> Response:
    """A ``text/html`` response (login pages, proxy error pages)."""
    return Response(status, html, "text/html;charset=UTF-8")


def web_message(
    status: int,
    message: str | None,
    *,
    state: str | None = None,
    response: object = None,
    headers: Iterable[tuple[str, str]] = (),
    **extra: object,
) -> Response:
    """A DHIS2 WebMessage (property order httpStatus, httpStatusCode, status, message...)."""
    body: dict[str, object] = {
        "httpStatus": reason(status),
        "httpStatusCode": status,
        "status": state or ("OK" if status < 400 else "ERROR"),
    }
    body.update(extra)
    if message is not None:
        body["message"] = message
    if response is not None:
        body["response"] = response
    return json_response(status, body, headers)


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class Route:
    """A routing table entry; ``pattern`` is a full-match regex on the path."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler


@dataclass
class Fault:
    """An injected fault, consumed by the next ``times`` matching requests."""

    method: str
    path: str
    kind: FaultKind
    times: int
    status: int = 503
    retry_after: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """fnmatch on the path; method ``*`` matches any."""
        method_ok = self.method == "*" or self.method.upper() == method
        return method_ok and fnmatch.fnmatchcase(path, self.path)


_PROXY_HTML = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
    "</h1></center><hr><center>nginx</center></body></html>"
)


class HttpServer:
    """The listening socket plus the fault list and request log."""

    def __init__(self, dispatch: Callable[[Request], Response]) -> None:
        self._dispatch = dispatch
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.latency: Latency | None = None
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeDhis2"
            sys_version = ""
            timeout = 30
            # Headers and body go out in two writes; without this the body waits ~40 ms for
            # the client's delayed acknowledgement on every keep-alive request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("fake dhis2: " + format, *args)

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def do_PUT(self) -> None:
                server._handle(self)

            def do_DELETE(self) -> None:
                server._handle(self)

            def do_PATCH(self) -> None:
                server._handle(self)

            def do_HEAD(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    # --- faults and log ---------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault (older faults match first)."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

    # --- one request -----------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        method = h.command.upper()
        headers_raw = {k: v for k, v in h.headers.items()}
        query = parse_qs(split.query, keep_blank_values=True)
        host = h.headers.get("Host") or f"127.0.0.1:{self.port}"
        request = Request(
            method=method,
            path=split.path,
            query=query,
            headers={k.lower(): v for k, v in headers_raw.items()},
            body=body,
            base_url=f"http://{host}",
        )

        def record(status: int | None) -> None:
            with self._lock:
                self._log.append(
                    RecordedRequest(method, split.path, query, headers_raw, body, status)
                )

        fault = self._take_fault(method, split.path)
        response: Response | None = None
        if fault is not None:
            log.debug("fake dhis2: fault %s on %s %s", fault.kind, method, split.path)
            if fault.kind == "drop":
                record(None)
                self._close(h)
                return
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "status":
                response = self._status_fault(fault)
            elif fault.kind == "html_login":
                response = html_response(200)
            elif fault.kind == "malformed_json":
                response = Response(200, b'{"instances": [ {"event": "oops", ]')
        if response is None:
            response = self._safe_dispatch(request)
        if fault is not None and fault.kind == "drop_after":
            record(None)
            self._close(h)
            return
        if fault is not None and fault.kind == "truncated_json":
            response.body = response.body[: max(1, len(response.body) // 2)]
        latency = self.latency
        if latency is not None and response.items is not None:
            time.sleep(max(0.0, arrived + latency.of(response.items) - time.monotonic()))
        record(response.status)
        self._write(h, response, head=method == "HEAD")

    def _safe_dispatch(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except Exception as exc:  # a bug in the fake must show up as a 500, not a hang
            log.exception("fake dhis2: handler failed for %s %s", request.method, request.path)
            with self._lock:
                self.errors.append(f"{request.method} {request.path}: {exc!r}")
            return web_message(500, f"FakeDhis2 handler failed: {exc!r}")

    @staticmethod
    def _status_fault(fault: Fault) -> Response:
        headers: list[tuple[str, str]] = []
        if fault.retry_after is not None:
            headers.append(("Retry-After", fault.retry_after))
        if fault.body is not None:
            ctype = fault.content_type or (
                "text/html;charset=UTF-8"
                if fault.body.lstrip().startswith(b"<")
                else "application/json;charset=UTF-8"
            )
            return Response(fault.status, fault.body, ctype, headers)
        if fault.status >= 500 and fault.status != 500:
            html = _PROXY_HTML.format(status=fault.status, reason=reason(fault.status))
            return Response(fault.status, html.encode(), "text/html", headers)
        return web_message(fault.status, reason(fault.status), headers=headers)

    @staticmethod
    def _close(h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, response: Response, *, head: bool) -> None:
        h.send_response(response.status, reason(response.status))
        if response.body or response.status != 302:
            h.send_header("Content-Type", response.content_type)
        h.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            h.send_header(name, value)
        try:
            h.end_headers()
            if not head:
                h.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True  # the client gave up (a read timeout); nothing to answer

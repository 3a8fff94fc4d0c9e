"""Authentication schemes, each a ``requests.auth.AuthBase``.

=============  =====================================================  ===================
mode           how                                                    DHIS2 versions
=============  =====================================================  ===================
``basic``      ``Authorization: Basic`` on every request              all
``token``      ``Authorization: ApiToken d2pat_...`` (personal token)  2.37+ (2.37: opt-in)
``body``       with a client: OAuth2 password grant at                2.36 - 2.41
               ``/uaa/oauth/token``, then ``Bearer``
``body``       without a client: credentials in a login request body  JSON login 2.41+,
               (``/api/auth/login``), then the session cookie         form login before
=============  =====================================================  ===================

Secrets are ``repr=False`` and never leave the object except inside the request that needs them.
The session (``session.py``) asks :meth:`Dhis2Auth.reauthenticate` after a 401 and resends at
most once, so an expired token or cookie costs one extra round trip and a wrong password never
turns into a retry storm that would lock the account (DHIS2 locks after four failures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

import attrs
import requests
from requests.auth import AuthBase
from requests.models import PreparedRequest

from dhis2_lmis.errors import AuthenticationError

__all__ = ["BasicAuth", "BodyAuth", "Dhis2Auth", "TokenAuth"]

_FORM_LOGIN_PATH = "/dhis-web-commons-security/login.action"
_JSON_LOGIN_PATH = "/api/auth/login"
_TOKEN_PATH = "/uaa/oauth/token"  # noqa: S105 - an endpoint, not a secret
# Refresh this long before the server's expiry, so a token never dies mid-request.
_EXPIRY_MARGIN_S = 30.0


class Dhis2Auth(AuthBase):
    """Base of the library's schemes: a mode name and the re-authentication hook."""

    mode: str = "none"

    def bind(self, http: requests.Session, base_url: str, timeout: tuple[float, float]) -> None:
        """Give a scheme that logs in the transport it should log in with (default: unused)."""

    def reauthenticate(self, failed: PreparedRequest) -> bool:
        """Renew credentials after ``failed`` got a 401; True when a resend may now succeed."""
        return False

    def describe(self) -> str:
        """A safe description for error messages (no secret)."""
        return f"{self.mode} authentication"


@attrs.define(eq=False)
class BasicAuth(Dhis2Auth):
    """HTTP Basic with the DHIS2 username and password (every version)."""

    username: str
    password: str = attrs.field(repr=False)
    mode = "basic"

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.prepare_auth((self.username, self.password))
        return r

    def describe(self) -> str:
        return f"basic authentication as {self.username!r}"


@attrs.define(eq=False)
class TokenAuth(Dhis2Auth):
    """A personal access token (``ApiToken d2pat_...``), DHIS2 2.37+ (on by default 2.38+)."""

    token: str = attrs.field(repr=False)
    mode = "token"

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers["Authorization"] = f"ApiToken {self.token}"
        return r

    def describe(self) -> str:
        return "personal access token authentication"


@attrs.define(eq=False)
class _Grant:
    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(repr=False)
    expires_at: float


@attrs.define(eq=False)
class BodyAuth(Dhis2Auth):
    """Credentials sent in a request body, never in a header on every call.

    With ``client_id`` it runs the OAuth2 password grant (DHIS2 2.36-2.41) and sends
    ``Bearer`` tokens, refreshing with the refresh token shortly before expiry or after a 401
    and falling back to a fresh grant when the refresh is refused. Without a client it logs in
    once (``POST /api/auth/login`` on 2.41+, the form login before) and lets the session cookie
    authenticate, logging in again when the cookie expires.

    Thread-safe: one lock guards the grant and the login, so fifty threads whose token or
    session cookie expired together cause one refresh or login, not fifty.
    """

    username: str
    password: str = attrs.field(repr=False)
    client_id: str | None = None
    client_secret: str | None = attrs.field(default=None, repr=False)
    client_auth: Literal["header", "body"] = "header"
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False)
    _http: requests.Session | None = attrs.field(default=None, init=False, repr=False)
    _base_url: str = attrs.field(default="", init=False, repr=False)
    _timeout: tuple[float, float] = attrs.field(default=(10.0, 60.0), init=False, repr=False)
    _grant: _Grant | None = attrs.field(default=None, init=False, repr=False)
    _logged_in: bool = attrs.field(default=False, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    grants: int = attrs.field(default=0, init=False)
    refreshes: int = attrs.field(default=0, init=False)
    logins: int = attrs.field(default=0, init=False)
    mode = "body"

    def bind(self, http: requests.Session, base_url: str, timeout: tuple[float, float]) -> None:
        self._http = http
        self._base_url = base_url
        self._timeout = timeout

    def describe(self) -> str:
        how = f"OAuth2 password grant (client {self.client_id!r})" if self.client_id else "login"
        return f"body authentication as {self.username!r} via {how}"

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        if self.client_id:
            grant = self._current_grant()
            r.headers["Authorization"] = f"Bearer {grant.access_token}"
            return r
        with self._lock:
            if not self._logged_in:
                self._login()
        # The session cookie was set on the shared requests.Session after this request's
        # headers were merged, so copy it in explicitly for the first request.
        cookie = self._session_cookie_header()
        if cookie:
            r.headers["Cookie"] = cookie
        return r

    def reauthenticate(self, failed: PreparedRequest) -> bool:
        with self._lock:
            if self.client_id:
                sent = failed.headers.get("Authorization", "")
                if self._grant is not None and sent != f"Bearer {self._grant.access_token}":
                    return True  # another thread already renewed it
                self._renew()
                return True
            current = self._session_cookie_header()
            if self._logged_in and current and failed.headers.get("Cookie") != current:
                return True  # another thread already logged in again
            self._require_http().cookies.clear()
            self._logged_in = False
            self._login()
            return True

    # -- OAuth2 --------------------------------------------------------------------------------

    def _current_grant(self) -> _Grant:
        with self._lock:
            if self._grant is None or self.clock() >= self._grant.expires_at - _EXPIRY_MARGIN_S:
                self._renew()
            assert self._grant is not None  # set by _renew or it raised
            return self._grant

    def _renew(self) -> None:
        if self._grant is not None and self._grant.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": self._grant.refresh_token}
            try:
                self._grant = self._token_request(form)
                self.refreshes += 1
                return
            except AuthenticationError:
                pass  # refresh token expired or revoked: fall back to a fresh grant
        form = {"grant_type": "password", "username": self.username, "password": self.password}
        self._grant = self._token_request(form)
        self.grants += 1

    def _token_request(self, form: dict[str, str]) -> _Grant:
        http = self._require_http()
        auth: tuple[str, str] | None = None
        if self.client_auth == "header":
            auth = (self.client_id or "", self.client_secret or "")
        else:
            form = {
                **form,
                "client_id": self.client_id or "",
                "client_secret": self.client_secret or "",
            }
        started = self.clock()
        response = http.post(
            self._base_url + _TOKEN_PATH,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=self._timeout,
            allow_redirects=False,
        )
        if response.status_code == 404:
            raise AuthenticationError(
                "this server has no OAuth2 password grant (/uaa/oauth/token was removed in "
                'DHIS2 2.42): use auth = "token" or "basic"',
                method="POST",
                path=_TOKEN_PATH,
                status=404,
            )
        if response.status_code != 200:
            raise AuthenticationError(
                f"OAuth2 {form['grant_type']} grant refused: check client_id, client_secret, "
                "username and password",
                method="POST",
                path=_TOKEN_PATH,
                status=response.status_code,
            )
        try:
            body = response.json()
            access = str(body["access_token"])
            refresh = body.get("refresh_token")
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuthenticationError(
                "the OAuth2 token response carried no access_token",
                method="POST",
                path=_TOKEN_PATH,
                status=response.status_code,
            ) from exc
        return _Grant(access, str(refresh) if refresh else None, started + expires_in)

    # -- cookie login ----------------------------------------------------------------------------

    def _login(self) -> None:
        http = self._require_http()
        response = http.post(
            self._base_url + _JSON_LOGIN_PATH,
            json={"username": self.username, "password": self.password},
            headers={"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"},
            timeout=self._timeout,
            allow_redirects=False,
        )
        status = _login_status(response)
        if status is None and _message(response) != "Bad credentials":
            # Before 2.41 there is no JSON login (404, or 401 from the API's own guard):
            # use the form login those versions have.
            self._form_login(http)
        elif status != "SUCCESS":
            raise AuthenticationError(
                f"login refused ({status or 'bad credentials'}): check username and password",
                method="POST",
                path=_JSON_LOGIN_PATH,
                status=response.status_code,
            )
        self._logged_in = True
        self.logins += 1

    def _form_login(self, http: requests.Session) -> None:
        response = http.post(
            self._base_url + _FORM_LOGIN_PATH,
            data={"j_username": self.username, "j_password": self.password},
            timeout=self._timeout,
            allow_redirects=False,
        )
        location = response.headers.get("Location", "")
        if response.status_code not in (200, 302) or "failed" in location or "login" in location:
            raise AuthenticationError(
                "form login refused: check username and password",
                method="POST",
                path=_FORM_LOGIN_PATH,
                status=response.status_code,
            )

    def _session_cookie_header(self) -> str:
        jar = self._require_http().cookies
        return "; ".join(f"{c.name}={c.value}" for c in jar if c.value is not None)

    def _require_http(self) -> requests.Session:
        if self._http is None:
            raise AuthenticationError(
                "BodyAuth is not bound to a session: pass it to Dhis2Session(auth=...)"
            )
        return self._http


def _json_field(response: requests.Response, key: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(key) if isinstance(body, dict) else None
    return str(value) if value is not None else None


def _login_status(response: requests.Response) -> str | None:
    return _json_field(response, "loginStatus")


def _message(response: requests.Response) -> str | None:
    return _json_field(response, "message")

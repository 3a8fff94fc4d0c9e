"""Authentication as each DHIS2 version does it.

Basic everywhere (and it opens a JSESSIONID session); PAT ``ApiToken d2pat_...`` from 2.37 (off
by default on 2.37); legacy OAuth2 ``/uaa/oauth/token`` with password and refresh_token grants on
2.36-2.41; JSON login ``/api/auth/login`` from 2.41; the form login before 2.41. A refused request
gets a 401 WebMessage only when it carries ``X-Requested-With: XMLHttpRequest`` or a Basic
``Authorization`` header; otherwise it is redirected (302) to the version's login page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import uuid
from dataclasses import dataclass

from dhis2_lmis.testing._host import Host
from dhis2_lmis.testing._server import (
    Request,
    Response,
    html_response,
    json_response,
    web_message,
)
from dhis2_lmis.testing._world import AccessToken, User

__all__ = [
    "AuthResult",
    "authenticate",
    "check_password",
    "handle_form_login",
    "handle_json_login",
    "handle_login_page",
    "handle_oauth_token",
    "login_page_path",
    "new_session",
    "refuse",
]

MAX_FAILED_LOGINS = 4


@dataclass
class AuthResult:
    """Who made the request, or the refusal to send back."""

    user: User | None
    refusal: Response | None = None
    set_cookie: str | None = None


def login_page_path(fake: Host) -> str:
    """The login page a 302 points to (moved in 2.41)."""
    if fake.server_version.minor <= 40:
        return "/dhis-web-commons/security/login.action"
    return "/dhis-web-login/"


def refuse(fake: Host, req: Request, message: str = "Unauthorized") -> Response:
    """The 401-or-302 answer of DHIS2's API entry point."""
    authorization = req.header("authorization") or ""
    ajax = (req.header("x-requested-with") or "").lower() == "xmlhttprequest"
    if ajax or "basic" in authorization.lower():
        return web_message(401, message)
    return Response(302, b"", headers=[("Location", req.base_url + login_page_path(fake))])


def check_password(fake: Host, username: str, password: str) -> tuple[User | None, str]:
    """Check a username and password, counting failures for the lockout rule.

    Returns:
        The user (or None) and, on failure, the DHIS2 message ("Account locked" when the
        lockout setting is on and the user failed too often).
    """
    world = fake.world
    with world.lock:
        user = world.users.get(username)
        if user is not None and user.locked:
            return None, "Account locked"
        if user is not None and secrets.compare_digest(user.password, password):
            user.failed_logins = 0
            return user, ""
        if user is not None:
            user.failed_logins += 1
            if fake.lockout and user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked = True
        return None, "Unauthorized"


def new_session(fake: Host, user: User) -> str:
    """Open a session and return the Set-Cookie header value."""
    sid = uuid.uuid4().hex.upper()
    with fake.world.lock:
        fake.world.sessions[sid] = user.username
    return f"JSESSIONID={sid}; Path=/; HttpOnly"


def _basic(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _locked(fake: Host, req: Request, user: User) -> AuthResult | None:
    if user.locked:
        return AuthResult(None, refuse(fake, req, "Account locked"))
    return None


def authenticate(fake: Host, req: Request) -> AuthResult:
    """Identify the user of an API request, or produce the version's refusal."""
    world = fake.world
    version = fake.server_version
    scheme, _, credentials = (req.header("authorization") or "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        pair = _basic(credentials)
        if pair is None:
            return AuthResult(None, refuse(fake, req))
        user, message = check_password(fake, *pair)
        if user is None:
            return AuthResult(None, refuse(fake, req, message))
        sid = req.cookies().get("JSESSIONID")
        if sid is not None and world.sessions.get(sid) == user.username:
            return AuthResult(user)
        return AuthResult(user, set_cookie=new_session(fake, user))
    if scheme == "apitoken" and version.minor >= 37 and fake.pat_enabled:
        with world.lock:
            username = world.pat_tokens.get(credentials.strip())
            user = world.users.get(username) if username else None
        if user is None:
            return AuthResult(
                None,
                web_message(
                    401,
                    "The API token does not exists.",
                    headers=[("WWW-Authenticate", "ApiToken")],
                ),
            )
        refusal = _locked_response(fake, req, user)
        return AuthResult(None, refusal) if refusal else AuthResult(user)
    if scheme == "bearer":
        return _bearer(fake, req, credentials.strip())
    sid = req.cookies().get("JSESSIONID")
    if sid is not None:
        with world.lock:
            username = world.sessions.get(sid)
            user = world.users.get(username) if username else None
        if user is not None:
            locked = _locked(fake, req, user)
            return locked if locked is not None else AuthResult(user)
    return AuthResult(None, refuse(fake, req))


def _locked_response(fake: Host, req: Request, user: User) -> Response | None:
    locked = _locked(fake, req, user)
    return locked.refusal if locked is not None else None


def _bearer(fake: Host, req: Request, token: str) -> AuthResult:
    world = fake.world
    with world.lock:
        issued = world.access_tokens.get(token)
        user = world.users.get(issued.username) if issued else None
    if fake.server_version.minor <= 41 and issued is not None and user is not None:
        if issued.revoked or issued.expires_at <= fake.now:
            body = {"error": "invalid_token", "error_description": "Access token expired"}
            return AuthResult(None, json_response(401, body, [("WWW-Authenticate", "Bearer")]))
        refusal = _locked_response(fake, req, user)
        return AuthResult(None, refusal) if refusal else AuthResult(user)
    body = {"error": "invalid_token", "error_description": "Invalid access token"}
    return AuthResult(None, json_response(401, body, [("WWW-Authenticate", "Bearer")]))


# --- login endpoints ---------------------------------------------------------------------------


def handle_oauth_token(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``POST /uaa/oauth/token``: password and refresh_token grants (2.36-2.41)."""
    form = req.form()
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    scheme, _, credentials = (req.header("authorization") or "").partition(" ")
    if scheme.lower() == "basic":
        pair = _basic(credentials)
        if pair is not None:
            client_id, secret = pair
    world = fake.world
    with world.lock:
        client = world.oauth_clients.get(client_id)
    if client is None or not secrets.compare_digest(client.secret, secret):
        body = {"error": "unauthorized", "error_description": "Bad credentials"}
        return json_response(401, body, [("WWW-Authenticate", 'Basic realm="oauth"')])
    grant = form.get("grant_type", "")
    if grant == "password":
        found, message = check_password(fake, form.get("username", ""), form.get("password", ""))
        if found is None:
            text = "User account is locked" if message == "Account locked" else "Bad credentials"
            return json_response(400, {"error": "invalid_grant", "error_description": text})
        refresh = str(uuid.uuid4())
        username = found.username
    elif grant == "refresh_token":
        refresh = form.get("refresh_token", "")
        with world.lock:
            previous = world.refresh_tokens.get(refresh)
        if previous is None or previous.client_id != client.client_id:
            body = {"error": "invalid_grant", "error_description": "Invalid refresh token"}
            return json_response(400, body)
        username = previous.username
    else:
        body = {
            "error": "unsupported_grant_type",
            "error_description": f"Unsupported grant type: {grant}",
        }
        return json_response(400, body)
    token = AccessToken(
        token=str(uuid.uuid4()),
        refresh_token=refresh,
        username=username,
        client_id=client.client_id,
        expires_at=fake.now + dt.timedelta(seconds=client.access_token_ttl),
    )
    with world.lock:
        world.access_tokens[token.token] = token
        world.refresh_tokens[refresh] = token
    return json_response(
        200,
        {
            "access_token": token.token,
            "token_type": "bearer",
            "refresh_token": refresh,
            "expires_in": client.access_token_ttl,
            "scope": "ALL",
        },
        [("Cache-Control", "no-store"), ("Pragma", "no-cache")],
    )


def handle_json_login(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``POST /api/auth/login`` (2.41+): JSON login that opens a session."""
    try:
        body = json.loads(req.body or b"{}")
    except ValueError:
        return web_message(400, "Invalid JSON")
    if not isinstance(body, dict):
        return web_message(400, "Invalid JSON")
    found, message = check_password(
        fake, str(body.get("username", "")), str(body.get("password", ""))
    )
    if found is None:
        return web_message(
            401, "Account locked" if message == "Account locked" else "Bad credentials"
        )
    cookie = new_session(fake, found)
    payload = {"loginStatus": "SUCCESS", "redirectUrl": f"{req.base_url}/dhis-web-dashboard/"}
    return json_response(200, payload, [("Set-Cookie", cookie)])


def handle_form_login(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """``POST /dhis-web-commons-security/login.action`` (before 2.41): form login."""
    form = req.form()
    found, _ = check_password(fake, form.get("j_username", ""), form.get("j_password", ""))
    if found is None:
        location = f"{req.base_url}/dhis-web-commons/security/login.action?failed=true"
        return Response(302, b"", headers=[("Location", location)])
    cookie = new_session(fake, found)
    return Response(
        302,
        b"",
        headers=[("Location", f"{req.base_url}/dhis-web-dashboard/"), ("Set-Cookie", cookie)],
    )


def handle_login_page(fake: Host, req: Request, m: re.Match[str], user: User | None) -> Response:
    """The HTML login page (what a followed 302 ends on)."""
    return html_response(200)

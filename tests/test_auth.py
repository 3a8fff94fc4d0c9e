"""Every authentication mode on the DHIS2 versions that offer it, against the offline DHIS2."""

from __future__ import annotations

import logging

import pytest

from dhis2_lmis.dhis2.auth import BasicAuth, BodyAuth, TokenAuth
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import AuthenticationError
from dhis2_lmis.testing import FakeDhis2

PASSWORD = "district"
CLIENT_SECRET = "s3cr3t-client-value"


def no_sleep(_: float) -> None:
    """Retries in these tests must never wait."""


def me(session: Dhis2Session) -> str:
    body = session.get_json("me", {"fields": "username,userCredentials[username]"})
    assert isinstance(body, dict)
    username = body.get("username") or body["userCredentials"]["username"]  # type: ignore[index,call-overload]
    return str(username)


@pytest.mark.parametrize("version", ["2.36", "2.38", "2.40", "2.41", "2.42", "2.43"])
def test_basic_auth_works_on_every_version(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        assert me(Dhis2Session(fake.url, BasicAuth("admin", PASSWORD), sleep=no_sleep)) == "admin"


@pytest.mark.parametrize("version", ["2.38", "2.41", "2.42", "2.43"])
def test_personal_access_token_works_from_238(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        token = fake.add_token("admin")
        session = Dhis2Session(fake.url, TokenAuth(token), sleep=no_sleep)
        assert me(session) == "admin"
        assert fake.requests[-1].headers["Authorization"] == f"ApiToken {token}"


def test_personal_access_token_needs_enabling_on_237() -> None:
    with FakeDhis2(version="2.37") as fake:
        token = fake.add_token("admin")
        with pytest.raises(AuthenticationError):
            me(Dhis2Session(fake.url, TokenAuth(token), sleep=no_sleep))
    with FakeDhis2(version="2.37", pat_enabled=True) as fake:
        token = fake.add_token("admin")
        assert me(Dhis2Session(fake.url, TokenAuth(token), sleep=no_sleep)) == "admin"


@pytest.mark.parametrize("client_auth", ["header", "body"])
@pytest.mark.parametrize("version", ["2.36", "2.39", "2.41"])
def test_oauth2_password_grant_then_bearer(version: str, client_auth: str) -> None:
    with FakeDhis2(version=version) as fake:
        fake.add_oauth_client("lmis", CLIENT_SECRET)
        auth = BodyAuth(
            "admin",
            PASSWORD,
            client_id="lmis",
            client_secret=CLIENT_SECRET,
            client_auth=client_auth,  # type: ignore[arg-type]
        )
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        assert me(session) == "admin"
        assert me(session) == "admin"
        assert auth.grants == 1
        assert fake.requests[-1].headers["Authorization"].startswith("Bearer ")


def test_oauth2_token_expiring_mid_run_is_refreshed_once() -> None:
    with FakeDhis2(version="2.40") as fake:
        fake.add_oauth_client("lmis", CLIENT_SECRET)
        auth = BodyAuth("admin", PASSWORD, client_id="lmis", client_secret=CLIENT_SECRET)
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        me(session)
        fake.expire_tokens()
        assert me(session) == "admin"
        assert (auth.grants, auth.refreshes) == (1, 1)


def test_oauth2_token_is_refreshed_before_it_expires() -> None:
    now = [0.0]
    with FakeDhis2(version="2.40") as fake:
        fake.add_oauth_client("lmis", CLIENT_SECRET, access_token_ttl=600)
        auth = BodyAuth(
            "admin", PASSWORD, client_id="lmis", client_secret=CLIENT_SECRET, clock=lambda: now[0]
        )
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        me(session)
        now[0] = 590.0  # inside the safety margin before expiry
        me(session)
        assert auth.refreshes == 1
        assert not any(r.status == 401 for r in fake.requests)


def test_oauth2_is_gone_in_242_with_a_clear_message() -> None:
    with FakeDhis2(version="2.42") as fake:
        auth = BodyAuth("admin", PASSWORD, client_id="lmis", client_secret=CLIENT_SECRET)
        with pytest.raises(AuthenticationError, match=r"removed in DHIS2 2\.42"):
            me(Dhis2Session(fake.url, auth, sleep=no_sleep))


def test_oauth2_wrong_client_secret_is_an_authentication_error() -> None:
    with FakeDhis2(version="2.41") as fake:
        fake.add_oauth_client("lmis", CLIENT_SECRET)
        auth = BodyAuth("admin", PASSWORD, client_id="lmis", client_secret="not-the-secret")
        with pytest.raises(AuthenticationError, match="grant refused") as raised:
            me(Dhis2Session(fake.url, auth, sleep=no_sleep))
        assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize("version", ["2.41", "2.42", "2.43"])
def test_json_login_keeps_the_session_cookie(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        auth = BodyAuth("admin", PASSWORD)
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        assert me(session) == "admin"
        assert me(session) == "admin"
        assert auth.logins == 1
        api_calls = [r for r in fake.requests if r.path == "/api/me"]
        assert all("Authorization" not in r.headers for r in api_calls)
        assert all("JSESSIONID" in r.headers.get("Cookie", "") for r in api_calls)


@pytest.mark.parametrize("version", ["2.36", "2.40"])
def test_form_login_before_241(version: str) -> None:
    with FakeDhis2(version=version) as fake:
        auth = BodyAuth("admin", PASSWORD)
        assert me(Dhis2Session(fake.url, auth, sleep=no_sleep)) == "admin"
        assert any(r.path == "/dhis-web-commons-security/login.action" for r in fake.requests)


def test_expired_session_cookie_logs_in_again() -> None:
    with FakeDhis2(version="2.41") as fake:
        auth = BodyAuth("admin", PASSWORD)
        session = Dhis2Session(fake.url, auth, sleep=no_sleep)
        me(session)
        fake.expire_tokens()
        assert me(session) == "admin"
        assert auth.logins == 2


def test_body_login_with_wrong_password_fails_clearly() -> None:
    with FakeDhis2(version="2.41") as fake:
        auth = BodyAuth("admin", "wrong-password-xyz")
        with pytest.raises(AuthenticationError, match="login refused") as raised:
            me(Dhis2Session(fake.url, auth, sleep=no_sleep))
        assert "wrong-password-xyz" not in repr(raised.value)


def test_lockout_is_not_provoked_by_retries() -> None:
    with FakeDhis2(version="2.41", lockout=True) as fake:
        session = Dhis2Session(fake.url, BasicAuth("admin", "bad-password"), sleep=no_sleep)
        for _ in range(3):
            with pytest.raises(AuthenticationError):
                me(session)
        # three failures, one request each: the account is not locked yet
        good = Dhis2Session(fake.url, BasicAuth("admin", PASSWORD), sleep=no_sleep)
        assert me(good) == "admin"


def test_locked_account_message_reaches_the_caller() -> None:
    with FakeDhis2(version="2.41", lockout=True) as fake:
        session = Dhis2Session(fake.url, BasicAuth("admin", "bad-password"), sleep=no_sleep)
        for _ in range(4):
            with pytest.raises(AuthenticationError):
                me(session)
        good = Dhis2Session(fake.url, BasicAuth("admin", PASSWORD), sleep=no_sleep)
        with pytest.raises(AuthenticationError) as raised:
            me(good)
        assert raised.value.dhis2_message == "Account locked"


def test_no_secret_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = ("pa55-word-1", CLIENT_SECRET, "d2pat_secretsecretsecret00")
    schemes = [
        BasicAuth("admin", secrets[0]),
        BodyAuth("admin", secrets[0], client_id="lmis", client_secret=secrets[1]),
        TokenAuth(secrets[2]),
    ]
    texts = [repr(s) for s in schemes]
    with FakeDhis2(version="2.41") as fake:
        for scheme in schemes:
            session = Dhis2Session(fake.url, scheme, sleep=no_sleep)
            texts.append(repr(session))
            with pytest.raises(AuthenticationError) as raised:
                me(session)
            texts += [str(raised.value), repr(raised.value)]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        for secret in secrets:
            assert secret not in text

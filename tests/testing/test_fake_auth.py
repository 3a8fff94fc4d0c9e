"""Authentication per version: Basic, PAT, OAuth2, session cookies, login pages, lockout."""

from __future__ import annotations

import pytest
import requests

from dhis2_lmis.testing import FakeDhis2


def test_basic_auth_sets_a_session_cookie_that_authenticates(fake_dhis2, client):
    s = client(fake_dhis2)
    r = s.get(f"{fake_dhis2.url}/api/system/ping")
    assert r.status_code == 200
    assert r.text == "pong"
    assert "JSESSIONID" in r.cookies
    s.auth = None
    assert s.get(f"{fake_dhis2.url}/api/me").json()["username"] == "admin"


def test_wrong_password_with_basic_is_401_web_message(fake_dhis2, client):
    r = client(fake_dhis2, auth=("admin", "wrong"), ajax=False).get(f"{fake_dhis2.url}/api/me")
    assert r.status_code == 401
    assert r.json() == {
        "httpStatus": "Unauthorized",
        "httpStatusCode": 401,
        "status": "ERROR",
        "message": "Unauthorized",
    }


@pytest.mark.parametrize(
    ("version", "login"),
    [("2.40", "/dhis-web-commons/security/login.action"), ("2.41", "/dhis-web-login/")],
)
def test_no_credentials_without_ajax_header_redirects_to_login(fake_dhis2_factory, version, login):
    fake = fake_dhis2_factory(version)
    r = requests.get(f"{fake.url}/api/me", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == fake.url + login
    followed = requests.get(f"{fake.url}/api/me", timeout=5)
    assert followed.status_code == 200
    assert followed.headers["Content-Type"].startswith("text/html")


def test_no_credentials_with_ajax_header_is_401(fake_dhis2, client):
    r = client(fake_dhis2, auth=None).get(f"{fake_dhis2.url}/api/me")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("version", "options", "accepted"),
    [
        ("2.36", {}, False),
        ("2.37", {}, False),
        ("2.37", {"pat_enabled": True}, True),
        ("2.38", {}, True),
        ("2.42", {}, True),
    ],
)
def test_personal_access_token_per_version(fake_dhis2_factory, client, version, options, accepted):
    fake = fake_dhis2_factory(version, **options)
    token = fake.add_token("admin")
    assert token.startswith("d2pat_")
    s = client(fake, auth=None)
    r = s.get(f"{fake.url}/api/me", headers={"Authorization": f"ApiToken {token}"})
    assert (r.status_code == 200) is accepted
    assert "JSESSIONID" not in r.cookies


def test_unknown_token_is_401_with_api_token_challenge(fake_dhis2, client):
    r = client(fake_dhis2, auth=None).get(
        f"{fake_dhis2.url}/api/me", headers={"Authorization": "ApiToken d2pat_nope"}
    )
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "ApiToken"


def _token(fake: FakeDhis2, **form: str) -> requests.Response:
    return requests.post(
        f"{fake.url}/uaa/oauth/token",
        data=form,
        timeout=5,
        auth=("lmis", "secret"),
        headers={"Accept": "application/json"},
    )


@pytest.mark.parametrize("version", ["2.36", "2.41"])
def test_oauth2_password_refresh_and_expiry(fake_dhis2_factory, client, version):
    fake = fake_dhis2_factory(version)
    fake.add_oauth_client("lmis", "secret", access_token_ttl=3600)
    grant = _token(fake, grant_type="password", username="admin", password="district").json()
    assert grant["token_type"] == "bearer"
    assert grant["expires_in"] == 3600
    s = client(fake, auth=None)
    bearer = {"Authorization": f"Bearer {grant['access_token']}"}
    assert s.get(f"{fake.url}/api/me", headers=bearer).status_code == 200
    fake.expire_tokens()
    assert s.get(f"{fake.url}/api/me", headers=bearer).status_code == 401
    fresh = _token(fake, grant_type="refresh_token", refresh_token=grant["refresh_token"]).json()
    bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert s.get(f"{fake.url}/api/me", headers=bearer).status_code == 200


def test_oauth2_client_credentials_in_the_form(fake_dhis2):
    fake_dhis2.add_oauth_client("lmis", "secret")
    r = requests.post(
        f"{fake_dhis2.url}/uaa/oauth/token",
        timeout=5,
        data={
            "grant_type": "password",
            "username": "admin",
            "password": "district",
            "client_id": "lmis",
            "client_secret": "secret",
        },
    )
    assert r.status_code == 200
    assert r.json()["access_token"]


def test_oauth2_wrong_password_is_invalid_grant(fake_dhis2):
    fake_dhis2.add_oauth_client("lmis", "secret")
    r = _token(fake_dhis2, grant_type="password", username="admin", password="nope")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


@pytest.mark.dhis2_version("2.42")
def test_oauth2_token_endpoint_is_gone_on_242(fake_dhis2):
    fake_dhis2.add_oauth_client("lmis", "secret")
    r = _token(fake_dhis2, grant_type="password", username="admin", password="district")
    assert r.status_code == 404


def test_json_login_sets_a_session_cookie(fake_dhis2, client):
    s = client(fake_dhis2, auth=None)
    r = s.post(
        f"{fake_dhis2.url}/api/auth/login", json={"username": "admin", "password": "district"}
    )
    assert r.status_code == 200
    assert r.json()["loginStatus"] == "SUCCESS"
    assert s.get(f"{fake_dhis2.url}/api/me").status_code == 200
    fake_dhis2.expire_tokens()
    assert s.get(f"{fake_dhis2.url}/api/me").status_code == 401


def test_json_login_bad_credentials(fake_dhis2, client):
    r = client(fake_dhis2, auth=None).post(
        f"{fake_dhis2.url}/api/auth/login", json={"username": "admin", "password": "x"}
    )
    assert r.status_code == 401
    assert r.json()["message"] == "Bad credentials"


@pytest.mark.dhis2_version("2.40")
def test_form_login_before_241(fake_dhis2, client):
    s = client(fake_dhis2, auth=None)
    url = f"{fake_dhis2.url}/dhis-web-commons-security/login.action"
    bad = s.post(url, data={"j_username": "admin", "j_password": "x"}, allow_redirects=False)
    assert bad.status_code == 302
    assert bad.headers["Location"].endswith("?failed=true")
    ok = s.post(url, data={"j_username": "admin", "j_password": "district"}, allow_redirects=False)
    assert ok.status_code == 302
    assert ok.headers["Location"].endswith("/dhis-web-dashboard/")
    assert s.get(f"{fake_dhis2.url}/api/me").status_code == 200


def test_lockout_after_four_failures_even_with_the_right_password(fake_dhis2_factory, client):
    fake = fake_dhis2_factory("2.41", lockout=True)
    bad = client(fake, auth=("admin", "wrong"))
    for _ in range(4):
        assert bad.get(f"{fake.url}/api/me").json()["message"] == "Unauthorized"
    r = client(fake).get(f"{fake.url}/api/me")
    assert r.status_code == 401
    assert r.json()["message"] == "Account locked"


def test_no_lockout_by_default(fake_dhis2, client):
    bad = client(fake_dhis2, auth=("admin", "wrong"))
    for _ in range(5):
        bad.get(f"{fake_dhis2.url}/api/me")
    assert client(fake_dhis2).get(f"{fake_dhis2.url}/api/me").status_code == 200


@pytest.mark.parametrize(
    ("version", "top", "credentials"),
    [("2.37", False, True), ("2.38", True, True), ("2.42", True, False)],
)
def test_me_username_location_per_version(fake_dhis2_factory, client, version, top, credentials):
    fake = fake_dhis2_factory(version)
    me = client(fake).get(f"{fake.url}/api/me").json()
    assert ("username" in me) is top
    assert ("userCredentials" in me) is credentials


@pytest.mark.parametrize(("version", "status"), [("2.39", 401), ("2.39.2", 200), ("2.40", 200)])
def test_api_ping_without_auth(fake_dhis2_factory, client, version, status):
    fake = fake_dhis2_factory(version)
    assert client(fake, auth=None).get(f"{fake.url}/api/ping").status_code == status


def test_system_info_reports_version_and_time_zone(fake_dhis2_factory, client):
    fake = fake_dhis2_factory("2.40.3", time_zone="Africa/Nairobi")
    info = client(fake).get(f"{fake.url}/api/system/info").json()
    assert info["version"] == "2.40.3"
    assert info["serverTimeZoneId"] == "Africa/Nairobi"
